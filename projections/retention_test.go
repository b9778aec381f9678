package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// floorAt is an enabled registry with one reader that needs seq onwards.
func floorAt(seq uint64) *projections.Floors {
	f := &projections.Floors{}
	f.AddFloor("test reader", projections.FloorFunc(func() (uint64, bool) { return seq, true }))
	f.Enable()
	return f
}

// TestFloorsHoldRetentionUntilEnabled: before Enable nothing is truncated
// (the server's readers are not all registered yet); after it, the lowest
// floor wins, and a floor that needs nothing does not hold anything back.
func TestFloorsHoldRetentionUntilEnabled(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendAll(t, l, workload(2, 13)) // 95 events
	floors := &projections.Floors{}
	floors.AddFloor("idle", projections.FloorFunc(func() (uint64, bool) { return 0, false }))
	floors.AddFloor("cursor", projections.FloorFunc(func() (uint64, bool) { return 57, true }))
	r := startRunner(t, l, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 1, Floors: floors}},
		newCounts("counts"))
	waitReady(t, r)
	if got := l.First(); got != 1 {
		t.Fatalf("log starts at %d before Enable, want 1 (nothing truncated while starting)", got)
	}
	if seq, who, _ := floors.Lowest(); seq != 0 || who != "starting" {
		t.Fatalf("Lowest before Enable = %d %q, want 0 \"starting\"", seq, who)
	}
	floors.Enable()
	if seq, who, ok := floors.Lowest(); seq != 57 || who != "cursor" || !ok {
		t.Fatalf("Lowest = %d %q %v, want 57 \"cursor\"", seq, who, ok)
	}
	appendAll(t, l, workload(1, 2)[1:]) // 14 more events: one more periodic snapshot at 100
	if err := r.WaitFor(ctxT(t), l.Last()); err != nil {
		t.Fatal(err)
	}
	if got := l.First(); got != 57 {
		t.Fatalf("log starts at %d, want 57 (the cursor's floor)", got)
	}
}

// TestKeeperKeepsAStreamBelowTheWindow: a kept stream survives however far
// the window moves, and goes once its keeper lets it go.
func TestKeeperKeepsAStreamBelowTheWindow(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendAll(t, l, workload(2, 13))
	live := true
	floors := &projections.Floors{}
	floors.AddKeeper("kernel k0", projections.KeepFunc(func(e events.Event) bool {
		return live && e.Stream == events.KernelStream("k0")
	}))
	floors.Enable()
	r := startRunner(t, l, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 1, Floors: floors}},
		kernels.New(), newCounts("counts"))
	waitReady(t, r)
	if got := l.First(); got != 91 {
		t.Fatalf("log starts at %d, want 91", got)
	}
	var k0 []uint64
	if err := l.ReadStream(ctxT(t), events.KernelStream("k0"), 0, func(e events.Event) error { k0 = append(k0, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(k0) == 0 || k0[0] != 1 {
		t.Fatalf("kept stream kernel/k0 = %v, want it to start with its KernelStarted at 1", k0)
	}
	live = false
	appendAll(t, l, workload(1, 2)[1:])
	if err := r.WaitFor(ctxT(t), l.Last()); err != nil {
		t.Fatal(err)
	}
	k0 = nil
	if err := l.ReadStream(ctxT(t), events.KernelStream("k0"), 0, func(e events.Event) error { k0 = append(k0, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, s := range k0 {
		if s < l.First() {
			t.Fatalf("released stream kernel/k0 still holds event %d below First %d", s, l.First())
		}
	}
}

// TestRunnerIsAFloor: a second runner's snapshots hold back the first
// runner's retention, so it can restart from them.
func TestRunnerIsAFloor(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	appendAll(t, l, workload(2, 13))
	other := startRunner(t, l, projections.Options{}, newCounts("other")) // snapshots only on Close
	waitReady(t, other)
	floors := &projections.Floors{}
	floors.AddFloor("other runner", other)
	floors.Enable()
	r := startRunner(t, l, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 1, Floors: floors}},
		newCounts("counts"))
	waitReady(t, r)
	if got := l.First(); got != 1 {
		t.Fatalf("log starts at %d, want 1: the other runner has no snapshot yet", got)
	}
	if err := other.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, workload(1, 2)[1:])
	if err := r.WaitFor(ctxT(t), l.Last()); err != nil {
		t.Fatal(err)
	}
	if got := l.First(); got != 96 {
		t.Fatalf("log starts at %d, want 96 (the other runner's snapshot at 95)", got)
	}
	again := projections.NewRunner(l, projections.Options{}, newCounts("other"))
	if err := again.Start(ctxT(t)); err != nil {
		t.Fatalf("restart of the other runner from its snapshot: %v", err)
	}
	t.Cleanup(func() { _ = again.Close(context.Background()) })
	waitReady(t, again)
}

// TestTruncatedErrorNamesTheSetting: a reader below the window gets the
// typed error with the hint the server configured.
func TestTruncatedErrorNamesTheSetting(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Node: "test", TruncatedHint: "the server keeps the last 10 events (--retain-events)"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	appendAll(t, l, workload(1, 5))
	r := startRunner(t, l, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 10}}, newCounts("counts"))
	waitReady(t, r)
	err = l.Scan(ctxT(t), 2, 0, func(events.Event) error { return nil })
	var te *eventlog.TruncatedError
	if !errors.As(err, &te) || te.Seq != 2 || te.First != l.First() {
		t.Fatalf("scan from 2 after truncation to %d: %v, want TruncatedError", l.First(), err)
	}
	for _, want := range []string{"--retain-events", "resume from"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}
