package eventlog_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestTruncateInChunks: a truncation larger than one batch (retention
// switched on over a long log) deletes everything in several batches and
// still keeps what keep keeps.
func TestTruncateInChunks(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	const n = 150_000
	ds := make([]events.Draft, 0, 10_000)
	for i := range n {
		k := "k1"
		if i%10_000 == 0 {
			k = "pinned"
		}
		ds = append(ds, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelInterrupted{KernelID: k, Mode: "signal"}})
		if len(ds) == cap(ds) {
			testkit.AppendAll(t, l, ds)
			ds = ds[:0]
		}
	}
	keep := func(e events.Event) bool { return e.Stream == events.KernelStream("pinned") }
	deleted, err := l.TruncateBefore(n, keep)
	if err != nil || deleted != n-1-15 {
		t.Fatalf("TruncateBefore(%d) = %d, %v; want %d deleted (all but the last and 15 pinned)", n, deleted, err, n-1-15)
	}
	if l.First() != n {
		t.Fatalf("First = %d, want %d", l.First(), n)
	}
	var pinned int
	if err := l.ReadStream(context.Background(), events.KernelStream("pinned"), 0, func(events.Event) error { pinned++; return nil }); err != nil || pinned != 15 {
		t.Fatalf("pinned stream has %d events (%v), want 15", pinned, err)
	}
	var k1 int
	if err := l.ReadKernel(context.Background(), "k1", 0, func(events.Event) error { k1++; return nil }); err != nil || k1 != 1 {
		t.Fatalf("k1 has %d events (%v), want only the last", k1, err)
	}
}

// TestCheckAfterLargestCursor: a cursor of MaxUint64 (after the last event
// anyone could see) is past the retained log, not before it: CheckAfter
// must not wrap after+1 to 0 and answer "event 0 was deleted"; a cursor
// before First still is.
func TestCheckAfterLargestCursor(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	ds := make([]events.Draft, 10)
	for i := range ds {
		ds[i] = events.Draft{Stream: events.KernelStream("k1"), Kernel: "k1", Payload: events.KernelInterrupted{KernelID: "k1", Mode: "signal"}}
	}
	testkit.AppendAll(t, l, ds)
	if err := l.CheckAfter(math.MaxUint64); err != nil {
		t.Fatalf("CheckAfter(MaxUint64) on a whole log = %v, want nil", err)
	}
	if _, err := l.TruncateBefore(6, func(events.Event) bool { return false }); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{5, 6, math.MaxUint64} {
		if err := l.CheckAfter(after); err != nil {
			t.Fatalf("CheckAfter(%d) with First %d = %v, want nil", after, l.First(), err)
		}
	}
	if err := l.CheckAfter(4); !errors.Is(err, eventlog.ErrTruncated) {
		t.Fatalf("CheckAfter(4) with First %d = %v, want ErrTruncated", l.First(), err)
	}
}
