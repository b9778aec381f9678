package scheduler

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// fold turns drafts into events with sequences and applies them, as the
// actor does after a durable append.
func fold(s State, seq *uint64, drafts []events.Draft) State {
	for _, d := range drafts {
		*seq++
		s = Apply(s, events.Event{Seq: *seq, Time: time.Unix(int64(*seq), 0), Stream: d.Stream, Kernel: d.Kernel,
			Type: d.Payload.EventType(), Payload: d.Payload})
	}
	return s
}

func TestSubmitStartsAtOnceOnlyWhenIdle(t *testing.T) {
	var seq uint64
	s := State{KernelID: "k"}
	d, err := DecideSubmit(s, Submit{ExecutionID: "a", Code: "1"}, 10, true, "m-a")
	if err != nil || len(d) != 2 || d[1].Payload.EventType() != events.TypeExecutionStarted {
		t.Fatalf("idle kernel: queued and started in one append, got %v %v", d, err)
	}
	s = fold(s, &seq, d)
	if s.Active == nil || s.Active.ID != "a" || s.Active.MsgID != "m-a" || len(s.Pending) != 0 {
		t.Fatalf("state: %+v", s)
	}
	d, _ = DecideSubmit(s, Submit{ExecutionID: "b"}, 10, true, "m-b")
	if len(d) != 1 {
		t.Fatalf("busy kernel: only queued, got %d drafts", len(d))
	}
	s = fold(s, &seq, d)
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "c"}, 10, true, "m-c")))
	if got := ids(s.Pending); got != "bc" {
		t.Fatalf("FIFO: %q", got)
	}
	if DecideNext(s, "x", false) != nil {
		t.Fatal("nothing may start while one runs on a kernel that does not pipeline")
	}
	if p := DecideNext(s, "x", true); len(p) != 1 || p[0].Payload.(events.ExecutionStarted).Behind != "a" {
		t.Fatalf("a pipelining kernel takes b behind a: %+v", p)
	}
	s = fold(s, &seq, []events.Draft{{Stream: "execution/a", Kernel: "k", Payload: events.ExecutionFinished{ExecutionID: "a", Status: "ok"}}})
	if s.Active != nil {
		t.Fatalf("finished execution still active: %+v", s.Active)
	}
	s = fold(s, &seq, DecideNext(s, "m-b", false))
	if s.Active == nil || s.Active.ID != "b" || ids(s.Pending) != "c" {
		t.Fatalf("next must be the head of the queue: %+v", s)
	}
}

func TestQueueFullAndCancel(t *testing.T) {
	var seq uint64
	s := State{KernelID: "k"}
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "a"}, 2, false, "")))
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "b"}, 2, false, "")))
	if _, err := DecideSubmit(s, Submit{ExecutionID: "c"}, 2, false, ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("want queue full, got %v", err)
	}
	s = fold(s, &seq, mustDecide(DecideCancel(s, "a", "by test", "")))
	if ids(s.Pending) != "b" {
		t.Fatalf("after cancel: %q", ids(s.Pending))
	}
	if _, err := DecideCancel(s, "zzz", "", ""); !errors.Is(err, ErrNotQueued) {
		t.Fatalf("cancel unknown: %v", err)
	}
	lost := DecideLosePending(s, "kernel died")
	s = fold(s, &seq, lost)
	if len(lost) != 1 || len(s.Pending) != 0 || s.Active != nil {
		t.Fatalf("lose all: %d drafts, state %+v", len(lost), s)
	}
}

func mustDecide(d []events.Draft, err error) []events.Draft {
	if err != nil {
		panic(err)
	}
	return d
}

func ids(xs []Execution) string {
	var s string
	for _, x := range xs {
		s += x.ID
	}
	return s
}

// TestSubmitRecordsItsOrigin: a frontend's execution carries its Origin on
// ExecutionQueued (and in the scheduler's state); one that names no
// session or request, or another kind, is refused.
func TestSubmitRecordsItsOrigin(t *testing.T) {
	var seq uint64
	s := State{KernelID: "k"}
	o := &events.Origin{Kind: events.OriginFrontend, Session: "s", MsgID: "m", Username: "ann"}
	d, err := DecideSubmit(s, Submit{ExecutionID: "a", Code: "1", Origin: o}, 10, false, "m-a")
	if err != nil || d[0].Payload.(events.ExecutionQueued).Origin != o {
		t.Fatalf("queued: %+v %v", d, err)
	}
	if s = fold(s, &seq, d); s.Pending[0].Origin != o {
		t.Fatalf("state: %+v", s.Pending[0])
	}
	for _, bad := range []*events.Origin{{Kind: "robot", Session: "s", MsgID: "m"}, {Kind: events.OriginFrontend, MsgID: "m"},
		{Kind: events.OriginFrontend, Session: "s"}, {Kind: events.OriginFrontend, Session: "s", MsgID: "m", Client: string(make([]byte, 2000))}} {
		if _, err := DecideSubmit(s, Submit{ExecutionID: "b", Origin: bad}, 10, false, "m-b"); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("origin %+v: %v", bad, err)
		}
	}
}

// TestStopOnErrorCancelsOnlyItsSession: a frontend's stop-on-error
// execution that fails cancels its session's stop-on-error executions
// waiting behind it, and nothing else: an agent's, another session's, or
// one of its session sent with stop_on_error false. Nothing is pipelined
// behind a stop-on-error execution (the kernel would run it before the
// failure is known).
func TestStopOnErrorCancelsOnlyItsSession(t *testing.T) {
	var seq uint64
	lab := &events.Origin{Kind: events.OriginFrontend, Session: "lab", MsgID: "m"}
	other := &events.Origin{Kind: events.OriginFrontend, Session: "other", MsgID: "m"}
	s := State{KernelID: "k"}
	for _, c := range []Submit{
		{ExecutionID: "a", Origin: lab, StopOnError: true},
		{ExecutionID: "b", Origin: lab, StopOnError: true},
		{ExecutionID: "agent"},
		{ExecutionID: "o", Origin: other, StopOnError: true},
		{ExecutionID: "keep", Origin: lab},
		{ExecutionID: "c", Origin: lab, StopOnError: true},
	} {
		s = fold(s, &seq, mustDecide(DecideSubmit(s, c, 10, true, "m-"+c.ExecutionID)))
	}
	if s.Active == nil || s.Active.ID != "a" || !s.Active.StopOnError {
		t.Fatalf("active %+v", s.Active)
	}
	if d := DecideNext(s, "x", true); d != nil {
		t.Fatalf("pipelined behind a stop-on-error execution: %+v", d)
	}
	a := *s.Active
	s = End(s, "a")
	if d := DecideStopOnError(s, a, "ok"); d != nil {
		t.Fatalf("cancelled after a success: %+v", d)
	}
	d := DecideStopOnError(s, a, "error")
	var got string
	for _, x := range d {
		p := x.Payload.(events.ExecutionCancelled)
		got += p.ExecutionID
		if !strings.Contains(p.Reason, "stop_on_error") || !strings.Contains(p.Reason, "a") {
			t.Fatalf("reason %q", p.Reason)
		}
	}
	if got != "bc" {
		t.Fatalf("cancelled %q, want b and c only", got)
	}
	s = fold(s, &seq, d)
	if ids(s.Pending) != "agentokeep" {
		t.Fatalf("left queued %q", ids(s.Pending))
	}
	agent := Execution{ID: "z", StopOnError: true} // no origin: an agent's
	if DecideStopOnError(s, agent, "error") != nil {
		t.Fatal("an agent's failure cancelled something")
	}
}

// TestUserExpressionsBounded: too many or too long user_expressions are
// refused before anything is recorded.
func TestUserExpressionsBounded(t *testing.T) {
	many := map[string]string{}
	for i := range maxUserExpressions + 1 {
		many[strconv.Itoa(i)] = "1"
	}
	for _, ue := range []map[string]string{many, {"x": strings.Repeat("1", maxUserExpressionBytes)}} {
		if _, err := DecideSubmit(State{KernelID: "k"}, Submit{ExecutionID: "a", UserExpressions: ue}, 10, true, "m"); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("want ErrBadOptions, got %v", err)
		}
	}
}

// TestDisownLosesOnlyWhatTheAdopterDidNotKnow: when node c took the kernel
// over knowing node b's records up to seq 8, b records lost exactly its own
// executions queued after 8 — in flight or waiting —, never one c knew of
// (c runs or ends those) nor one another node queued (imported here).
func TestDisownLosesOnlyWhatTheAdopterDidNotKnow(t *testing.T) {
	x := func(id string, seq uint64, node string) Execution {
		return Execution{ID: id, KernelID: "k", QueuedSeq: seq, QueuedNode: node}
	}
	active, next := x("active-known", 5, "b"), x("next-unknown", 10, "b")
	s := State{KernelID: "k", Active: &active, Next: &next,
		Pending: []Execution{x("known", 7, "b"), x("imported", 9, "a"), x("unknown", 12, "b")}}

	var lost []string
	for _, d := range DecideDisown(s, "b", "c", 8) {
		p, ok := d.Payload.(events.ExecutionLost)
		if !ok || d.Stream != events.ExecutionStream(p.ExecutionID) || d.Kernel != "k" {
			t.Fatalf("draft %+v, want an ExecutionLost on the execution's stream", d)
		}
		for _, want := range []string{"node b accepted it", "node c", "nothing of it ran", "execute it again"} {
			if !strings.Contains(p.Reason, want) {
				t.Errorf("reason %q lacks %q", p.Reason, want)
			}
		}
		lost = append(lost, p.ExecutionID)
	}
	if got := strings.Join(lost, ","); got != "next-unknown,unknown" {
		t.Fatalf("recorded lost: %s, want next-unknown,unknown", got)
	}
	if d := DecideDisown(s, "b", "c", 0); d != nil {
		t.Fatalf("through not known (0): %v, want nothing recorded", d)
	}
}
