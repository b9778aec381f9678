package system_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestQueueWaitsWhileTheLeaseIsNotHeld: a cluster node that cannot prove
// it owns a kernel (system.Config.Held fails: its lease not renewed) starts
// none of the kernel's queued executions — the new owner runs them after
// its takeover —; once Held is true again (the lease renewed, no takeover
// happened) and HeldChanged says so, they run, in order, once each.
func TestQueueWaitsWhileTheLeaseIsNotHeld(t *testing.T) {
	var lost atomic.Bool
	notHeld := errors.New("node a cannot prove it owns the kernel: lease not renewed")
	s := testkit.StartStackWithHooks(t, testkit.Hooks{Held: func(string) error {
		if lost.Load() {
			return notHeld
		}
		return nil
	}})
	k := startKernel(t, s)
	first := submit(t, s, k, "n = 0")
	if x := s.WaitExecution(first, 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("while held: %+v", x)
	}

	lost.Store(true)
	s.System.HeldChanged(k)
	ran := filepath.Join(t.TempDir(), "ran")
	var ids []string
	for i := range 3 {
		x, err := s.System.Submit(context.Background(), k, scheduler.Submit{
			Code: "n += 1\nopen(" + pyString(ran) + ", 'a').write(str(n))\nprint(n)", By: "admin"})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		ids = append(ids, x.ID)
	}
	time.Sleep(1500 * time.Millisecond) // NB: what a dispatch would take many times over
	for _, id := range ids {
		if n := s.Count(id, events.TypeExecutionStarted); n != 0 {
			t.Fatalf("execution %s started %d times while the lease was not held", id, n)
		}
	}
	if b, err := os.ReadFile(ran); err == nil {
		t.Fatalf("the kernel ran code while the lease was not held: %q", b)
	}

	lost.Store(false)
	s.System.HeldChanged(k)
	for _, id := range ids {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK {
			t.Fatalf("after the lease is held again, %s: %+v", id, x)
		}
		if n := s.Count(id, events.TypeExecutionStarted); n != 1 {
			t.Fatalf("execution %s started %d times, want once", id, n)
		}
	}
	if b, err := os.ReadFile(ran); err != nil || string(b) != "123" {
		t.Fatalf("the queued executions ran %q (%v), want 123: each once, in order", b, err)
	}
}

// pyString quotes s as a Python string literal (a path).
func pyString(s string) string { return "r'" + s + "'" }

// TestDisownReapsThisNodesProcess: a node that learns another node took its
// kernel over kills its own process of it and reaps it — no zombie keeps
// the pid (what a check of the pid, as the partition e2e test does, sees
// as alive).
func TestDisownReapsThisNodesProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := testkit.StartStackWithHooks(t, nodeHooks("b"))
	k := startKernel(t, b)
	pid := kernelState(t, b, k).Process.Pid
	if err := b.System.Disown(ctx, k, "c"); err != nil {
		t.Fatalf("Disown: %v", err)
	}
	testkit.WaitUntil(t, 10*time.Second, "b's process of the kernel killed and reaped", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return errors.Is(err, syscall.ESRCH), fmt.Sprintf("kill(%d, 0): %v; stat %s", pid, err, stat)
	})
}
