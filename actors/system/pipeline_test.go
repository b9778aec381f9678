package system_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// pipelined waits until execution id is in the log as started behind
// first, and shown queued behind it.
func pipelined(t *testing.T, s *testkit.Stack, k, id, first string) {
	t.Helper()
	s.WaitEvent(k, 0, func(e events.Event) bool {
		p, ok := e.Payload.(events.ExecutionStarted)
		return ok && p.ExecutionID == id && p.Behind == first
	}, 30*time.Second)
	testkit.WaitUntil(t, 30*time.Second, "the pipelined execution shown queued behind the running one", func() (bool, string) {
		x, _ := s.Queue.Get(id)
		return x.Status == queue.StatusQueued && x.Behind == first, string(x.Status) + " behind " + x.Behind
	})
}

func ranFile(t *testing.T) string { return filepath.Join(t.TempDir(), "ran") }

func readRan(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestPipelinedRunsBehindTheRunningOne: on ipykernel the next queued
// execution is sent behind the running one (ExecutionStarted{behind}),
// shown queued until the running one ends, then runs once, in order.
func TestPipelinedRunsBehindTheRunningOne(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ran := ranFile(t)
	hold := testkit.NewSentinel(t)
	a := submit(t, s, k, hold.Code(marks(ran, "A")))
	b := submit(t, s, k, marks(ran, "B"))
	c := submit(t, s, k, marks(ran, "C"))
	s.WaitOutput(k, a, "waiting", 30*time.Second)
	pipelined(t, s, k, b, a)
	testkit.WaitUntil(t, 30*time.Second, "c in the queue model", func() (bool, string) {
		x, ok := s.Queue.Get(c)
		return ok, string(x.Status)
	})
	if x, _ := s.Queue.Get(c); x.Status != queue.StatusQueued || x.Behind != "" || x.MsgID != "" || s.Count(c, events.TypeExecutionStarted) != 0 {
		t.Fatalf("depth 1: c waits in the server's queue, not in the kernel: %+v", x)
	}
	hold.Release()
	for i, id := range []string{a, b, c} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != i+1 {
			t.Fatalf("execution %d: %+v", i, x)
		}
	}
	if got := readRan(t, ran); got != "ABC" {
		t.Fatalf("ran %q, want ABC", got)
	}
}

// TestCancelOfPipelinedNeverRuns: cancel of an execution already sent
// behind the running one asks the kernel to abort it; the kernel had not
// taken it up, so it ends cancelled and never runs (the file it would
// write says so), and the queue goes on.
func TestCancelOfPipelinedNeverRuns(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ran := ranFile(t)
	hold := testkit.NewSentinel(t)
	a := submit(t, s, k, hold.Code(marks(ran, "A")))
	b := submit(t, s, k, marks(ran, "B"))
	s.WaitOutput(k, a, "waiting", 30*time.Second)
	pipelined(t, s, k, b, a)
	if path, err := s.System.Cancel(context.Background(), k, b, "admin"); err != nil || path != system.CancelAbortRequested {
		t.Fatalf("cancel of the pipelined execution: path %v (want the kernel asked to abort it) %v", path, err)
	}
	c := submit(t, s, k, marks(ran, "C"))
	hold.Release()
	if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusCancelled {
		t.Fatalf("b: %+v", x)
	}
	if n := s.Count(b, events.TypeExecutionCancelled); n != 1 {
		t.Fatalf("b cancelled %d times", n)
	}
	for _, id := range []string{a, c} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK {
			t.Fatalf("%s: %+v", id, x)
		}
	}
	if got := readRan(t, ran); got != "AC" {
		t.Fatalf("ran %q, want AC: the cancelled execution must never run", got)
	}
}

// TestInterruptWithOnePipelined: an interrupt stops the running execution
// only; the one pipelined behind it still runs, once.
func TestInterruptWithOnePipelined(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ran := ranFile(t)
	hold := testkit.NewSentinel(t)
	a := submit(t, s, k, hold.Code(marks(ran, "A")))
	b := submit(t, s, k, marks(ran, "B"))
	s.WaitOutput(k, a, "waiting", 30*time.Second)
	pipelined(t, s, k, b, a)
	if err := s.System.InterruptKernel(context.Background(), k, "admin"); err != nil {
		t.Fatal(err)
	}
	if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusInterrupted {
		t.Fatalf("a: %+v", x)
	}
	if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 2 {
		t.Fatalf("b: %+v", x)
	}
	if got := readRan(t, ran); got != "B" {
		t.Fatalf("ran %q, want B once", got)
	}
}

// TestTwoInFlightLostOnDeathRestartShutdown: when the kernel dies, is
// restarted or shut down with one running and one pipelined, both are
// recorded lost (by the kernel actor, their writer), and neither runs.
func TestTwoInFlightLostOnDeathRestartShutdown(t *testing.T) {
	for _, how := range []string{"killed", "restarted", "shut down"} {
		t.Run(how, func(t *testing.T) {
			s := testkit.StartStack(t, "")
			k := startKernel(t, s)
			pid := kernelState(t, s, k).Process.Pid
			ran := ranFile(t)
			hold := testkit.NewSentinel(t)
			a := submit(t, s, k, hold.Code(marks(ran, "A")))
			b := submit(t, s, k, marks(ran, "B"))
			s.WaitOutput(k, a, "waiting", 30*time.Second)
			pipelined(t, s, k, b, a)
			var err error
			switch how {
			case "killed":
				err = syscall.Kill(pid, syscall.SIGKILL)
			case "restarted":
				err = s.System.RestartKernel(context.Background(), k, "admin")
			case "shut down":
				err = s.System.ShutdownKernel(context.Background(), k, "admin")
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{a, b} {
				if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusLost {
					t.Fatalf("%s: %+v", id, x)
				}
				if n := s.Count(id, events.TypeExecutionLost); n != 1 {
					t.Fatalf("%s lost %d times", id, n)
				}
			}
			hold.Release()
			if got := readRan(t, ran); got != "" {
				t.Fatalf("ran %q: neither may run", got)
			}
		})
	}
}

// TestRecoveryWithTwoInFlight: the server restarts with one execution
// running and one pipelined behind it in the kernel. After the re-attach
// both are re-adopted behind the count probe and complete with their
// results, exactly once; the queue goes on. NB: ipykernel sends the
// pipelined one's reply to the closed connection (it read the request from
// there); its IOPub, all in before the probe's, says how it ended.
func TestRecoveryWithTwoInFlight(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ran := ranFile(t)
	hold := testkit.NewSentinel(t)
	a := submit(t, s, k, hold.Code(marks(ran, "A")))
	b := submit(t, s, k, marks(ran, "B"))
	c := submit(t, s, k, marks(ran, "C"))
	s.WaitOutput(k, a, "waiting", 30*time.Second)
	pipelined(t, s, k, b, a)
	s.Restart()
	s.WaitEvent(k, 0, func(e events.Event) bool { return e.Type == events.TypeKernelReattached }, 60*time.Second)
	hold.Release()
	for i, id := range []string{a, b, c} {
		if x := s.WaitExecution(id, 60*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != i+1 {
			t.Fatalf("execution %d: %+v", i, x)
		}
		if st, fin := s.Count(id, events.TypeExecutionStarted), s.Count(id, events.TypeExecutionFinished); st != 1 || fin != 1 {
			t.Fatalf("execution %d: started %d, finished %d times", i, st, fin)
		}
	}
	if got := readRan(t, ran); got != "ABC" {
		t.Fatalf("ran %q, want ABC", got)
	}
}

// TestCancelOfPipelinedThenInterrupt: the matrix's sequence (TestRevisionMatrix):
// the running execution sleeps (the kernel's main thread holds no GIL), the
// one pipelined behind it is cancelled (abort_request) and the kernel is
// interrupted at once. The running one ends interrupted; the pipelined one
// ends cancelled — Cancel returns once the kernel acknowledged the abort,
// so the interrupt (a signal) cannot overtake it — and the next one runs.
// Repeated: before the acknowledgement, the signal could win in the kernel.
func TestCancelOfPipelinedThenInterrupt(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	for round := range 4 {
		a := submit(t, s, k, "import time\nprint('waiting', flush=True)\ntime.sleep(120)")
		b := submit(t, s, k, "print('never')")
		s.WaitOutput(k, a, "waiting", 30*time.Second)
		pipelined(t, s, k, b, a)
		if path, err := s.System.Cancel(context.Background(), k, b, "admin"); err != nil || path != system.CancelAbortRequested {
			t.Fatalf("round %d: cancel of the pipelined execution: path %v %v", round, path, err)
		}
		if err := s.System.InterruptKernel(context.Background(), k, "admin"); err != nil {
			t.Fatal(err)
		}
		if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusInterrupted {
			t.Fatalf("round %d: a: %+v", round, x)
		}
		if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusCancelled {
			t.Fatalf("round %d: b: %+v (want cancelled: the kernel acknowledged the abort before the interrupt)", round, x)
		}
		c := submit(t, s, k, "print('next')")
		if x := s.WaitExecution(c, 30*time.Second); x.Status != queue.StatusOK {
			t.Fatalf("round %d: c: %+v", round, x)
		}
	}
}

// TestCancelOfPipelinedUnacknowledgedIsBounded: a kernel that does not
// answer its control channel (stopped: SIGSTOP) never acknowledges the
// abort_request; Cancel still returns, at AbortReplyTimeout. Once the
// kernel runs again a second Cancel is acknowledged at once, and the
// execution ends cancelled, once, without running.
func TestCancelOfPipelinedUnacknowledgedIsBounded(t *testing.T) {
	const bound = 300 * time.Millisecond
	s := testkit.StartStackWithHooks(t, testkit.Hooks{AbortReplyTimeout: bound})
	k := startKernel(t, s)
	pid := kernelState(t, s, k).Process.Pid
	ran := ranFile(t)
	hold := testkit.NewSentinel(t)
	a := submit(t, s, k, hold.Code(marks(ran, "A")))
	b := submit(t, s, k, marks(ran, "B"))
	s.WaitOutput(k, a, "waiting", 30*time.Second)
	pipelined(t, s, k, b, a)

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	began := time.Now()
	path, err := s.System.Cancel(context.Background(), k, b, "admin")
	took := time.Since(began)
	resume()
	if err != nil || path != system.CancelAbortRequested {
		t.Fatalf("cancel while the kernel is stopped: path %v %v", path, err)
	}
	// NB: the upper bound leaves room for a loaded machine; what matters is
	// that it returned without the kernel's answer.
	if took < bound || took > bound+10*time.Second {
		t.Fatalf("cancel while the kernel is stopped returned after %s, want about %s (AbortReplyTimeout)", took, bound)
	}

	if path, err := s.System.Cancel(context.Background(), k, b, "admin"); err != nil || path != system.CancelAbortRequested {
		t.Fatalf("cancel once the kernel runs again: path %v %v", path, err)
	}
	hold.Release()
	if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("a: %+v", x)
	}
	if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusCancelled {
		t.Fatalf("b: %+v (want cancelled: the second abort was acknowledged before a ended)", x)
	}
	if n := s.Count(b, events.TypeExecutionCancelled); n != 1 {
		t.Fatalf("b cancelled %d times", n)
	}
	if got := readRan(t, ran); got != "A" {
		t.Fatalf("ran %q, want A: the cancelled execution must never run", got)
	}
}
