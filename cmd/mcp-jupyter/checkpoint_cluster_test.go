package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// coreWith opens a core with testConfig changed by edit (JetStream on, so
// an object store could be made), and an MCP client to it.
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
