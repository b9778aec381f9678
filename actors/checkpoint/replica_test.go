package checkpoint

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const clusterSecret = "replica-test-secret-6f1c0a9b2d8e4f7a"

// objectReplica is cmd/mcp-jupyter's glue (checkpoint_cluster.go) in
// short: the committed file of name, put in the object store.
type objectReplica struct {
	objs  *natsbus.Checkpoints
	files *checkpointfile.Store
}

func (o objectReplica) Put(ctx context.Context, name string, m Meta) error {
	return o.objs.Put(ctx, name, o.files.Path(name), map[string]string{"sha256": m.SHA256})
}

func (o objectReplica) Delete(ctx context.Context, name string) error {
	return o.objs.Delete(ctx, name)
}

func openObjectStore(t *testing.T) (*natsbus.Server, *natsbus.Checkpoints) {
	t.Helper()
	bus, err := natsbus.Open(natsbus.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	objs, err := bus.OpenCheckpoints(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return bus, objs
}

func replicaRig(t *testing.T, objs *natsbus.Checkpoints, secret string) *rig {
	t.Helper()
	return newRigWith(t, testkit.StartStack(t, ""), rigConfig{secret: secret,
		replica: func(f *checkpointfile.Store) Replica { return objectReplica{objs: objs, files: f} }})
}

func fetchFrom(objs *natsbus.Checkpoints, stored string) func(context.Context, string) error {
	return func(ctx context.Context, dst string) error { return objs.Get(ctx, stored, dst) }
}

func savedRecords(t *testing.T, r *rig, stored string) int {
	t.Helper()
	n := 0
	err := r.st.Log.ReadStream(context.Background(), events.CheckpointStream(stored), 0, func(e events.Event) error {
		if _, ok := e.Payload.(events.CheckpointSaved); ok {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicaAcrossNodes: node A saves (the actor puts the file in the
// object store before answering); node B, with the same secret, adopts it
// from the store, verified, and loads it into its own kernel: the
// variables are back. A tampered object and one signed with another key
// are refused by B, naming the checkpoint, and B's good copy stays.
func TestReplicaAcrossNodes(t *testing.T) {
	_, objs := openObjectStore(t)
	a := replicaRig(t, objs, clusterSecret)
	ka := a.kernel()
	a.run(ka, "x = 41\nd = {'k': [1, 2]}\nclass P:\n    v = 7\np = P()")
	m, err := a.svc.Save(ctx2m(t), SaveRequest{Name: "friday", Owner: "alice", KernelID: ka})
	if err != nil {
		t.Fatal(err)
	}
	if m.NotReplicated != "" {
		t.Fatalf("save answered NotReplicated %q with the object store up", m.NotReplicated)
	}
	info, err := objs.Info(ctx2m(t), "alice~friday")
	if err != nil {
		t.Fatalf("the save answered before its object was in the store: %v", err)
	}
	if fi, _ := os.Stat(a.files.Path("alice~friday")); info.Size != uint64(fi.Size()) || info.Meta["sha256"] != m.SHA256 {
		t.Fatalf("object %+v is not node A's file (%d bytes, sha256 %s)", info, fi.Size(), m.SHA256)
	}

	b := replicaRig(t, objs, clusterSecret)
	if _, err := b.svc.Load(ctx2m(t), LoadRequest{Name: "friday", Owner: "alice", KernelID: "none"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B loads a checkpoint it never fetched: %v, want ErrNotFound", err)
	}
	am, err := b.svc.Adopt(ctx2m(t), "alice~friday", fetchFrom(objs, "alice~friday"))
	if err != nil {
		t.Fatal(err)
	}
	if am.Owner != "alice" || am.Name != "friday" || am.SHA256 != m.SHA256 || am.KernelID != ka {
		t.Fatalf("adopted %+v, want alice's friday of kernel %s, sha256 %s", am, ka, m.SHA256)
	}
	if e := b.state().Checkpoints["alice~friday"]; e.SHA256 != m.SHA256 {
		t.Fatalf("B's state after adopt: %+v, want the saved sha256", e)
	}
	kb := b.kernel()
	if _, err := b.svc.Load(ctx2m(t), LoadRequest{Name: "friday", Owner: "alice", KernelID: kb}); err != nil {
		t.Fatal(err)
	}
	if got := b.run(kb, "print(x + 1, d, p.v)"); got != "42 {'k': [1, 2]} 7" {
		t.Fatalf("variables on B = %q, want 42 {'k': [1, 2]} 7", got)
	}
	// Adopting what B has already records nothing twice.
	if _, err := b.svc.Adopt(ctx2m(t), "alice~friday", fetchFrom(objs, "alice~friday")); err != nil {
		t.Fatal(err)
	}
	if n := savedRecords(t, b, "alice~friday"); n != 1 {
		t.Fatalf("B recorded %d CheckpointSaved for one file adopted twice, want 1", n)
	}

	t.Run("tampered", func(t *testing.T) {
		good, _ := os.ReadFile(a.files.Path("alice~friday"))
		bad := append([]byte(nil), good...)
		bad[len(bad)/2] ^= 0x40
		p := t.TempDir() + "/bad"
		_ = os.WriteFile(p, bad, 0o600)
		if err := objs.Put(ctx2m(t), "alice~friday", p, nil); err != nil {
			t.Fatal(err)
		}
		before := b.sigFailures()
		_, err := b.svc.Adopt(ctx2m(t), "alice~friday", fetchFrom(objs, "alice~friday"))
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("a tampered object: %v, want ErrRejected", err)
		}
		if b.sigFailures() != before+1 {
			t.Fatal("a tampered object is not counted as a signature failure")
		}
		if got, _ := os.ReadFile(b.files.Path("alice~friday")); string(got) != string(good) {
			t.Fatal("a refused object replaced B's good file")
		}
		if _, err := b.svc.Load(ctx2m(t), LoadRequest{Name: "friday", Owner: "alice", KernelID: kb}); err != nil {
			t.Fatalf("B's own copy no longer loads after a refused fetch: %v", err)
		}
	})

	t.Run("foreign key", func(t *testing.T) {
		c := replicaRig(t, objs, "another-clusters-secret-9a8b7c6d5e4f")
		kc := c.kernel()
		c.run(kc, "y = 1")
		if _, err := c.svc.Save(ctx2m(t), SaveRequest{Name: "other", Owner: "bob", KernelID: kc}); err != nil {
			t.Fatal(err)
		}
		_, err := b.svc.Adopt(ctx2m(t), "bob~other", fetchFrom(objs, "bob~other"))
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "which this server does not have") {
			t.Fatalf("an object signed with another key: %v, want a rejection naming the unknown key", err)
		}
		if b.files.Exists("bob~other") {
			t.Fatal("a refused object was committed on B")
		}
	})
}

// TestReplicaDown: with the object store unreachable a save still commits
// and records on this node and says why it is there only; a delete that
// cannot delete the copy deletes nothing.
func TestReplicaDown(t *testing.T) {
	bus, objs := openObjectStore(t)
	a := replicaRig(t, objs, clusterSecret)
	ka := a.kernel()
	a.run(ka, "x = 1")
	if err := bus.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := a.svc.Save(ctx2m(t), SaveRequest{Name: "alone", KernelID: ka})
	if err != nil {
		t.Fatalf("a save with the object store down failed: %v (it must commit on this node)", err)
	}
	if m.NotReplicated == "" || !strings.Contains(m.NotReplicated, "alone") {
		t.Fatalf("NotReplicated = %q, want why the copy failed, naming the checkpoint", m.NotReplicated)
	}
	if _, ok := a.state().Checkpoints["alone"]; !ok || !a.files.Exists("alone") {
		t.Fatal("the save was not committed and recorded on this node")
	}
	err = a.svc.Delete(ctx2m(t), "", "alone", "admin")
	if err == nil || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("delete with the store down: %v, want a refusal saying nothing was deleted", err)
	}
	if !a.files.Exists("alone") {
		t.Fatal("a delete that could not reach the object store removed the local file")
	}
}
