package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/fault"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// hits counts the fault points the log passes (Options.Faults).
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) Hit(point string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[point]++
}

func (h *hits) count(point string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[point]
}

// lostDraft is a small event on stream whose reason names it.
func lostDraft(stream, reason string) events.Draft {
	return events.Draft{Stream: stream, Payload: events.KernelLost{KernelID: "k", Reason: reason}}
}

func seqsOf(evs []events.Event) []uint64 {
	s := make([]uint64, len(evs))
	for i, e := range evs {
		s[i] = e.Seq
	}
	return s
}

// TestSequenceOrderIsWALOrder: many goroutines append at once, half with
// Append and half with AppendAsync, 1 to 3 events each. The sequences must
// be exactly 1..N, each appender's in the order it appended, every event
// read back where its sequence says, and the write-ahead log must hold the
// event records in sequence order (what makes "a later append durable
// implies every earlier one is" true).
func TestSequenceOrderIsWALOrder(t *testing.T) {
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLogWith(t, dir, eventlog.Options{Node: "n"})
	ctx := context.Background()
	const appenders, per = 48, 40
	got := make([][]uint64, appenders)
	errs := make(chan error, appenders)
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			stream := events.KernelStream(fmt.Sprintf("w%02d", a))
			var pending []*events.Pending
			for i := range per {
				drafts := make([]events.Draft, 1+i%3)
				for j := range drafts {
					drafts[j] = lostDraft(stream, fmt.Sprintf("%d.%d", i, j))
				}
				if a%2 == 0 {
					evs, err := l.Append(ctx, drafts...)
					if err != nil {
						errs <- err
						return
					}
					got[a] = append(got[a], seqsOf(evs)...)
					continue
				}
				p, err := l.AppendAsync(ctx, drafts...)
				if err != nil {
					errs <- err
					return
				}
				got[a] = append(got[a], seqsOf(p.Events())...)
				pending = append(pending, p)
			}
			for _, p := range pending {
				if _, err := p.Wait(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	testkit.WaitGroup(t, &wg, 2*time.Minute, "the concurrent appends")
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	var all []uint64
	for a, s := range got {
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Fatalf("appender %d got sequence %d after %d: its order was not kept", a, s[i], s[i-1])
			}
		}
		all = append(all, s...)
	}
	slices.Sort(all)
	total := uint64(len(all))
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("sequences are not exactly 1..%d: position %d holds %d", total, i+1, s)
		}
	}
	if l.Last() != total {
		t.Fatalf("Last %d, want %d", l.Last(), total)
	}
	// Read back: each stream's events in the order its appender wrote them.
	next := map[string]int{}
	for i, e := range readAll(t, l) {
		if e.Seq != uint64(i+1) {
			t.Fatalf("read position %d holds sequence %d", i+1, e.Seq)
		}
		reason := e.Payload.(events.KernelLost).Reason
		var n, j int
		if _, err := fmt.Sscanf(reason, "%d.%d", &n, &j); err != nil {
			t.Fatal(err)
		}
		if k := n*10 + j; k < next[e.Stream] {
			t.Fatalf("stream %s: event %s (sequence %d) after a later one", e.Stream, reason, e.Seq)
		} else {
			next[e.Stream] = k
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wal, err := eventlog.WALEventSeqs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(wal, all) {
		n := min(len(wal), 20)
		t.Fatalf("the WAL holds %d event records in the order %v...; want 1..%d in order", len(wal), wal[:n], total)
	}
}

// TestFailedSyncFailsEveryLaterAppend: once a WAL fsync fails, the append
// it carried and every append after it, synchronous or not, fail with
// ErrFailed, none is reported done, readers and followers see none of
// them, and the log stays failed after the disk recovers.
func TestFailedSyncFailsEveryLaterAppend(t *testing.T) {
	dir := testkit.TempDataDir(t)
	toggle, fs := walFault(errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo)
	l, err := eventlog.Open(dir, eventlog.Options{FS: fs, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	drafts := testkit.RealisticDrafts(80)
	testkit.AppendAll(t, l, drafts[:10])
	followed := make(chan uint64, 100)
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go func() {
		_ = l.Follow(fctx, 0, func(e events.Event) error { followed <- e.Seq; return nil })
	}()
	testkit.WaitUntil(t, 10*time.Second, "the follower reads the 10 durable events", func() (bool, string) {
		return len(followed) == 10, fmt.Sprint(len(followed))
	})

	toggle.On()
	var wg sync.WaitGroup
	outcomes := make(chan error, 64)
	for i := range 24 {
		wg.Go(func() {
			d := drafts[10+i]
			if i%3 == 0 {
				evs, err := l.Append(ctx, d)
				if err == nil {
					err = fmt.Errorf("Append of %v was reported done", seqsOf(evs))
				}
				outcomes <- err
				return
			}
			p, err := l.AppendAsync(ctx, d)
			if err == nil {
				var evs []events.Event
				evs, err = p.Wait(ctx)
				if err == nil {
					err = fmt.Errorf("AppendAsync of %v was reported durable", seqsOf(evs))
				}
			}
			outcomes <- err
		})
	}
	testkit.WaitGroup(t, &wg, time.Minute, "the appends around the failing sync")
	close(outcomes)
	for err := range outcomes {
		if !errors.Is(err, eventlog.ErrFailed) {
			t.Fatalf("append around a failed sync: %v, want ErrFailed", err)
		}
	}
	// The disk works again; the log does not pretend it does.
	toggle.Off()
	if _, err := l.Append(ctx, drafts[40]); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("Append after the failure: %v, want ErrFailed", err)
	}
	if _, err := l.AppendAsync(ctx, drafts[41]); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("AppendAsync after the failure: %v, want ErrFailed", err)
	}
	if l.Last() != 10 {
		t.Fatalf("Last %d after the failed sync, want 10", l.Last())
	}
	if got := readAll(t, l); len(got) != 10 {
		t.Fatalf("Read returned %d events, want the 10 durable ones", len(got))
	}
	if _, err := l.Get(11); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("Get(11): %v, want ErrNotFound", err)
	}
	stopFollow()
	for len(followed) > 0 {
		if s := <-followed; s > 10 {
			t.Fatalf("a follower saw event %d, which never became durable", s)
		}
	}
}

// TestAppendAsyncSettlesOnlyWhenDurable holds the WAL's fsync: AppendAsync
// returns with its sequences (the write path), but its Pending stays
// unsettled, Last does not move and no reader or follower sees the events
// until the fsync is let through. The fault points follow the same line.
func TestAppendAsyncSettlesOnlyWhenDurable(t *testing.T) {
	g := &testkit.SyncGate{}
	h := &hits{}
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{FS: g.FS(), Node: "n", Faults: h})
	t.Cleanup(g.Release) // NB: runs before the log's Close
	ctx := context.Background()
	testkit.AppendAll(t, l, []events.Draft{lostDraft("kernel/a", "1"), lostDraft("kernel/a", "2"), lostDraft("kernel/a", "3")})
	followed := make(chan uint64, 100)
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go func() {
		_ = l.Follow(fctx, 0, func(e events.Event) error { followed <- e.Seq; return nil })
	}()
	testkit.WaitUntil(t, 10*time.Second, "the follower reads the 3 durable events", func() (bool, string) {
		return len(followed) == 3, fmt.Sprint(len(followed))
	})
	for range 3 {
		<-followed
	}
	written, durable := h.count("eventlog.written"), h.count("eventlog.durable")

	g.Hold()
	p, err := l.AppendAsync(ctx, lostDraft("kernel/a", "4"), lostDraft("kernel/b", "5"))
	if err != nil {
		t.Fatal(err)
	}
	if s := seqsOf(p.Events()); !slices.Equal(s, []uint64{4, 5}) {
		t.Fatalf("AppendAsync sequences %v, want [4 5]", s)
	}
	p2, err := l.AppendAsync(ctx, lostDraft("kernel/a", "6"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 10*time.Second, "the WAL fsync to be held", func() (bool, string) {
		return g.Waiting() > 0, "no fsync held"
	})
	for _, q := range []*events.Pending{p, p2} {
		select {
		case <-q.Durable():
			t.Fatalf("the append of %v settled (err %v) while its fsync is held", seqsOf(q.Events()), q.Err())
		default:
		}
	}
	if l.Last() != 3 {
		t.Fatalf("Last %d while the fsync is held, want 3", l.Last())
	}
	if n := len(readAll(t, l)); n != 3 {
		t.Fatalf("Read returned %d events while the fsync is held, want 3", n)
	}
	if _, err := l.Get(4); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("Get(4) while its fsync is held: %v, want ErrNotFound", err)
	}
	var inStream int
	if err := l.ReadStream(ctx, "kernel/a", 0, func(events.Event) error { inStream++; return nil }); err != nil || inStream != 3 {
		t.Fatalf("ReadStream while the fsync is held: %d events, %v; want 3", inStream, err)
	}
	if len(followed) != 0 {
		t.Fatalf("a follower saw event %d while its fsync is held", <-followed)
	}
	if w, d := h.count("eventlog.written")-written, h.count("eventlog.durable")-durable; w != 2 || d != 0 {
		t.Fatalf("fault points while the fsync is held: written %d, durable %d; want 2 and 0", w, d)
	}

	g.Release()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, q := range []*events.Pending{p, p2} {
		if _, err := q.Wait(wctx); err != nil {
			t.Fatalf("the append of %v after the fsync: %v", seqsOf(q.Events()), err)
		}
	}
	if l.Last() != 6 {
		t.Fatalf("Last %d after the fsync, want 6", l.Last())
	}
	for want := uint64(4); want <= 6; want++ {
		select {
		case s := <-followed:
			if s != want {
				t.Fatalf("follower got %d, want %d", s, want)
			}
		case <-wctx.Done():
			t.Fatalf("the follower did not get event %d", want)
		}
	}
	if d := h.count("eventlog.durable") - durable; d != 2 {
		t.Fatalf("eventlog.durable hit %d times for 2 appends", d)
	}
}

// TestUnsyncedBoundBlocksAppenders: with the fsync held, appends fill the
// bound on what is written but not durable; the next one, Append or
// AppendAsync, waits (here until its deadline, taking no sequence) and
// proceeds once syncs make room. One append larger than the whole bound is
// let through when nothing else is in flight.
func TestUnsyncedBoundBlocksAppenders(t *testing.T) {
	ctx := context.Background()
	blocked := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for room") {
			t.Fatalf("append past the bound: %v; want it to wait for room until its deadline", err)
		}
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }

	t.Run("events", func(t *testing.T) {
		g := &testkit.SyncGate{}
		l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{FS: g.FS(), Node: "n", MaxUnsyncedEvents: 4})
		t.Cleanup(g.Release)
		// Larger than the bound, alone: let through.
		big := make([]events.Draft, 6)
		for i := range big {
			big[i] = lostDraft("kernel/a", fmt.Sprint(i))
		}
		if _, err := l.Append(ctx, big...); err != nil {
			t.Fatalf("an append of 6 events with a bound of 4 and nothing in flight: %v", err)
		}
		g.Hold()
		var pending []*events.Pending
		for i := range 4 {
			p, err := l.AppendAsync(ctx, lostDraft("kernel/a", fmt.Sprint(10+i)))
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, p)
		}
		c1, cancel1 := short()
		defer cancel1()
		_, err := l.AppendAsync(c1, lostDraft("kernel/a", "x"))
		blocked(t, err)
		c2, cancel2 := short()
		defer cancel2()
		_, err = l.Append(c2, lostDraft("kernel/a", "y"))
		blocked(t, err)
		// Waiting appenders proceed once the syncs catch up.
		type result struct {
			evs []events.Event
			err error
		}
		waiting := make(chan result, 2)
		go func() {
			p, err := l.AppendAsync(ctx, lostDraft("kernel/a", "z"))
			if err != nil {
				waiting <- result{err: err}
				return
			}
			evs, err := p.Wait(ctx)
			waiting <- result{evs, err}
		}()
		go func() {
			evs, err := l.Append(ctx, lostDraft("kernel/a", "w"))
			waiting <- result{evs, err}
		}()
		if l.Last() != 6 {
			t.Fatalf("Last %d with the fsync held, want 6", l.Last())
		}
		g.Release()
		for _, p := range pending {
			if _, err := p.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var seqs []uint64
		for range 2 {
			r := <-waiting
			if r.err != nil {
				t.Fatalf("a waiting append after the sync: %v", r.err)
			}
			seqs = append(seqs, seqsOf(r.evs)...)
		}
		slices.Sort(seqs)
		// The appends that gave up took no sequence: 6 + 4, then these two.
		if !slices.Equal(seqs, []uint64{11, 12}) || l.Last() != 12 {
			t.Fatalf("the waiting appends got %v (Last %d), want [11 12]", seqs, l.Last())
		}
	})

	t.Run("bytes", func(t *testing.T) {
		g := &testkit.SyncGate{}
		l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{FS: g.FS(), Node: "n", MaxUnsyncedBytes: 8 << 10})
		t.Cleanup(g.Release)
		g.Hold()
		kb := strings.Repeat("x", 3<<10)
		p1, err := l.AppendAsync(ctx, lostDraft("kernel/a", kb))
		if err != nil {
			t.Fatal(err)
		}
		p2, err := l.AppendAsync(ctx, lostDraft("kernel/a", kb))
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := short()
		defer cancel()
		_, err = l.AppendAsync(c, lostDraft("kernel/a", kb))
		blocked(t, err)
		// A small one still fits.
		p3, err := l.AppendAsync(ctx, lostDraft("kernel/a", "small"))
		if err != nil {
			t.Fatal(err)
		}
		g.Release()
		for _, p := range []*events.Pending{p1, p2, p3} {
			if _, err := p.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.AppendAsync(ctx, lostDraft("kernel/a", kb)); err != nil {
			t.Fatalf("an append after the syncs made room: %v", err)
		}
	})
}

// TestCloseWithAppendsInFlight: Close while appends are written but their
// fsync is held. Close refuses new appends at once (also those waiting for
// room), waits for the ones in the write path, reports them done once
// durable, and after reopening the log holds exactly what was reported.
func TestCloseWithAppendsInFlight(t *testing.T) {
	dir := testkit.TempDataDir(t)
	g := &testkit.SyncGate{}
	h := &hits{}
	l, err := eventlog.Open(dir, eventlog.Options{FS: g.FS(), Node: "n", Faults: h, MaxUnsyncedEvents: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Release(); _ = l.Close() })
	ctx := context.Background()
	testkit.AppendAll(t, l, []events.Draft{lostDraft("kernel/a", "1"), lostDraft("kernel/a", "2")})
	written := h.count("eventlog.written")

	g.Hold()
	var pending []*events.Pending
	for i := range 3 {
		p, err := l.AppendAsync(ctx, lostDraft("kernel/a", fmt.Sprint("async", i)))
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	type result struct {
		evs []events.Event
		err error
	}
	syncs := make(chan result, 4)
	for i := range 4 {
		go func() {
			evs, err := l.Append(ctx, lostDraft("kernel/b", fmt.Sprint("sync", i)))
			syncs <- result{evs, err}
		}()
	}
	testkit.WaitUntil(t, 10*time.Second, "7 appends in the write path", func() (bool, string) {
		n := h.count("eventlog.written") - written
		return n == 7, fmt.Sprint(n)
	})
	// The bound (7) is full: this one waits for room.
	overBound := make(chan error, 1)
	go func() {
		_, err := l.AppendAsync(ctx, lostDraft("kernel/c", "over"))
		overBound <- err
	}()

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	testkit.WaitUntil(t, 10*time.Second, "Close to refuse new appends", func() (bool, string) {
		err := l.Healthy()
		return errors.Is(err, eventlog.ErrClosed), fmt.Sprint(err)
	})
	if _, err := l.AppendAsync(ctx, lostDraft("kernel/c", "late")); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("AppendAsync during Close: %v, want ErrClosed", err)
	}
	select {
	case err := <-overBound:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("the append waiting for room at Close: %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the append waiting for room was not answered at Close")
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while 7 appends wait for their fsync", err)
	default:
	}

	g.Release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return after the fsync")
	}
	var reported []uint64
	for _, p := range pending {
		evs, err := p.Wait(ctx)
		if err != nil {
			t.Fatalf("an async append in flight at Close: %v, want durable", err)
		}
		reported = append(reported, seqsOf(evs)...)
	}
	for range 4 {
		r := <-syncs
		if r.err != nil {
			t.Fatalf("an Append in flight at Close: %v, want done", r.err)
		}
		reported = append(reported, seqsOf(r.evs)...)
	}
	slices.Sort(reported)
	if !slices.Equal(reported, []uint64{3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("appends in flight at Close got %v", reported)
	}
	if _, err := l.Append(ctx, lostDraft("kernel/a", "after")); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}

	l2 := testkit.OpenLog(t, dir)
	got := readAll(t, l2)
	if len(got) != 9 || l2.Last() != 9 {
		t.Fatalf("after reopening: %d events, Last %d; want the 9 reported", len(got), l2.Last())
	}
}

// TestKillAtFaultPoints: a child appends from 8 goroutines (half Append,
// half AppendAsync then Wait) with MCPJ_FAULT_KILL at eventlog.written
// (in the write path, before the fsync) or eventlog.durable (synced,
// before the caller hears), and dies there by SIGKILL. After reopening,
// every sequence it acknowledged is in the log, the log is 1..Last with no
// gap, and appends go on after it.
func TestKillAtFaultPoints(t *testing.T) {
	for _, point := range []string{"eventlog.written:300", "eventlog.durable:300", "eventlog.written:1"} {
		t.Run(point, func(t *testing.T) {
			dir := testkit.TempDataDir(t)
			c := startChild(t, "appendmix", dir, fault.EnvVar+"="+point)
			var maxAcked uint64
			acked := map[uint64]bool{}
			for c.stdout.Scan() {
				for _, f := range strings.Fields(c.stdout.Text()) {
					seq, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						t.Fatalf("child printed %q", f)
					}
					acked[seq] = true
					maxAcked = max(maxAcked, seq)
				}
			}
			_ = c.cmd.Wait()
			if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL at %s: %v; stderr:\n%s", point, c.cmd.ProcessState, c.stderr)
			}
			l := testkit.OpenLog(t, dir)
			got := readAll(t, l)
			for i, e := range got {
				if e.Seq != uint64(i+1) {
					t.Fatalf("position %d holds sequence %d: gap or duplicate", i+1, e.Seq)
				}
			}
			for seq := range acked {
				if seq > l.Last() {
					t.Fatalf("sequence %d was acknowledged but the log ends at %d", seq, l.Last())
				}
			}
			t.Logf("killed at %s: %d sequences acknowledged (up to %d), the log holds %d", point, len(acked), maxAcked, len(got))
			if evs, err := l.Append(context.Background(), testkit.RealisticDrafts(1)...); err != nil || evs[0].Seq != l.Last() || evs[0].Seq != uint64(len(got))+1 {
				t.Fatalf("append after the kill: %v, %v", evs, err)
			}
		})
	}
}
