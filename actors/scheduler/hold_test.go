package scheduler

import (
	"slices"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestHoldTranscript: a relaunch into restore (KernelRestarted{Restore})
// holds the queue, naming what was in flight as lost; a restore load
// starts ahead of what waits (even past the queue's bound), or out of turn
// once nothing is in flight; KernelRestored ends the hold. A restart
// someone asked for (no Restore) holds nothing.
func TestHoldTranscript(t *testing.T) {
	var seq uint64
	s := State{KernelID: "k"}
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "a"}, 10, true, "m-a")))
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "b"}, 10, true, "m-b")))
	s = fold(s, &seq, DecideNext(s, "m-b", true)) // b pipelined behind a
	s = fold(s, &seq, mustDecide(DecideSubmit(s, Submit{ExecutionID: "c"}, 10, true, "m-c")))
	s = fold(s, &seq, []events.Draft{{Stream: events.KernelStream("k"), Kernel: "k", Payload: events.KernelRestarted{KernelID: "k", Restore: "auto-k"}}})
	if s.Hold == nil || s.Hold.Checkpoint != "auto-k" || !slices.Equal(s.Hold.Lost, []string{"a", "b"}) || s.Hold.Seq != seq {
		t.Fatalf("hold: %+v", s.Hold)
	}
	// The queue is full: a restore load is queued all the same.
	if _, err := DecideSubmit(s, Submit{ExecutionID: "d"}, 1, false, "m-d"); err == nil {
		t.Fatal("the queue's bound holds for others")
	}
	d, err := DecideSubmitRestore(s, Submit{ExecutionID: "r", Restore: true}, true, "m-r")
	if err != nil || len(d) != 1 {
		t.Fatalf("with a and b in flight the load waits: %v %v", d, err)
	}
	s = fold(s, &seq, d)
	for _, id := range []string{"a", "b"} {
		s = fold(s, &seq, []events.Draft{{Stream: events.ExecutionStream(id), Kernel: "k", Payload: events.ExecutionLost{ExecutionID: id}}})
	}
	if got := ids(s.Pending); got != "cr" || s.Active != nil {
		t.Fatalf("after the losses: pending %q active %+v", got, s.Active)
	}
	s = fold(s, &seq, DecideStartWaiting(s, "r", "m-r"))
	if s.Active == nil || s.Active.ID != "r" || ids(s.Pending) != "c" {
		t.Fatalf("the load starts out of turn: %+v", s)
	}
	if DecideStartWaiting(s, "c", "m-c") != nil {
		t.Fatal("nothing starts out of turn while one is in flight")
	}
	d, _ = DecideSubmitRestore(State{KernelID: "k"}, Submit{ExecutionID: "r2", Restore: true}, true, "m-r2")
	if len(d) != 2 {
		t.Fatalf("nothing in flight: the load starts in its queueing's append: %v", d)
	}
	s = fold(s, &seq, []events.Draft{{Stream: events.KernelStream("k"), Kernel: "k", Payload: events.KernelRestored{KernelID: "k"}}})
	if s.Hold != nil {
		t.Fatalf("KernelRestored ends the hold: %+v", s.Hold)
	}
	s = fold(s, &seq, []events.Draft{{Stream: events.KernelStream("k"), Kernel: "k", Payload: events.KernelRestarted{KernelID: "k"}}})
	if s.Hold != nil {
		t.Fatalf("a requested restart holds nothing: %+v", s.Hold)
	}
}
