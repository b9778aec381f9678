package system_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	if err := b.System.Disown(ctx, k, "c", 0); err != nil {
		t.Fatalf("Disown: %v", err)
	}
	testkit.WaitUntil(t, 10*time.Second, "b's process of the kernel killed and reaped", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return errors.Is(err, syscall.ESRCH), fmt.Sprintf("kill(%d, 0): %v; stat %s", pid, err, stat)
	})
}

// TestDisownEndsWhatTheAdopterDidNotKnow: node b, cut off, queued two
// executions (its lease not held: neither started); node c took the kernel
// over having imported b's records up to the first one's queueing. When b
// lets the kernel go it records the second one lost — c never learned of
// it, so no one else would end it — and leaves the first to c; neither
// ran on b.
func TestDisownEndsWhatTheAdopterDidNotKnow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var lost atomic.Bool
	hooks := nodeHooks("b")
	hooks.Held = func(string) error {
		if lost.Load() {
			return errors.New("node b cannot prove it owns the kernel: lease not renewed")
		}
		return nil
	}
	b := testkit.StartStackWithHooks(t, hooks)
	k := startKernel(t, b)
	lost.Store(true)
	b.System.HeldChanged(k)
	known, unknown := submit(t, b, k, "1"), submit(t, b, k, "2")
	queued := b.WaitEvent(k, 0, func(e events.Event) bool {
		return e.Type == events.TypeExecutionQueued && e.Stream == events.ExecutionStream(known)
	}, 10*time.Second)

	if err := b.System.Disown(ctx, k, "c", queued.Seq); err != nil {
		t.Fatalf("Disown: %v", err)
	}
	if n := b.Count(unknown, events.TypeExecutionLost); n != 1 {
		t.Fatalf("the execution c never learned of has %d ExecutionLost, want 1", n)
	}
	var reason string
	_ = b.Log.ReadStream(ctx, events.ExecutionStream(unknown), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.ExecutionLost); ok {
			reason = p.Reason
		}
		return nil
	})
	if !strings.Contains(reason, "node c") || !strings.Contains(reason, "execute it again") {
		t.Errorf("its reason names neither the new owner nor what to do: %q", reason)
	}
	for _, id := range []string{known, unknown} {
		if n := b.Count(id, events.TypeExecutionStarted); n != 0 {
			t.Errorf("execution %s started %d times on the node that lost the kernel", id, n)
		}
	}
	for _, typ := range []string{events.TypeExecutionLost, events.TypeExecutionFinished, events.TypeExecutionCancelled} {
		if n := b.Count(known, typ); n != 0 {
			t.Errorf("the execution c knew of has %d %s written by b, want none (c runs it)", n, typ)
		}
	}
}
