package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// TestClusterExecuteWaitsForTheHistory: three nodes (R3 history). An
// execution on node0 runs (its start acknowledged by the stream); with the
// two other nodes gone the stream cannot acknowledge node0's next
// ExecutionStarted, so that execution is started but never sent: it does
// not run (at most once: a node taking the kernel over would find it only
// queued and run it).
func TestClusterExecuteWaitsForTheHistory(t *testing.T) {
	nodes := threeNodes(t)
	a := nodes[0]
	k := nodeKernel(t, a, "x = 1")
	if got := nodeRun(t, a, k, "print(x + 1)"); got != "2" {
		t.Fatalf("run with the cluster whole: %q", got)
	}
	for _, c := range nodes[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.close(ctx); err != nil {
			t.Logf("close %s: %v", c.cfg.Cluster.Node, err)
		}
		cancel()
	}
	ran := filepath.Join(t.TempDir(), "ran")
	x, err := a.sys.Submit(context.Background(), k, scheduler.Submit{Code: fmt.Sprintf("open(%q, 'w').write('ran')", ran), By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got, _ := a.queue.Get(x.ID); got.Status != queue.StatusRunning; got, _ = a.queue.Get(x.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the execution was not started: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // NB: a sent request would have run many times over
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Fatalf("the execution ran although the history never acknowledged its start: %v", err)
	}
	if got, _ := a.queue.Get(x.ID); got.Status != queue.StatusRunning {
		t.Fatalf("the execution is no longer waiting: %+v", got)
	}
}
