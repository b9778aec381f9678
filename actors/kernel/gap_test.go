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
