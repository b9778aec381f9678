package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// threeNodes opens three cores in cluster mode in this process, routed to
// each other on loopback (opened at once: each waits for its peers).
func threeNodes(t *testing.T) []*core {
	t.Helper()
	cfgs := clusterConfigs(t, 3, "--nats-jetstream", "true")
	cores := make([]*core, 3)
	opened := make([]chan error, 3)
	for i := range cores {
		cores[i] = newCore(cfgs[i], slog.New(slog.DiscardHandler))
		t.Cleanup(func() { _ = cores[i].close(context.Background()) })
		t.Cleanup(func() { testkit.KillKernels(t, cfgs[i].DataDir) })
		opened[i] = make(chan error, 1)
		go func() { opened[i] <- cores[i].open(context.Background()) }() // NB: ends with open (bounded by clusterWait)
		if i == 0 {
			// NB: node0 first, as TestClusterCoresJoin starts them.
			testkit.WaitUntil(t, 30*time.Second, "node0 waits for the cluster", func() (bool, string) {
				rd := cores[0].probes.ready(time.Now())
				return strings.HasPrefix(rd.Checks["cluster"], "waiting for the cluster"), fmt.Sprint(rd)
			})
		}
	}
	for i := range cores {
		select {
		case err := <-opened[i]:
			if err != nil {
				t.Fatalf("open node %d: %v", i, err)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("node %d did not open", i)
		}
	}
	return cores
}

// nodeKernel starts a kernel of alice's on c itself (no routing) and runs
// code in it.
func nodeKernel(t *testing.T, c *core, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// NB: the backend's start: this node claims the kernel's lease first.
	k, err := c.back.StartKernel(auth.WithPrincipal(ctx, agent("alice", 0)), mcpserver.StartKernelRequest{Spec: "python3", Label: "ckpt"})
	if err != nil {
		t.Fatal(err)
	}
	if code != "" {
		nodeRun(t, c, k.ID, code)
	}
	return k.ID
}

func nodeRun(t *testing.T, c *core, kernelID, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := checkpointRunner{System: c.sys, Queue: c.queue, Log: c.log}.Run(ctx, kernelID, code)
	if err != nil {
		t.Fatalf("run %q on %s: %v", code, c.cfg.Cluster.Node, err)
	}
	return strings.TrimSpace(out)
}

// tools is the checkpoint tools' backend of node c, as the MCP server
// calls it (after routing: the kernel is c's).
func tools(c *core) checkpointBackend {
	return checkpointBackend{b: c.back, svc: c.ckpt, cluster: c.clusterCkpt, fetch: c.fetchCheckpoint}
}

// TestCheckpointAcrossThreeNodes: three nodes, R3 object store.
// save_environment on node0 answers once the checkpoint is in the store;
// node1, which lacks the file, lists it as the cluster's and its
// load_environment fetches it (verified with the keyring derived from the
// shared secret) into its own kernel: the variables are back. A tampered
// object is refused by node2 naming the checkpoint and what to do, and
// node2 keeps nothing of it. delete_checkpoint on node1 deletes the object.
// With two nodes gone (no quorum) a save on node0 still commits there and
// says it is on node0 only, and why.
func TestCheckpointAcrossThreeNodes(t *testing.T) {
	nodes := threeNodes(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(auth.WithPrincipal(context.Background(), agent("alice", 0)), 5*time.Minute)
	defer cancel()
	ka := nodeKernel(t, a, "x = 41\nd = {'k': [1, 2]}")
	rep, err := tools(a).SaveEnvironment(ctx, mcpserver.SaveEnvironmentRequest{KernelID: ka, Name: "friday"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Data["in_cluster"] != true || !strings.Contains(rep.Summary, "any node can load it") {
		t.Fatalf("save on node0: %v %s", rep.Data["in_cluster"], rep.Summary)
	}
	objs := b.clusterCkpt.objs
	if info, err := objs.Info(ctx, "alice~friday"); err != nil || info.Meta["node"] != "node0" {
		t.Fatalf("node1 sees the object as %+v, %v; want it, put by node0", info, err)
	}

	if b.clusterCkpt.files.Exists("alice~friday") {
		t.Fatal("node1 has the file before any fetch")
	}
	rep, err = tools(b).Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := rep.Data["checkpoints"].([]clusterListed)
	if rep.Data["source"] != "cluster" || len(list) != 1 || !list[0].InCluster || list[0].OnThisNode || list[0].Name != "friday" ||
		!strings.Contains(rep.Summary, natsbus.CheckpointBucket) {
		t.Fatalf("node1's list: %+v\n%s", list, rep.Summary)
	}
	kb := nodeKernel(t, b, "")
	if _, err := tools(b).LoadEnvironment(ctx, mcpserver.LoadEnvironmentRequest{KernelID: kb, Name: "friday"}); err != nil {
		t.Fatal(err)
	}
	if got := nodeRun(t, b, kb, "print(x + 1, d)"); got != "42 {'k': [1, 2]}" {
		t.Fatalf("variables on node1 = %q", got)
	}

	good, _ := os.ReadFile(a.clusterCkpt.files.Path("alice~friday"))
	bad := append([]byte(nil), good...)
	bad[len(bad)-40] ^= 1 // NB: in the footer's HMAC
	p := t.TempDir() + "/bad"
	_ = os.WriteFile(p, bad, 0o600)
	if err := objs.Put(ctx, "alice~friday", p, map[string]string{"node": "node0"}); err != nil {
		t.Fatal(err)
	}
	kc := nodeKernel(t, c, "")
	_, err = tools(c).LoadEnvironment(ctx, mcpserver.LoadEnvironmentRequest{KernelID: kc, Name: "friday"})
	if !errors.Is(err, checkpoint.ErrRejected) || !strings.Contains(err.Error(), `checkpoint "alice/friday"`) || !strings.Contains(err.Error(), "MCP_CHECKPOINT_SECRET") {
		t.Fatalf("a tampered object loaded on node2: %v, want a refusal naming alice/friday and the secret", err)
	}
	if c.clusterCkpt.files.Exists("alice~friday") {
		t.Fatal("node2 committed a tampered object")
	}

	if _, err := tools(b).DeleteCheckpoint(ctx, "friday"); err != nil {
		t.Fatal(err)
	}
	if _, err := objs.Info(ctx, "alice~friday"); !errors.Is(err, natsbus.ErrNoCheckpoint) {
		t.Fatalf("the object after delete_checkpoint on node1: %v, want ErrNoCheckpoint", err)
	}

	// No quorum left: the save commits on node0 and says so.
	for _, n := range []*core{b, c} {
		if err := n.close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	rep, err = tools(a).SaveEnvironment(ctx, mcpserver.SaveEnvironmentRequest{KernelID: ka, Name: "alone"})
	if err != nil {
		t.Fatalf("a save without the cluster's quorum failed: %v (it must commit on node0)", err)
	}
	if rep.Data["in_cluster"] != false || !strings.Contains(rep.Summary, "SAVED ON NODE node0 ONLY") {
		t.Fatalf("a save without quorum: %v %s", rep.Data["in_cluster"], rep.Summary)
	}
	if took := time.Since(began); took > objectTimeout(0)+20*time.Second {
		t.Fatalf("a save without quorum took %s", took)
	}
	if !a.clusterCkpt.files.Exists("alice~alone") {
		t.Fatal("the save without quorum is not on node0")
	}
}
