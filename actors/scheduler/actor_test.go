package scheduler

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// fakeKernel stands where the kernel actor would: it answers Watch with
// the reply it is given and hands every other message to the test.
type fakeKernel struct {
	watch any
	got   chan any
}

func (f *fakeKernel) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case kernel.Watch:
		if f.watch != nil {
			ctx.Respond(f.watch)
		}
	case kernel.Execute, kernel.Resume:
		f.got <- m
	}
}

type env struct {
	t     *testing.T
	log   *eventlog.Log
	sys   *actor.ActorSystem
	kern  *fakeKernel
	sched *actor.PID
}

func newEnv(t *testing.T, watch any, history ...events.Draft) *env {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(t.TempDir(), "events"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if len(history) > 0 {
		if _, err := l.Append(context.Background(), history...); err != nil {
			t.Fatal(err)
		}
	}
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	e := &env{t: t, log: l, sys: sys, kern: &fakeKernel{watch: watch, got: make(chan any, 16)}}
	kpid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return e.kern }), "kernel/k")
	if err != nil {
		t.Fatal(err)
	}
	e.sched = sys.Root.Spawn(Props("k", Deps{Log: l, Kernel: kpid}))
	return e
}

func (e *env) state() State {
	e.t.Helper()
	res, err := e.sys.Root.RequestFuture(e.sched, Snapshot{}, 5*time.Second).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return res.(State)
}

// next returns what the scheduler sent the kernel, or nil after wait.
func (e *env) next(wait time.Duration) any {
	select {
	case m := <-e.kern.got:
		return m
	case <-time.After(wait):
		return nil
	}
}

func (e *env) count(id, typ string) int {
	// NB: the scheduler hands an execution over before its start is
	// durable; a durable append of our own makes every earlier one durable
	// (WAL order), so the count below sees what the scheduler wrote.
	if _, err := e.log.Append(context.Background(), queued("settle-"+id)); err != nil {
		e.t.Fatal(err)
	}
	n := 0
	_ = e.log.ReadStream(context.Background(), events.ExecutionStream(id), 0, func(ev events.Event) error {
		if ev.Type == typ {
			n++
		}
		return nil
	})
	return n
}

func queued(id string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(id), Kernel: "k", Payload: events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "code of " + id}}
}
func startedEv(id string) events.Draft { return started("k", id, "", "msg-"+id) }
func finished(id string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(id), Kernel: "k", Payload: events.ExecutionFinished{ExecutionID: id, Status: "ok"}}
}

// TestRecoversItsQueueAndLearnsEndsByMessage: a fresh scheduler folds its
// kernel's lifecycle from the log; the kernel actor says it runs b, so b is
// not handed back; b's end arrives as a message (not in the log: the
// scheduler must not read it back), and c starts exactly once.
func TestRecoversItsQueueAndLearnsEndsByMessage(t *testing.T) {
	e := newEnv(t, kernel.Ready{Running: "b"}, queued("a"), startedEv("a"), finished("a"), queued("b"), queued("c"), startedEv("b"))
	s := e.state()
	if s.Active == nil || s.Active.ID != "b" || s.Active.MsgID != "msg-b" || len(s.Pending) != 1 || s.Pending[0].ID != "c" || s.Pending[0].Code != "code of c" {
		t.Fatalf("recovered %+v", s)
	}
	if m := e.next(100 * time.Millisecond); m != nil {
		t.Fatalf("the kernel runs b: nothing to send, got %#v", m)
	}
	e.sys.Root.Send(e.sched, kernel.ExecutionEnded{ExecutionID: "b", Status: "ok"})
	m, ok := e.next(5 * time.Second).(kernel.Execute)
	if !ok || m.ExecutionID != "c" || m.Code != "code of c" || m.MsgID == "" {
		t.Fatalf("want c sent next, got %#v", m)
	}
	if n := e.count("c", events.TypeExecutionStarted); n != 1 {
		t.Fatalf("c started %d times", n)
	}
	if n := e.count("b", events.TypeExecutionFinished) + e.count("b", events.TypeExecutionLost); n != 0 {
		t.Fatalf("the scheduler wrote an end of b, which is the kernel actor's: %d", n)
	}
}

// TestStoppedKernelLosesWhatNeverStarted: when the kernel stops for good,
// the scheduler records the loss of queued executions only; the started one
// nobody will end is handed to the kernel actor (once, however often it
// hears of the stop).
func TestStoppedKernelLosesWhatNeverStarted(t *testing.T) {
	e := newEnv(t, kernel.Stopped{Status: kernel.StatusDead, Reason: "killed"}, queued("a"), startedEv("a"), queued("b"))
	if m, ok := e.next(5 * time.Second).(kernel.Resume); !ok || m.ExecutionID != "a" || m.MsgID != "msg-a" {
		t.Fatalf("want a handed back to the kernel actor, got %#v", m)
	}
	e.sys.Root.Send(e.sched, kernel.Stopped{Status: kernel.StatusDead, Reason: "killed"})
	s := e.state()
	if m := e.next(100 * time.Millisecond); m != nil {
		t.Fatalf("a is handed back once, got %#v", m)
	}
	if len(s.Pending) != 0 || s.Active == nil || s.Active.ID != "a" {
		t.Fatalf("state: %+v", s)
	}
	if e.count("b", events.TypeExecutionLost) != 1 || e.count("a", events.TypeExecutionLost) != 0 {
		t.Fatal("the scheduler records the loss of b (never started) only")
	}
	res, err := e.sys.Root.RequestFuture(e.sched, Submit{ExecutionID: "z", Code: "1"}, 5*time.Second).Result()
	if err != nil || res.(SubmitResult).Err == nil {
		t.Fatalf("a stopped kernel takes no work: %+v %v", res, err)
	}
}

// TestChosenIDThatEndedIsNotQueuedAgain: a Submit of a client-chosen id
// whose execution already ran, ended and became durable after the
// submitter's own look-up in the log (the window between that look-up and
// the scheduler) returns the execution: it is not queued or run again.
func TestChosenIDThatEndedIsNotQueuedAgain(t *testing.T) {
	e := newEnv(t, kernel.Ready{})
	submit := func() SubmitResult {
		res, err := e.sys.Root.RequestFuture(e.sched, Submit{ExecutionID: "x", Code: "1", ChosenID: true}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(SubmitResult)
	}
	first := submit()
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if m, ok := e.next(5 * time.Second).(kernel.Execute); !ok || m.ExecutionID != "x" {
		t.Fatalf("want x sent, got %#v", m)
	}
	e.sys.Root.Send(e.sched, kernel.ExecutionEnded{ExecutionID: "x", Status: "ok"})
	if _, err := first.Durable.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := submit(); again.Err != nil || again.Execution.ID != "x" || again.Execution.Code != "1" {
		t.Fatalf("second submit of x: %+v", again)
	}
	if n := e.count("x", events.TypeExecutionQueued); n != 1 {
		t.Fatalf("x queued %d times, want once", n)
	}
	if m := e.next(200 * time.Millisecond); m != nil {
		t.Fatalf("x sent again: %#v", m)
	}
}
