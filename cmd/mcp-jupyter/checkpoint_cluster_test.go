package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// coreWith opens a core with cfg changed by edit, and an MCP client to it.
func coreWith(t *testing.T, edit func(*config)) (*core, *client.Client) {
	t.Helper()
	cfg := testConfig(t, testkit.TempDataDir(t))
	cfg.NATSJetStream = true
	edit(&cfg)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl
}

func ok(t *testing.T, cl *client.Client, tool string, args map[string]any) (map[string]any, string) {
	t.Helper()
	sc, text := callTool(t, cl, tool, args)
	if strings.HasPrefix(text, "ERROR") {
		t.Fatalf("%s: %s", tool, text)
	}
	return sc, text
}

// TestSingleServerCheckpointsMakeNoObjectStoreCall: without cluster flags
// (JetStream on, so an object store could be made) save, list, load and
// delete work on local files and the checkpoint object store never
// exists.
func TestSingleServerCheckpointsMakeNoObjectStoreCall(t *testing.T) {
	c, cl := coreWith(t, func(*config) {})
	if c.clusterCkpt.enabled() {
		t.Fatal("a single server has the cluster's checkpoints")
	}
	k := startKernelTool(t, cl)
	ok(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 5"})
	_, text := ok(t, cl, "save_environment", map[string]any{"kernel": k, "name": "solo"})
	if strings.Contains(text, "cluster") {
		t.Fatalf("a single server's save speaks of a cluster: %s", text)
	}
	if sc, _ := ok(t, cl, "list_checkpoints", map[string]any{}); sc["source"] != nil {
		t.Fatalf("a single server's list has source %v", sc["source"])
	}
	ok(t, cl, "load_environment", map[string]any{"kernel": k, "name": "solo"})
	ok(t, cl, "delete_checkpoint", map[string]any{"name": "solo"})
	js, err := jetstream.New(c.nats.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.ObjectStore(ctx, natsbus.CheckpointBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("object store %s on a single server: %v, want ErrBucketNotFound (never created)", natsbus.CheckpointBucket, err)
	}
}

// TestClusterCheckpointsThroughTools: in cluster mode (one node here, its
// own JetStream server) a save is in the object store when it answers,
// list_checkpoints lists the cluster's, a node that lacks the file fetches
// it at load_environment and the variables come back; a tampered object
// is refused naming the checkpoint and what to do; delete removes it from
// the store.
func TestClusterCheckpointsThroughTools(t *testing.T) {
	t.Setenv(checkpointfile.SecretEnv, "cluster-tools-test-secret-0a1b2c3d4e5f")
	c, cl := coreWith(t, func(cfg *config) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Close()
		cfg.Cluster = clusterConfig{Node: "node-a", Listen: l.Addr().String(), Name: "mcp-jupyter", Replicas: 1, Lease: 10 * time.Second}
	})
	if !c.clusterCkpt.enabled() {
		t.Fatal("cluster mode without the cluster's checkpoints")
	}
	objs := c.clusterCkpt.objs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := startKernelTool(t, cl)
	ok(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 41\nd = {'k': [1, 2]}"})
	sc, text := ok(t, cl, "save_environment", map[string]any{"kernel": k, "name": "friday"})
	if sc["in_cluster"] != true || !strings.Contains(text, "any node can load it") {
		t.Fatalf("save in cluster mode: %v %s", sc["in_cluster"], text)
	}
	info, err := objs.Info(ctx, "friday")
	if err != nil || info.Meta["node"] != "node-a" {
		t.Fatalf("the object after the save answered: %+v, %v", info, err)
	}
	sc, text = ok(t, cl, "list_checkpoints", map[string]any{})
	list, _ := sc["checkpoints"].([]any)
	if sc["source"] != "cluster" || len(list) != 1 || !strings.Contains(text, natsbus.CheckpointBucket) {
		t.Fatalf("list in cluster mode: %s", text)
	}
	if e := list[0].(map[string]any); e["in_cluster"] != true || e["on_this_node"] != true || e["verified"] != true {
		t.Fatalf("listed: %v", e)
	}

	// This node loses its file (as a node that never had it): load
	// fetches it from the store, verified, and the variables come back.
	good, _ := os.ReadFile(c.clusterCkpt.files.Path("friday"))
	if err := os.Remove(c.clusterCkpt.files.Path("friday")); err != nil {
		t.Fatal(err)
	}
	k2 := startKernelTool(t, cl)
	ok(t, cl, "load_environment", map[string]any{"kernel": k2, "name": "friday"})
	if _, text := ok(t, cl, "execute", map[string]any{"kernel": k2, "code": "print(x + 1, d)"}); !strings.Contains(text, "42 {'k': [1, 2]}") {
		t.Fatalf("variables after a fetch: %s", text)
	}

	// A tampered object: refused by name, with what to do; this node's
	// own copy stays.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 1
	p := t.TempDir() + "/bad"
	_ = os.WriteFile(p, bad, 0o600)
	if err := objs.Put(ctx, "friday", p, map[string]string{"sha256": "tampered", "node": "node-x"}); err != nil {
		t.Fatal(err)
	}
	_, text = callTool(t, cl, "load_environment", map[string]any{"kernel": k2, "name": "friday"})
	for _, want := range []string{`checkpoint "friday"`, natsbus.CheckpointBucket, "MCP_CHECKPOINT_SECRET", "delete_checkpoint"} {
		if !strings.Contains(text, want) {
			t.Fatalf("a tampered object: %q lacks %q", text, want)
		}
	}
	if got, _ := os.ReadFile(c.clusterCkpt.files.Path("friday")); string(got) != string(good) {
		t.Fatal("a refused object replaced this node's file")
	}

	ok(t, cl, "delete_checkpoint", map[string]any{"name": "friday"})
	if _, err := objs.Info(ctx, "friday"); !errors.Is(err, natsbus.ErrNoCheckpoint) {
		t.Fatalf("object after delete_checkpoint: %v, want ErrNoCheckpoint", err)
	}
}
