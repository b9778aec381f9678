package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestProcTableInClusterTracksOnlyThisNode: in cluster mode the process
// table holds only the processes this node recorded (another node's pid
// names a process on another machine, which must never be reaped here),
// and another node's KernelAdopted retires this node's process of the
// kernel, so that it is reaped as an orphan (it is not the kernel's any
// more).
func TestProcTableInClusterTracksOnlyThisNode(t *testing.T) {
	cmd := exec.Command("sleep", "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	start, err := jupyter.ProcessStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	live := events.KernelProcess{Pid: cmd.Process.Pid, StartTime: start}
	pt := newProcTable()
	pt.node = "a"
	apply := func(node, typ, kernel string, p events.Payload) {
		t.Helper()
		if err := pt.Apply(events.Event{Type: typ, Kernel: kernel, Node: node, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	apply("b", events.TypeKernelStarted, "kb", events.KernelStarted{KernelID: "kb", Process: live})
	apply("a", events.TypeKernelStarted, "ka", events.KernelStarted{KernelID: "ka", Process: live})
	if cur := pt.Current(); len(cur) != 1 || cur[0].Kernel != "ka" {
		t.Fatalf("current processes %+v, want node a's kernel ka only", cur)
	}
	// b's record of its own kernel ending retires nothing of a's.
	apply("b", events.TypeKernelShutDown, "kb", nil)
	if o := pt.Orphans(); len(o) != 0 {
		t.Fatalf("orphans %+v after another node's shutdown", o)
	}
	// b takes ka over: a's process of it is an orphan; b's relaunch is b's.
	apply("b", events.TypeKernelAdopted, "ka", nil)
	apply("b", events.TypeKernelRestarted, "ka", events.KernelRestarted{KernelID: "ka", Process: events.KernelProcess{Pid: 1, StartTime: 1}})
	if cur := pt.Current(); len(cur) != 0 {
		t.Fatalf("current processes %+v after b adopted ka, want none on node a", cur)
	}
	if o := pt.Orphans(); len(o) != 1 || o[0].Kernel != "ka" || o[0].Pid != live.Pid {
		t.Fatalf("orphans %+v, want node a's process of ka", o)
	}

	// A single server (node "") keeps every record, whatever its Node.
	single := newProcTable()
	_ = single.Apply(events.Event{Type: events.TypeKernelStarted, Kernel: "k", Node: "host-1", Payload: events.KernelStarted{KernelID: "k", Process: live}})
	if cur := single.Current(); len(cur) != 1 {
		t.Fatalf("single server's current processes %+v", cur)
	}
}

// A KernelAdopted record another node never earned (injected into the
// history: its lease is still this node's) neither stops this node's
// kernel nor kills its process.
func TestForgedAdoptionDoesNotKillAKernel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfgs := clusterConfigs(t, 2, "--nats-jetstream", "true", "--cluster-replicas", "1", "--cluster-lease", "2s")
	cores := make([]*core, 2)
	opened := make(chan error, 2)
	for i := range cores {
		cores[i] = newCore(cfgs[i], discard())
		go func() { opened <- cores[i].open(context.Background()) }()
	}
	t.Cleanup(func() {
		for _, c := range cores {
			_ = c.close(context.Background())
		}
	})
	for range cores {
		select {
		case err := <-opened:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("the nodes did not open")
		}
	}
	a := cores[0]
	t.Cleanup(func() { testkit.KillKernels(t, cfgs[0].DataDir) })
	inproc, err := client.NewInProcessClient(a.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	k := startKernelTool(t, cl)
	ok(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 41"})
	p, err := a.sys.Kernel(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(events.KernelAdopted{KernelID: k, From: "node0", Reason: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	// node1 is a real node, but it never took the kernel's lease.
	forged := events.Event{Time: time.Now(), Stream: events.KernelStream(k), Kernel: k, Node: "node1",
		Type: events.TypeKernelAdopted, Version: 1, Raw: raw}
	if err := a.log.AppendForeign(ctx, a.log.ForeignPosition()+1000, []events.Event{forged}); err != nil {
		t.Fatal(err)
	}
	// NB: the follower gives the leases a lease time to confirm it.
	deadline := time.Now().Add(a.cfg.Cluster.Lease + 3*time.Second)
	for time.Now().Before(deadline) {
		if !a.sys.HasKernel(k) || !alive(proc{Kernel: k, Pid: p.Process.Pid, Start: p.Process.StartTime}) {
			t.Fatalf("a forged KernelAdopted by node1 stopped kernel %s (runs %v)", k, a.sys.HasKernel(k))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(x + 1)"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("the kernel after a forged adoption: %v\n%s", sc, text)
	}
}
