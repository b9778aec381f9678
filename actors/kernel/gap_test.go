package kernel

import (
	"fmt"
	"testing"
)

func TestCounterTrackerCountsHoles(t *testing.T) {
	var tr counterTracker
	id := func(n int) string { return fmt.Sprintf("abc-def_1234_%d", n) }
	for n := 10; n < 300; n++ {
		if n == 20 || n == 70 || (n >= 127 && n < 131) {
			continue // dropped by the kernel's PUB socket
		}
		if _, ok := tr.see(id(n)); !ok {
			t.Fatalf("msg_id %s not counted", id(n))
		}
	}
	for _, c := range []struct {
		from, to uint64
		want     int
	}{{10, 299, 6}, {21, 69, 0}, {20, 20, 1}, {127, 130, 4}, {126, 131, 4}, {5, 12, 5}, {290, 310, 11}} {
		if got, known := tr.missing(c.from, c.to); got != c.want || !known {
			t.Errorf("missing(%d, %d) = %d, %v; want %d", c.from, c.to, got, known, c.want)
		}
	}
	tr.forget(200)
	if got, _ := tr.missing(200, 299); got != 0 {
		t.Errorf("after forget: missing(200, 299) = %d, want 0", got)
	}
	if _, ok := tr.see("not-a-session-id"); ok {
		t.Error("an id without a counter was counted")
	}
	if _, ok := tr.see("other_99_250"); ok {
		t.Error("another session's id was counted")
	}
}

// TestCounterTrackerIsBounded: one bit per counter, up to
// maxTrackedCounters; past it gaps are unknown, never wrong.
func TestCounterTrackerIsBounded(t *testing.T) {
	var tr counterTracker
	tr.see("s_1_0")
	tr.see(fmt.Sprintf("s_1_%d", maxTrackedCounters+5))
	if len(tr.words)*64 > maxTrackedCounters {
		t.Fatalf("tracker holds %d bits, bound %d", len(tr.words)*64, maxTrackedCounters)
	}
	if _, known := tr.missing(0, maxTrackedCounters+5); known {
		t.Fatal("an overflowed tracker claims to know the gap")
	}
}

// TestTrackerStaysSmallWhileIdle: messages a kernel sends with nothing in
// flight are forgotten as they come, so a long-lived chatty kernel never
// fills the tracker (which would make every later gap "unknown").
func TestTrackerStaysSmallWhileIdle(t *testing.T) {
	s := NewOutputState("k")
	for n := range 100_000 {
		s, _, _ = Step(s, []Incoming{{Channel: ChannelIOPub, MsgID: fmt.Sprintf("sess_1_%d", n), MsgType: "comm_msg", Content: []byte(`{}`)}})
	}
	if len(s.Counters.words) > 2 || s.Counters.overflow {
		t.Fatalf("tracker holds %d words (overflow %v) with nothing in flight", len(s.Counters.words), s.Counters.overflow)
	}
	s = Expect(s, "m1", "x1", "")
	s, _, _ = Step(s, []Incoming{counted(iopub("m1", "status", busy), 100_000), counted(iopub("m1", "stream", `{}`), 100_002)})
	_, d, _ := Step(s, []Incoming{counted(shell("m1", "execute_reply", ok), 100_003), counted(iopub("m1", "status", idle), 100_004)})
	if len(d) < 2 || renderDraft(d[len(d)-2]) != "execution/x1 ExecutionOutputLost messages=1 "+holeReason {
		t.Fatalf("after a long idle stretch the gap is not counted: %v", d)
	}
}

// TestTrackerTakesOutOfOrderArrivals: a reply on shell can arrive before the
// IOPub status the kernel sent just before it; the earlier counter still
// counts as arrived.
func TestTrackerTakesOutOfOrderArrivals(t *testing.T) {
	var tr counterTracker
	for _, n := range []int{200, 201, 130, 199, 131} {
		tr.see(fmt.Sprintf("s_1_%d", n))
	}
	if got, _ := tr.missing(199, 201); got != 0 {
		t.Fatalf("missing(199, 201) = %d, want 0", got)
	}
	if got, _ := tr.missing(130, 131); got != 0 {
		t.Fatalf("missing(130, 131) = %d, want 0", got)
	}
	if got, _ := tr.missing(130, 201); got != 201-130+1-5 {
		t.Fatalf("missing(130, 201) = %d, want %d", got, 201-130+1-5)
	}
}
