package lease_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// panicOnce returns a BeforeAppend hook that panics the actor at the n-th
// append whose drafts match, once.
func panicOnce(n int64, match func([]events.Draft) bool) (func([]events.Draft), *atomic.Bool) {
	var seen atomic.Int64
	var fired atomic.Bool
	return func(ds []events.Draft) {
		if match(ds) && seen.Add(1) == n && fired.CompareAndSwap(false, true) {
			panic("test hook: crash the lease actor before this append")
		}
	}, &fired
}

func hasType(typ string) func([]events.Draft) bool {
	return func(ds []events.Draft) bool {
		for _, d := range ds {
			if d.Payload.EventType() == typ {
				return true
			}
		}
		return false
	}
}

// TestGCCrashMidwayFinishesOnce: the actor crashes before the second
// batch of a GC is appended. Supervision restarts it; it rebuilds its state
// from its own streams (no snapshot: it never stopped cleanly), the first
// batch's files are gone, and the caller's Collect is answered by the new
// instance, which collects the rest: every expired asset is collected
// exactly once, no file of a collected asset is left, leased ones stay.
func TestGCCrashMidwayFinishesOnce(t *testing.T) {
	const n, leasedEvery = 1000, 10 // three GC batches of 300 (see openEnvHook)
	ctx := context.Background()
	dir := t.TempDir()
	c := newClock()
	hook, fired := panicOnce(2, hasType(events.TypeAssetCollected))
	// Setup: the files and their events, as many Puts would leave them.
	l := testkit.OpenLog(t, filepath.Join(dir, "events"))
	st, err := assetstore.Open(filepath.Join(dir, "assets"))
	if err != nil {
		t.Fatal(err)
	}
	sums := make([]string, n)
	ds := make([]events.Draft, 0, 2*n)
	for i := range n {
		data := fmt.Appendf(nil, "asset %d", i)
		sums[i] = assetstore.Sum(data)
		if err := os.WriteFile(filepath.Join(st.Dir(), sums[i]), data, 0o600); err != nil {
			t.Fatal(err)
		}
		exp := c.Now().Add(time.Hour)
		if i%leasedEvery == 0 {
			exp = c.Now().Add(48 * time.Hour)
		}
		s := events.AssetStream(sums[i])
		ds = append(ds,
			events.Draft{Stream: s, Payload: events.AssetStored{SHA256: sums[i], MIME: "text/plain", Size: int64(len(data))}},
			events.Draft{Stream: s, Payload: events.LeaseGranted{SHA256: sums[i], Holder: "server", ExpiresAt: exp}})
	}
	testkit.AppendAll(t, l, ds)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e := openEnvHook(t, dir, c, nil, hook)
	c.Advance(2 * time.Hour)
	res, err := e.a.Collect(ctx)
	if err != nil {
		t.Fatalf("collect across the crash: %v", err)
	}
	if !fired.Load() {
		t.Fatal("the test hook never crashed the actor: the test proves nothing")
	}
	// The answer comes from the new instance's run: the first batch was
	// collected before the crash and is not collected again.
	if len(res.Sums) == 0 || len(res.Sums) >= n-n/leasedEvery {
		t.Fatalf("the run after the crash collected %d, want the rest after the first batch", len(res.Sums))
	}
	collected := map[string]int{}
	if err := e.log.ReadStreams(ctx, "asset/", 0, func(ev events.Event) error {
		if p, ok := ev.Payload.(events.AssetCollected); ok {
			collected[p.SHA256]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, sum := range sums {
		_, statErr := os.Stat(filepath.Join(st.Dir(), sum))
		leased := i%leasedEvery == 0
		switch {
		case leased && (collected[sum] != 0 || statErr != nil):
			t.Fatalf("leased asset %d: collected %d times, file err %v", i, collected[sum], statErr)
		case !leased && collected[sum] != 1:
			t.Fatalf("expired asset %d collected %d times, want exactly once", i, collected[sum])
		case !leased && statErr == nil:
			t.Fatalf("expired asset %d: file left after the GC", i)
		}
	}
	assertLogMatchesFiles(t, e)
}

// TestPutCrashRecordedOnce: the actor crashes before a Put's append; the
// file is durable, the new instance records it and answers the caller.
func TestPutCrashRecordedOnce(t *testing.T) {
	ctx := context.Background()
	hook, fired := panicOnce(1, hasType(events.TypeAssetStored))
	e := openEnvHook(t, t.TempDir(), newClock(), nil, hook)
	sum, err := e.a.Put(ctx, []byte("<svg/>"), "image/svg+xml", lease.Origin{KernelID: "k", ExecutionID: "x"})
	if err != nil || sum != assetstore.Sum([]byte("<svg/>")) {
		t.Fatalf("put across the crash: %q %v", sum, err)
	}
	if !fired.Load() {
		t.Fatal("the test hook never crashed the actor")
	}
	stored := 0
	if err := e.log.ReadStream(ctx, events.AssetStream(sum), 0, func(ev events.Event) error {
		if ev.Type == events.TypeAssetStored {
			stored++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Fatalf("AssetStored %d times, want once", stored)
	}
	if data, _, err := e.a.Get(ctx, sum); err != nil || string(data) != "<svg/>" {
		t.Fatalf("get after the crash: %q %v", data, err)
	}
}

// TestRestartFromSnapshotAndTail: a clean stop saves the snapshot; events
// appended after it (the tail) are folded on top at the next start.
func TestRestartFromSnapshotAndTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newClock()
	e := openEnv(t, dir, c, nil)
	first, _ := e.a.Put(ctx, []byte("first"), "text/plain", lease.Origin{})
	if err := e.a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	seq, _, ok, err := e.log.LoadSnapshot(lease.SnapshotName)
	if err != nil || !ok || seq == 0 {
		t.Fatalf("no snapshot after a clean stop: %v %v", ok, err)
	}
	// A tail the snapshot does not hold (as a crash after an append leaves it).
	second := assetstore.Sum([]byte("second"))
	if _, _, err := e.files.Put([]byte("second")); err != nil {
		t.Fatal(err)
	}
	testkit.AppendAll(t, e.log, []events.Draft{
		{Stream: events.AssetStream(second), Payload: events.AssetStored{SHA256: second, MIME: "text/csv", Size: 6}},
		{Stream: events.AssetStream(second), Payload: events.LeaseGranted{SHA256: second, Holder: "server", ExpiresAt: c.Now().Add(time.Hour)}},
	})
	if err := e.log.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := openEnv(t, dir, c, nil)
	for sum, mime := range map[string]string{first: "text/plain", second: "text/csv"} {
		if a, _ := e2.asset(t, sum); !a.Stored() || a.MIME != mime {
			t.Fatalf("%s after restart: %+v", sum, a)
		}
	}
}
