package system_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// crash is what the tests send an actor whose PanicOn hook selects it.
type crash struct{}

func isCrash(m any) bool { _, ok := m.(crash); return ok }

// runsExactlyOnce checks that each execution ended ok, printed want[i], and
// has exactly one ExecutionStarted and one ExecutionFinished in the log.
func runsExactlyOnce(t *testing.T, s *testkit.Stack, ids []string, want []string) {
	t.Helper()
	for i, id := range ids {
		x := s.WaitExecution(id, 60*time.Second)
		if x.Status != queue.StatusOK || !strings.Contains(stdout(s, id), want[i]) {
			t.Fatalf("execution %d: %+v printed %q, want %q", i, x, stdout(s, id), want[i])
		}
		if st, fin := s.Count(id, events.TypeExecutionStarted), s.Count(id, events.TypeExecutionFinished); st != 1 || fin != 1 {
			t.Fatalf("execution %d: started %d and finished %d times, want once each", i, st, fin)
		}
	}
}

// TestKernelActorCrashMidExecutionRecovers: the kernel actor panics while
// an execution runs (held by a sentinel) and three wait. Supervision
// restarts it; it recovers from kernel/<id>, re-attaches to the process
// (KernelReattached), the scheduler hands back the running execution, and
// everything finishes exactly once, the running one ok with all its output.
func TestKernelActorCrashMidExecutionRecovers(t *testing.T) {
	s := testkit.StartStackWithHooks(t, testkit.Hooks{KernelPanicOn: isCrash})
	k := startKernel(t, s)
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code("print('after')"))
	var queued []string
	for i := 0; i < 3; i++ {
		queued = append(queued, submit(t, s, k, fmt.Sprintf("print('q%d')", i)))
	}
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	kpid, _, err := s.System.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Log.Last()
	s.System.Actors().Root.Send(kpid, crash{})
	s.WaitEvent(k, before, func(e events.Event) bool { return e.Type == events.TypeKernelReattached }, 60*time.Second)
	hold.Release()
	runsExactlyOnce(t, s, append([]string{running}, queued...), []string{"waiting\nafter", "q0", "q1", "q2"})
	if st := kernelState(t, s, k); st.Status != kernel.StatusRunning {
		t.Fatalf("kernel after the crash: %+v", st)
	}
}

// TestSchedulerCrashMidQueueRecovers: the scheduler panics on the message
// that tells it the running execution ended, so it never applies it. It
// comes back from the log (the final event the kernel actor wrote), asks the
// kernel actor whether it can take work, and the queue runs on: each
// execution exactly once, in order.
func TestSchedulerCrashMidQueueRecovers(t *testing.T) {
	var armed, crashed atomic.Bool
	s := testkit.StartStackWithHooks(t, testkit.Hooks{SchedulerPanicOn: func(m any) bool {
		if _, ok := m.(kernel.ExecutionEnded); ok && armed.Load() {
			return crashed.CompareAndSwap(false, true)
		}
		return false
	}})
	k := startKernel(t, s)
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code("n = 0\nprint('after')"))
	var queued []string
	for i := 0; i < 3; i++ {
		queued = append(queued, submit(t, s, k, fmt.Sprintf("n += 1\nprint('q%d', n)", i)))
	}
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	armed.Store(true)
	hold.Release()
	runsExactlyOnce(t, s, append([]string{running}, queued...), []string{"after", "q0 1", "q1 2", "q2 3"})
	if !crashed.Load() {
		t.Fatal("the scheduler never crashed: the test proved nothing")
	}
	if x, err := s.System.Submit(context.Background(), k, scheduler.Submit{Code: "print('still')"}); err != nil {
		t.Fatalf("submit after the crash: %v", err)
	} else if y := s.WaitExecution(x.ID, 30*time.Second); y.Status != queue.StatusOK {
		t.Fatalf("after the crash: %+v", y)
	}
}

// TestSchedulerCrashDuringReconcileDispatchesAgain: after a server restart
// the kernel actor reconciles (its count probe waits behind the running
// execution, held by a sentinel); the scheduler crashes meanwhile, so its
// new instance's Watch is not answered until the reconcile ends. The
// queued executions must still run, each once, after it ends.
func TestSchedulerCrashDuringReconcileDispatchesAgain(t *testing.T) {
	var reconciling atomic.Bool
	s := testkit.StartStackWithHooks(t, testkit.Hooks{SchedulerPanicOn: isCrash,
		KernelPanicOn: func(m any) bool {
			if _, ok := m.(kernel.Reconcile); ok {
				reconciling.Store(true) // NB: an observer only: never panics
			}
			return false
		}})
	k := startKernel(t, s)
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code("print('after')"))
	var queued []string
	for i := 0; i < 2; i++ {
		queued = append(queued, submit(t, s, k, fmt.Sprintf("print('q%d')", i)))
	}
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	s.Restart()
	testkit.WaitUntil(t, 60*time.Second, "the kernel actor asked to reconcile", func() (bool, string) {
		return reconciling.Load(), ""
	})
	_, spid, err := s.System.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	s.System.Actors().Root.Send(spid, crash{})
	hold.Release()
	runsExactlyOnce(t, s, append([]string{running}, queued...), []string{"after", "q0", "q1"})
}
