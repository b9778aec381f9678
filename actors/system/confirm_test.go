package system_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// historyGate stands for the cluster's history (system.Config
// ConfirmStarted): a record is confirmed once the test releases its
// sequence.
type historyGate struct {
	mu       sync.Mutex
	released map[uint64]bool
	asked    map[uint64]bool
	changed  chan struct{}
}

func newHistoryGate() *historyGate {
	return &historyGate{released: map[uint64]bool{}, asked: map[uint64]bool{}, changed: make(chan struct{})}
}

func (g *historyGate) confirm(ctx context.Context, _ string, seq uint64) error {
	for {
		g.mu.Lock()
		if g.released[seq] {
			g.mu.Unlock()
			return nil
		}
		if !g.asked[seq] {
			g.asked[seq] = true
			close(g.changed)
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *historyGate) release(seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released[seq] = true
	close(g.changed)
	g.changed = make(chan struct{})
}

// waitAsked waits until the kernel actor waits for seq.
func (g *historyGate) waitAsked(t *testing.T, seq uint64) {
	t.Helper()
	testkit.WaitUntil(t, 30*time.Second, "the kernel actor waits for the history to confirm the start", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.asked[seq], ""
	})
}

// startedSeq waits for id's ExecutionStarted and returns its log sequence.
func startedSeq(t *testing.T, s *testkit.Stack, k, id string) uint64 {
	t.Helper()
	return s.WaitEvent(k, 0, func(e events.Event) bool {
		p, ok := e.Payload.(events.ExecutionStarted)
		return ok && p.ExecutionID == id
	}, 30*time.Second).Seq
}

// TestExecuteWaitsForTheHistory: in a cluster the execute_request leaves
// only once the history confirmed the ExecutionStarted record (a node
// taking the kernel over would otherwise find it queued and run it again):
// until then the execution is started and has not run; after, it runs
// once.
func TestExecuteWaitsForTheHistory(t *testing.T) {
	g := newHistoryGate()
	s := testkit.StartStackWithHooks(t, testkit.Hooks{ConfirmStarted: g.confirm})
	k := startKernel(t, s)
	ran := ranFile(t)
	a := submit(t, s, k, marks(ran, "A"))
	seq := startedSeq(t, s, k, a)
	g.waitAsked(t, seq)
	time.Sleep(300 * time.Millisecond) // NB: time a sent request would have run in
	if got := readRan(t, ran); got != "" {
		t.Fatalf("ran %q before the history confirmed the start", got)
	}
	if x, _ := s.Queue.Get(a); x.Status.Done() {
		t.Fatalf("ended before it was sent: %+v", x)
	}
	g.release(seq)
	if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 1 {
		t.Fatalf("after the confirm: %+v", x)
	}
	if got := readRan(t, ran); got != "A" {
		t.Fatalf("ran %q, want A once", got)
	}
}

// TestPipelinedWaitsInOrder: the one pipelined behind never overtakes the
// one it is behind, even when the history confirms it first.
func TestPipelinedWaitsInOrder(t *testing.T) {
	g := newHistoryGate()
	s := testkit.StartStackWithHooks(t, testkit.Hooks{ConfirmStarted: g.confirm})
	k := startKernel(t, s)
	ran := ranFile(t)
	a := submit(t, s, k, marks(ran, "A"))
	b := submit(t, s, k, marks(ran, "B"))
	sa := startedSeq(t, s, k, a)
	pipelined(t, s, k, b, a)
	sb := startedSeq(t, s, k, b)
	g.waitAsked(t, sb)
	g.release(sb)
	time.Sleep(300 * time.Millisecond)
	if got := readRan(t, ran); got != "" {
		t.Fatalf("ran %q: the pipelined one left before the one it is behind", got)
	}
	g.release(sa)
	for i, id := range []string{a, b} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != i+1 {
			t.Fatalf("execution %d: %+v", i, x)
		}
	}
	if got := readRan(t, ran); got != "AB" {
		t.Fatalf("ran %q, want AB", got)
	}
}

// TestCancelWhileWaitingForTheHistory: a pipelined execution cancelled
// before its start was confirmed is never sent: it ends cancelled, once,
// and the one before it still runs.
func TestCancelWhileWaitingForTheHistory(t *testing.T) {
	g := newHistoryGate()
	s := testkit.StartStackWithHooks(t, testkit.Hooks{ConfirmStarted: g.confirm})
	k := startKernel(t, s)
	ran := ranFile(t)
	a := submit(t, s, k, marks(ran, "A"))
	b := submit(t, s, k, marks(ran, "B"))
	sa := startedSeq(t, s, k, a)
	pipelined(t, s, k, b, a)
	g.waitAsked(t, startedSeq(t, s, k, b))
	if path, err := s.System.Cancel(context.Background(), k, b, "admin"); err != nil || path != system.CancelAbortRequested {
		t.Fatalf("cancel of the waiting pipelined execution: path %v %v", path, err)
	}
	if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusCancelled {
		t.Fatalf("b: %+v", x)
	}
	g.release(sa)
	if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("a: %+v", x)
	}
	if n := s.Count(b, events.TypeExecutionCancelled); n != 1 {
		t.Fatalf("b cancelled %d times", n)
	}
	if got := readRan(t, ran); got != "A" {
		t.Fatalf("ran %q, want A: the cancelled one was never sent", got)
	}
}

// TestInterruptWhileWaitingForTheHistory: an interrupt while the running
// execution still waits for the history ends it interrupted, unsent (it
// never runs, even once confirmed); the one pipelined behind runs once.
func TestInterruptWhileWaitingForTheHistory(t *testing.T) {
	g := newHistoryGate()
	s := testkit.StartStackWithHooks(t, testkit.Hooks{ConfirmStarted: g.confirm})
	k := startKernel(t, s)
	ran := ranFile(t)
	a := submit(t, s, k, marks(ran, "A"))
	b := submit(t, s, k, marks(ran, "B"))
	sa := startedSeq(t, s, k, a)
	pipelined(t, s, k, b, a)
	sb := startedSeq(t, s, k, b)
	g.waitAsked(t, sb)
	if err := s.System.InterruptKernel(context.Background(), k, "admin"); err != nil {
		t.Fatal(err)
	}
	if x := s.WaitExecution(a, 30*time.Second); x.Status != queue.StatusInterrupted {
		t.Fatalf("a: %+v", x)
	}
	g.release(sa)
	g.release(sb)
	if x := s.WaitExecution(b, 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("b: %+v", x)
	}
	if got := readRan(t, ran); got != "B" {
		t.Fatalf("ran %q, want B: the interrupted one was never sent", got)
	}
}
