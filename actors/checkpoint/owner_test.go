package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// principalRunner runs the checkpoint code as the server's runner does: as
// an execution of the principal whose save or load it is.
type principalRunner struct{ st *testkit.Stack }

func (p principalRunner) Run(ctx context.Context, kernelID, code string) (string, error) {
	x, err := p.st.System.Submit(ctx, kernelID, scheduler.Submit{Code: code, By: events.PrincipalFrom(ctx)})
	if err != nil {
		return "", err
	}
	var done queue.Execution
	for {
		changed := p.st.Queue.Changed() // NB: before reading, so no change is missed
		if cur, ok := p.st.Queue.Get(x.ID); ok && cur.Status.Done() {
			done = cur
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for execution %s: %w", x.ID, ctx.Err())
		}
	}
	var out strings.Builder
	for _, o := range p.st.Outputs(x.ID) {
		if o.MsgType == "stream" {
			out.WriteString(streamText(o.Content))
		}
	}
	if done.Status != "ok" {
		return out.String(), fmt.Errorf("execution %s ended %s: %s %s", x.ID, done.Status, done.ErrorName, done.ErrorValue)
	}
	return out.String(), nil
}

func streamText(content []byte) string {
	var c struct{ Name, Text string }
	if err := json.Unmarshal(content, &c); err != nil || c.Name != "stdout" {
		return ""
	}
	return c.Text
}

func TestStoredNames(t *testing.T) {
	for _, c := range []struct{ owner, name, stored string }{
		{"", "x", "x"}, {"admin", "x", "x"}, {"alice", "x", "alice~x"},
		{"oidc:auth0|42/a b", "x", "oidc:auth0%7C42%2Fa%20b~x"},
	} {
		got := Stored(c.owner, c.name)
		if got != c.stored {
			t.Fatalf("Stored(%q, %q) = %q, want %q", c.owner, c.name, got, c.stored)
		}
		if err := ValidStored(got); err != nil {
			t.Fatalf("ValidStored(%q): %v", got, err)
		}
		owner, name := Owned(got)
		if c.owner == "" {
			c.owner = AdminOwner
		}
		if owner != c.owner || name != c.name {
			t.Fatalf("Owned(%q) = %q, %q", got, owner, name)
		}
	}
	for _, bad := range []string{"~x", ".a~x", "a~b~c", "a/b~x", "a~../x"} {
		if ValidStored(bad) == nil {
			t.Fatalf("ValidStored(%q) accepted it", bad)
		}
	}
}

// TestCheckpointsPerPrincipal: alice's "x" and bob's "x" are two
// checkpoints; each loads its own variables; the list shows each with its
// owner; the events carry who saved, loaded and deleted; and a file copied
// from alice's names into bob's is refused (the signature binds the owner).
func TestCheckpointsPerPrincipal(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRigWith(t, st, rigConfig{runner: principalRunner{st}})
	k := r.kernel()
	r.run(k, "v = 'alice'")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "x", Owner: "alice", By: "alice", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	r.run(k, "v = 'bob'")
	m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "x", Owner: "bob", By: "bob", KernelID: k})
	if err != nil {
		t.Fatalf("bob's x beside alice's x: %v", err)
	}
	if m.Name != "x" || m.Owner != "bob" {
		t.Fatalf("save answered name %q owner %q", m.Name, m.Owner)
	}
	l, err := r.svc.List(ctx2m(t))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range l.Checkpoints {
		listed = append(listed, c.Owner+":"+c.Name+fmt.Sprint(c.Verified))
	}
	sort.Strings(listed)
	if strings.Join(listed, " ") != "alice:xtrue bob:xtrue" {
		t.Fatalf("list: %v", listed)
	}
	if l, err := r.svc.ListOwned(ctx2m(t), "bob"); err != nil || len(l.Checkpoints) != 1 || l.Checkpoints[0].Owner != "bob" {
		t.Fatalf("bob's own list: %+v %v, want bob's x alone", l.Checkpoints, err)
	}
	res, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "x", Owner: "alice", By: "alice", KernelID: k})
	if err != nil {
		t.Fatal(err)
	}
	if res.Meta.Owner != "alice" || res.Meta.Name != "x" {
		t.Fatalf("load answered name %q owner %q", res.Meta.Name, res.Meta.Owner)
	}
	if got := r.run(k, "print(v)"); got != "alice" {
		t.Fatalf("alice's x restored v = %q", got)
	}
	if err := r.svc.Delete(ctx2m(t), "bob", "x", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "x", Owner: "bob", By: "bob", KernelID: k}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"bob/x"`) {
		t.Fatalf("bob's deleted x: %v", err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "x", Owner: "alice", By: "alice", KernelID: k}); err != nil {
		t.Fatalf("alice's x after bob deleted his: %v", err)
	}

	// A file copied by hand from alice's x to bob's y is refused.
	dir := filepath.Join(st.DataDir, "checkpoints")
	b, err := os.ReadFile(filepath.Join(dir, "alice~x.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bob~y.ckpt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "y", Owner: "bob", By: "bob", KernelID: k}); !errors.Is(err, ErrRenamed) {
		t.Fatalf("alice's file under bob's name: %v", err)
	}

	// The events, read back from the log, carry who did what.
	byType := map[string][]string{}
	for _, stream := range []string{"checkpoint/alice~x", "checkpoint/bob~x"} {
		err := st.Log.ReadStream(context.Background(), stream, 0, func(e events.Event) error {
			byType[e.Type] = append(byType[e.Type], events.StreamID(e.Stream)+"@"+e.Principal)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		events.TypeCheckpointSaved:   "alice~x@alice bob~x@bob",
		events.TypeCheckpointLoaded:  "alice~x@alice alice~x@alice",
		events.TypeCheckpointDeleted: "bob~x@bob",
	}
	for typ, w := range want {
		if got := strings.Join(byType[typ], " "); got != w {
			t.Fatalf("%s: %q, want %q", typ, got, w)
		}
	}
	// The kernel code of bob's save ran as bob.
	var bobRan bool
	err = st.Log.ReadKernel(context.Background(), k, 0, func(e events.Event) error {
		if e.Type == events.TypeExecutionQueued && e.Principal == "bob" {
			bobRan = true
		}
		return nil
	})
	if err != nil || !bobRan {
		t.Fatalf("no execution of bob's save carries bob (%v)", err)
	}
}

// barrierRunner holds each of the first n runs, once its kernel code ran,
// until all n have: the saves then reach the quota at the same moment.
type barrierRunner struct {
	Runner
	all  chan struct{}
	n    int
	mu   sync.Mutex
	seen int
}

func newBarrierRunner(r Runner, n int) *barrierRunner {
	return &barrierRunner{Runner: r, all: make(chan struct{}), n: n}
}

func (b *barrierRunner) Run(ctx context.Context, k, code string) (string, error) {
	out, err := b.Runner.Run(ctx, k, code)
	b.mu.Lock()
	b.seen++
	if b.seen == b.n {
		close(b.all)
	}
	held := b.seen <= b.n
	b.mu.Unlock()
	if held {
		select {
		case <-b.all:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, err
}

// TestCheckpointQuota: a principal's checkpoint files stay within
// MaxBytesPerOwner, also when saves race; a refused save leaves no file and
// says which limit, which setting and what holds it; others are not
// affected, and replacing a checkpoint counts only the new file.
func TestCheckpointQuota(t *testing.T) {
	st := testkit.StartStack(t, "")
	const limit = 250_000
	r := newRigWith(t, st, rigConfig{runner: newBarrierRunner(principalRunner{st}, 4), maxBytes: limit})
	// NB: one kernel per save, so that the four run at once (the saves of
	// one kernel queue behind each other in it).
	kernels := []string{r.kernel(), r.kernel(), r.kernel(), r.kernel()}
	for _, k := range kernels {
		r.run(k, "blob = b'0' * 100_000")
	}
	// Four saves of ~100 kB race: at most two fit.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = r.svc.Save(ctx2m(t), SaveRequest{Name: fmt.Sprintf("c%d", i), Owner: "alice", By: "alice", KernelID: kernels[i]})
		}(i)
	}
	wg.Wait()
	saved, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			saved++
		case errors.Is(err, ErrQuota):
			refused++
			for _, want := range []string{`principal "alice"`, "--max-checkpoint-bytes 250000", "delete_checkpoint", "nothing was saved"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("refusal %q does not say %q", err, want)
				}
			}
		default:
			t.Fatalf("save: %v", err)
		}
	}
	if saved != 2 || refused != 2 {
		t.Fatalf("%d saved and %d refused, want 2 and 2 (errors %v)", saved, refused, errs)
	}
	used := r.state().Usage("alice", "")
	if used > limit {
		t.Fatalf("alice holds %d bytes of checkpoints, over the limit %d", used, limit)
	}
	// Only the saved checkpoints' files are there (each file and its
	// metadata sidecar): nothing of the refused ones, no staging leftovers.
	var onDisk int64
	entries, err := os.ReadDir(filepath.Join(st.DataDir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		names = append(names, e.Name())
		if strings.HasSuffix(e.Name(), ".ckpt") {
			fi, _ := e.Info()
			onDisk += fi.Size()
		}
	}
	var savedNames []string
	for i, err := range errs {
		if err == nil {
			savedNames = append(savedNames, fmt.Sprintf("alice~c%d.ckpt", i), fmt.Sprintf("alice~c%d.json", i))
		}
	}
	sort.Strings(names)
	sort.Strings(savedNames)
	if strings.Join(names, " ") != strings.Join(savedNames, " ") || onDisk != used {
		t.Fatalf("checkpoint dir holds %v (%d bytes of checkpoints), the log %d bytes, the saves %v: a refused save left something behind", names, onDisk, used, savedNames)
	}
	if left, _ := os.ReadDir(filepath.Join(st.DataDir, "checkpoints", "tmp")); len(left) != 0 {
		t.Fatalf("staging files left behind: %v", left)
	}
	// Replacing one of them counts only the new file.
	var kept string
	for i, err := range errs {
		if err == nil {
			kept = fmt.Sprintf("c%d", i)
		}
	}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: kept, Owner: "alice", By: "alice", KernelID: kernels[0], Overwrite: true}); err != nil {
		t.Fatalf("overwrite within the quota: %v", err)
	}
	// Bob has a quota of his own.
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "c0", Owner: "bob", By: "bob", KernelID: kernels[1]}); err != nil {
		t.Fatalf("bob's save: %v", err)
	}
}
