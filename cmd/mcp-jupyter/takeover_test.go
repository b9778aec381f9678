package main

import (
	"os/exec"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
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
