package eventlogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// OpenFunc opens the log in dir and registers its Close with t.Cleanup.
// Called again on the same dir after Close, it must reopen the same log.
type OpenFunc func(t testing.TB, dir string) *eventlog.Log

// deadline bounds every wait in the suite; it is generous because the
// machine may be busy, and the assertions about promptness use their own,
// tighter bounds.
const deadline = 10 * time.Second

// Run runs every case against the log open returns.
func Run(t *testing.T, open OpenFunc) {
	cases := []struct {
		name string
		fn   func(*testing.T, OpenFunc)
	}{
		{"AppendContiguous", testAppendContiguous},
		{"AppendRejectsBadDrafts", testAppendRejectsBadDrafts},
		{"ReadRange", testReadRange},
		{"ScanLeavesPayloadRaw", testScanLeavesPayloadRaw},
		{"ReadStreamAndKernel", testReadStreamAndKernel},
		{"PrincipalStored", testPrincipalStored},
		{"FollowExistingThenLive", testFollowExistingThenLive},
		{"FollowWakesOnAppend", testFollowWakesOnAppend},
		{"FollowEndsOnClose", testFollowEndsOnClose},
		{"ChangedFiresOnCommit", testChangedFiresOnCommit},
		{"GroupCommit", testGroupCommit},
		{"Reopen", testReopen},
		{"CloseIdempotent", testCloseIdempotent},
		{"AfterClose", testAfterClose},
		{"CloseDuringReadsAndAppends", testCloseDuringReadsAndAppends},
		{"Snapshots", testSnapshots},
		{"TruncateBefore", testTruncateBefore},
		{"TruncateEverythingThenReopen", testTruncateEverythingThenReopen},
		{"TruncateKeeping", testTruncateKeeping},
		{"GetMissing", testGetMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

func draft(kernel, msg string) events.Draft {
	return events.Draft{Stream: events.KernelStream(kernel), Kernel: kernel,
		Payload: events.KernelInterrupted{KernelID: kernel, Mode: msg}}
}

func appendOK(t testing.TB, l *eventlog.Log, drafts ...events.Draft) []events.Event {
	t.Helper()
	evs, err := l.Append(context.Background(), drafts...)
	if err != nil {
		t.Fatalf("append %d drafts: %v", len(drafts), err)
	}
	if len(evs) != len(drafts) {
		t.Fatalf("append %d drafts returned %d events", len(drafts), len(evs))
	}
	return evs
}

// collect reads with fn-style reader r and returns the events, payloads
// decoded where the reader decodes, Raw copied.
func collect(t testing.TB, r func(eventlog.Visit) error) []events.Event {
	t.Helper()
	var out []events.Event
	if err := r(func(e events.Event) error {
		e.Raw = bytes.Clone(e.Raw)
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func seqs(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func testAppendContiguous(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	if l.Last() != 0 || l.First() != 1 {
		t.Fatalf("empty log: First %d Last %d, want 1 and 0", l.First(), l.Last())
	}
	before := time.Now().Add(-time.Second)
	for round, n := range []int{1, 5, 1, 17} {
		want := l.Last() + 1
		drafts := make([]events.Draft, n)
		for i := range drafts {
			drafts[i] = draft("k1", fmt.Sprintf("r%d-%d", round, i))
		}
		evs := appendOK(t, l, drafts...)
		for i, e := range evs {
			if e.Seq != want+uint64(i) {
				t.Fatalf("round %d: event %d has seq %d, want %d", round, i, e.Seq, want+uint64(i))
			}
			if e.Type != events.TypeKernelInterrupted || e.Version == 0 || e.Node == "" ||
				e.Stream != drafts[i].Stream || e.Kernel != "k1" || e.Time.Before(before) {
				t.Fatalf("round %d: envelope not filled in: %+v", round, e)
			}
			if !reflect.DeepEqual(e.Payload, drafts[i].Payload) {
				t.Fatalf("round %d: payload %v, want %v", round, e.Payload, drafts[i].Payload)
			}
		}
		if l.Last() != evs[len(evs)-1].Seq {
			t.Fatalf("Last %d after appending up to %d", l.Last(), evs[len(evs)-1].Seq)
		}
	}
	if evs, err := l.Append(context.Background()); err != nil || len(evs) != 0 {
		t.Fatalf("empty append: %v, %v", evs, err)
	}
}

func testAppendRejectsBadDrafts(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	bad := map[string]events.Draft{
		"no stream":       {Kernel: "k", Payload: events.KernelLost{KernelID: "k"}},
		"no payload":      {Stream: "kernel/k"},
		"NUL in stream":   {Stream: "kernel/k\x00x", Payload: events.KernelLost{KernelID: "k"}},
		"NUL in kernel":   {Stream: "kernel/k", Kernel: "k\x00", Payload: events.KernelLost{KernelID: "k"}},
		"unknown payload": {Stream: "kernel/k", Payload: unknownPayload{}},
	}
	for name, d := range bad {
		// A good draft beside the bad one: nothing of the call is written.
		if _, err := l.Append(context.Background(), draft("k", "ok"), d); err == nil {
			t.Errorf("%s: append succeeded", name)
		}
	}
	if l.Last() != 0 {
		t.Fatalf("rejected appends wrote events: Last %d", l.Last())
	}
}

type unknownPayload struct{}

func (unknownPayload) EventType() string { return "NoSuchEventType" }

func testReadRange(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	testkit.AppendAll(t, l, testkit.RealisticDrafts(20))
	ctx := context.Background()
	for _, c := range []struct {
		from, to uint64
		want     []uint64
	}{
		{0, 0, seqRange(1, 20)},
		{1, 20, seqRange(1, 20)},
		{5, 10, seqRange(5, 10)},
		{15, 0, seqRange(15, 20)},
		{15, 100, seqRange(15, 20)},
		{20, 20, []uint64{20}},
		{21, 0, nil},
		{10, 5, nil},
	} {
		got := seqs(collect(t, func(fn eventlog.Visit) error { return l.Read(ctx, c.from, c.to, fn) }))
		if !slices.Equal(got, c.want) {
			t.Errorf("Read(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	var n int
	err := l.Read(ctx, 1, 0, func(e events.Event) error {
		if e.Payload == nil {
			t.Errorf("Read left event %d undecoded", e.Seq)
		}
		if n++; n == 3 {
			return eventlog.ErrStop
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("ErrStop after 3 events: err %v, visited %d", err, n)
	}
	boom := errors.New("boom")
	if err := l.Read(ctx, 1, 0, func(events.Event) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error not returned: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Read(cancelled, 1, 0, func(events.Event) error { return nil }); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("read with a cancelled context: %v", err)
	}
}

func testScanLeavesPayloadRaw(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	drafts := testkit.RealisticDrafts(30)
	testkit.AppendAll(t, l, drafts)
	got := collect(t, func(fn eventlog.Visit) error { return l.Scan(context.Background(), 0, 0, fn) })
	if len(got) != len(drafts) {
		t.Fatalf("Scan returned %d events, want %d", len(got), len(drafts))
	}
	for i, e := range got {
		if e.Payload != nil || len(e.Raw) == 0 {
			t.Fatalf("Scan event %d: payload %v, %d raw bytes; want undecoded", e.Seq, e.Payload, len(e.Raw))
		}
		if e.Type != drafts[i].Payload.EventType() || e.Stream != drafts[i].Stream {
			t.Fatalf("Scan event %d: envelope %s %s, want %s %s", e.Seq, e.Type, e.Stream, drafts[i].Payload.EventType(), drafts[i].Stream)
		}
		if err := e.DecodePayload(); err != nil {
			t.Fatalf("decode event %d: %v", e.Seq, err)
		}
		if !reflect.DeepEqual(e.Payload, drafts[i].Payload) {
			t.Fatalf("event %d decodes to %#v, want %#v", e.Seq, e.Payload, drafts[i].Payload)
		}
	}
}

func testReadStreamAndKernel(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	drafts := testkit.RealisticDrafts(600)
	testkit.AppendAll(t, l, drafts)
	byStream := map[string][]uint64{}
	byKernel := map[string][]uint64{}
	for i, d := range drafts {
		byStream[d.Stream] = append(byStream[d.Stream], uint64(i+1))
		byKernel[d.Kernel] = append(byKernel[d.Kernel], uint64(i+1))
	}
	if len(byKernel) < 2 || len(byStream) < 10 {
		t.Fatalf("generator produced %d kernels and %d streams; the test needs more", len(byKernel), len(byStream))
	}
	ctx := context.Background()
	check := func(what string, read func(string, uint64, eventlog.Visit) error, want map[string][]uint64) {
		t.Helper()
		for name, all := range want {
			for _, after := range []uint64{0, all[len(all)/2], all[len(all)-1]} {
				got := collect(t, func(fn eventlog.Visit) error { return read(name, after, fn) })
				var exp []uint64
				for _, s := range all {
					if s > after {
						exp = append(exp, s)
					}
				}
				if !slices.Equal(seqs(got), exp) {
					t.Fatalf("%s(%s, after %d) = %v, want %v", what, name, after, seqs(got), exp)
				}
				for _, e := range got {
					if e.Payload == nil || !reflect.DeepEqual(e.Payload, drafts[e.Seq-1].Payload) {
						t.Fatalf("%s(%s): event %d payload %#v, want %#v", what, name, e.Seq, e.Payload, drafts[e.Seq-1].Payload)
					}
				}
			}
		}
	}
	check("ReadStream", func(s string, after uint64, fn eventlog.Visit) error { return l.ReadStream(ctx, s, after, fn) }, byStream)
	check("ReadKernel", func(k string, after uint64, fn eventlog.Visit) error { return l.ReadKernel(ctx, k, after, fn) }, byKernel)
	// A name that is a prefix of another must not see the other's events.
	for name := range byStream {
		got := collect(t, func(fn eventlog.Visit) error { return l.ReadStream(ctx, name[:len(name)-1], 0, fn) })
		if len(got) != 0 {
			t.Fatalf("ReadStream of prefix %q returned %d events", name[:len(name)-1], len(got))
		}
		break
	}
	if got := collect(t, func(fn eventlog.Visit) error { return l.ReadKernel(ctx, "no-such-kernel", 0, fn) }); len(got) != 0 {
		t.Fatalf("ReadKernel of an unknown kernel returned %d events", len(got))
	}
}

// follower runs Follow in a goroutine and hands each event to a channel.
type follower struct {
	evs    chan events.Event
	done   chan error
	cancel context.CancelFunc
}

func follow(t testing.TB, l *eventlog.Log, after uint64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{evs: make(chan events.Event, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		f.done <- l.Follow(ctx, after, func(e events.Event) error {
			e.Raw = bytes.Clone(e.Raw)
			select {
			case f.evs <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(deadline):
			t.Errorf("Follow did not return %v after its context ended", deadline)
		}
	})
	return f
}

func (f *follower) next(t testing.TB, within time.Duration) events.Event {
	t.Helper()
	select {
	case e := <-f.evs:
		return e
	case err := <-f.done:
		t.Fatalf("Follow returned early: %v", err)
	case <-time.After(within):
		t.Fatalf("Follow delivered nothing within %v", within)
	}
	return events.Event{}
}

func (f *follower) end(t testing.TB) error {
	t.Helper()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		return err
	case <-time.After(deadline):
		t.Fatalf("Follow did not return within %v", deadline)
	}
	return nil
}

func testFollowExistingThenLive(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	drafts := testkit.RealisticDrafts(40)
	testkit.AppendAll(t, l, drafts[:25])
	f := follow(t, l, 5)
	for want := uint64(6); want <= 25; want++ {
		if e := f.next(t, deadline); e.Seq != want || e.Payload == nil {
			t.Fatalf("existing: got seq %d (payload %v), want %d decoded", e.Seq, e.Payload, want)
		}
	}
	for _, d := range drafts[25:] {
		appendOK(t, l, d)
	}
	for want := uint64(26); want <= 40; want++ {
		if e := f.next(t, deadline); e.Seq != want || !reflect.DeepEqual(e.Payload, drafts[want-1].Payload) {
			t.Fatalf("live: got seq %d, want %d with its payload", e.Seq, want)
		}
	}
	f.cancel()
	if err := f.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel returned %v, want context.Canceled", err)
	}
}

// testFollowWakesOnAppend checks that a Follow blocked on an empty log hears
// of an append promptly. A poll with a long interval fails this; a wake-up on
// commit passes it with room to spare even on a busy machine.
func testFollowWakesOnAppend(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	f := follow(t, l, 0)
	const prompt = 250 * time.Millisecond
	var worst time.Duration
	for i := range 10 {
		evs := appendOK(t, l, draft("k1", fmt.Sprint(i)))
		acked := time.Now()
		e := f.next(t, deadline)
		if e.Seq != evs[0].Seq {
			t.Fatalf("got seq %d, want %d", e.Seq, evs[0].Seq)
		}
		worst = max(worst, time.Since(acked))
	}
	if worst > prompt {
		t.Fatalf("Follow took up to %v to deliver an appended event; want under %v (is it polling?)", worst, prompt)
	}
	// And raw: FollowRaw leaves payloads undecoded.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err := l.FollowRaw(ctx, 0, func(e events.Event) error {
		if e.Payload != nil || len(e.Raw) == 0 {
			t.Errorf("FollowRaw event %d: payload %v, %d raw bytes", e.Seq, e.Payload, len(e.Raw))
		}
		return eventlog.ErrStop
	})
	if err != nil {
		t.Fatalf("FollowRaw with ErrStop: %v", err)
	}
}

func testFollowEndsOnClose(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	appendOK(t, l, draft("k1", "a"))
	f := follow(t, l, 0)
	f.next(t, deadline) // the follower now waits for a commit
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := f.end(t); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Follow after Close returned %v, want ErrClosed", err)
	}
	err := l.Follow(context.Background(), 0, func(events.Event) error { return nil })
	if !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Follow on a closed log returned %v, want ErrClosed", err)
	}
}

func testChangedFiresOnCommit(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("Changed fired before any commit")
	default:
	}
	appendOK(t, l, draft("k1", "a"))
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatal("Changed did not fire after a commit")
	}
	if l.Last() != 1 {
		t.Fatalf("Last %d after Changed fired, want 1", l.Last())
	}
}

func testGroupCommit(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	const writers, per = 64, 20
	before := l.Stats()
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				evs, err := l.Append(context.Background(), draft(fmt.Sprintf("k%d", w), fmt.Sprint(i)))
				if err != nil {
					errs <- err
					return
				}
				got[w] = append(got[w], evs[0].Seq)
			}
		})
	}
	testkit.WaitGroup(t, &wg, 2*time.Minute, "the concurrent appends")
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent append: %v", err)
	}
	var all []uint64
	for w, s := range got {
		if !slices.IsSorted(s) {
			t.Fatalf("writer %d saw its sequences out of order: %v", w, s)
		}
		all = append(all, s...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if !slices.Equal(all, seqRange(1, writers*per)) || l.Last() != writers*per {
		t.Fatalf("sequences are not exactly 1..%d (Last %d)", writers*per, l.Last())
	}
	st := l.Stats()
	commits, appends := st.Commits-before.Commits, st.Appends-before.Appends
	if appends != writers*per || st.Events-before.Events != writers*per {
		t.Fatalf("Stats counted %d appends and %d events, want %d each", appends, st.Events-before.Events, writers*per)
	}
	// With 64 writers waiting on each sync, a commit carries many appends.
	if commits*4 > appends {
		t.Fatalf("%d commits for %d appends: appends are not sharing syncs", commits, appends)
	}
	t.Logf("%d appends in %d commits (%.1f per sync)", appends, commits, float64(appends)/float64(commits))
	// Every event is readable, decoded, once.
	n := 0
	if err := l.Read(context.Background(), 0, 0, func(e events.Event) error {
		n++
		if e.Seq != uint64(n) {
			return fmt.Errorf("read seq %d at position %d", e.Seq, n)
		}
		return nil
	}); err != nil || n != writers*per {
		t.Fatalf("read back %d events: %v", n, err)
	}
}

func testReopen(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	testkit.AppendAll(t, l, testkit.RealisticDrafts(300))
	want := collect(t, func(fn eventlog.Visit) error { return l.Read(context.Background(), 0, 0, fn) })
	if err := l.SaveSnapshot("queue", 300, []byte("state")); err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l = open(t, dir)
	if l.Last() != 300 || l.First() != 1 {
		t.Fatalf("reopened: First %d Last %d, want 1 and 300", l.First(), l.Last())
	}
	got := collect(t, func(fn eventlog.Visit) error { return l.Read(context.Background(), 0, 0, fn) })
	if len(got) != len(want) {
		t.Fatalf("reopened log holds %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !want[i].Time.Equal(got[i].Time) || !bytes.Equal(want[i].Raw, got[i].Raw) ||
			want[i].Seq != got[i].Seq || want[i].Type != got[i].Type || want[i].Stream != got[i].Stream ||
			want[i].Kernel != got[i].Kernel || want[i].Node != got[i].Node || want[i].Principal != got[i].Principal {
			t.Fatalf("event %d changed across reopen:\n got %+v\nwant %+v", want[i].Seq, got[i], want[i])
		}
	}
	if seq, data, ok, err := l.LoadSnapshot("queue"); err != nil || !ok || seq != 300 || string(data) != "state" {
		t.Fatalf("snapshot after reopen: %d %q %v %v", seq, data, ok, err)
	}
	if evs := appendOK(t, l, draft("k1", "after")); evs[0].Seq != 301 {
		t.Fatalf("first append after reopen got seq %d, want 301", evs[0].Seq)
	}
}

func testCloseIdempotent(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	appendOK(t, l, draft("k1", "a"))
	for i := range 3 {
		if err := l.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
}

func testAfterClose(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	appendOK(t, l, draft("k1", "a"))
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := context.Background()
	nop := func(events.Event) error { return nil }
	for name, err := range map[string]error{
		"Append":     func() error { _, err := l.Append(ctx, draft("k1", "b")); return err }(),
		"Read":       l.Read(ctx, 0, 0, nop),
		"Scan":       l.Scan(ctx, 0, 0, nop),
		"ReadStream": l.ReadStream(ctx, events.KernelStream("k1"), 0, nop),
		"ReadKernel": l.ReadKernel(ctx, "k1", 0, nop),
		"Get":        func() error { _, err := l.Get(1); return err }(),
		"Snapshot":   l.SaveSnapshot("x", 1, nil),
		"Load":       func() error { _, _, _, err := l.LoadSnapshot("x"); return err }(),
		"Truncate":   func() error { _, err := l.TruncateBefore(1, nil); return err }(),
	} {
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testCloseDuringReadsAndAppends closes the log under load: every call
// returns (no hang, no panic), each either succeeding or with ErrClosed, and
// every append reported done is in the log after reopen.
func testCloseDuringReadsAndAppends(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	testkit.AppendAll(t, l, testkit.RealisticDrafts(2000))
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []uint64
	var unexpected []error
	record := func(err error) {
		if err != nil && !errors.Is(err, eventlog.ErrClosed) {
			mu.Lock()
			unexpected = append(unexpected, err)
			mu.Unlock()
		}
	}
	started := make(chan struct{}, 16)
	for w := range 8 {
		wg.Go(func() {
			started <- struct{}{}
			for i := 0; ; i++ {
				evs, err := l.Append(ctx, draft(fmt.Sprintf("k%d", w), fmt.Sprint(i)))
				if err != nil {
					record(err)
					return
				}
				mu.Lock()
				acked = append(acked, evs[0].Seq)
				mu.Unlock()
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			started <- struct{}{}
			for {
				err := l.Read(ctx, 0, 0, func(events.Event) error { return nil })
				if err != nil {
					record(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		started <- struct{}{}
		record(l.Follow(ctx, 0, func(events.Event) error { return nil }))
	})
	for i := range 13 {
		testkit.Receive(t, started, 30*time.Second, fmt.Sprintf("reader or writer %d of 13 started", i+1))
	}
	appendOK(t, l, draft("k-last", "x")) // the writers are past their first loop
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close under load: %v", err)
		}
	case <-time.After(deadline):
		t.Fatalf("Close under load did not return within %v", deadline)
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(deadline):
		t.Fatalf("appends or reads still blocked %v after Close", deadline)
	}
	for _, err := range unexpected {
		t.Errorf("call during Close: %v (want success or ErrClosed)", err)
	}
	l = open(t, dir)
	for _, s := range acked {
		if _, err := l.Get(s); err != nil {
			t.Fatalf("acknowledged event %d missing after reopen: %v", s, err)
		}
	}
}

func testSnapshots(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	if _, _, ok, err := l.LoadSnapshot("queue"); ok || err != nil {
		t.Fatalf("missing snapshot: ok %v err %v", ok, err)
	}
	if err := l.SaveSnapshot("queue", 7, []byte("v1")); err != nil {
		t.Fatalf("save: %v", err)
	}
	if err := l.SaveSnapshot("queue", 9, []byte("v2")); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if err := l.SaveSnapshot("queue2", 1, nil); err != nil {
		t.Fatalf("save empty: %v", err)
	}
	seq, data, ok, err := l.LoadSnapshot("queue")
	if err != nil || !ok || seq != 9 || string(data) != "v2" {
		t.Fatalf("load: %d %q %v %v, want 9 \"v2\"", seq, data, ok, err)
	}
	data[0] = 'X' // a copy: changing it changes nothing stored
	if _, again, _, _ := l.LoadSnapshot("queue"); string(again) != "v2" {
		t.Fatalf("LoadSnapshot returned an alias of stored bytes")
	}
	if seq, data, ok, err := l.LoadSnapshot("queue2"); err != nil || !ok || seq != 1 || len(data) != 0 {
		t.Fatalf("load empty: %d %q %v %v", seq, data, ok, err)
	}
	if _, _, ok, _ := l.LoadSnapshot("queu"); ok {
		t.Fatal("a prefix of a snapshot name loaded a snapshot")
	}
}

func testTruncateBefore(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	drafts := testkit.RealisticDrafts(200)
	testkit.AppendAll(t, l, drafts)
	ctx := context.Background()
	if _, err := l.TruncateBefore(202, nil); err == nil {
		t.Fatal("truncating past the end succeeded")
	}
	n, err := l.TruncateBefore(101, nil)
	if err != nil || n != 100 {
		t.Fatalf("TruncateBefore(101) = %d, %v; want 100 deleted", n, err)
	}
	if n, err := l.TruncateBefore(50, nil); err != nil || n != 0 {
		t.Fatalf("truncating an already truncated prefix = %d, %v; want 0, nil", n, err)
	}
	check := func(stage string) {
		t.Helper()
		if l.First() != 101 || l.Last() < 200 {
			t.Fatalf("%s: First %d Last %d, want 101 and >= 200", stage, l.First(), l.Last())
		}
		var te *eventlog.TruncatedError
		if err := l.Read(ctx, 1, 100, func(events.Event) error { return nil }); !errors.As(err, &te) || te.Seq != 1 || te.First != 101 {
			t.Fatalf("%s: Read(1, 100) of a truncated prefix: %v, want a TruncatedError{Seq 1, First 101}", stage, err)
		}
		if err := l.Follow(ctx, 50, func(events.Event) error { return nil }); !errors.Is(err, eventlog.ErrTruncated) {
			t.Fatalf("%s: Follow(after 50) of a truncated prefix: %v, want ErrTruncated", stage, err)
		}
		if err := l.CheckAfter(100); err != nil {
			t.Fatalf("%s: CheckAfter(100) = %v, want nil (event 101 is retained)", stage, err)
		}
		if got := seqs(collect(t, func(fn eventlog.Visit) error { return l.Read(ctx, 0, 200, fn) })); !slices.Equal(got, seqRange(101, 200)) {
			t.Fatalf("%s: Read(0, 200) = %v, want 101..200", stage, got)
		}
		if _, err := l.Get(50); !errors.Is(err, eventlog.ErrNotFound) {
			t.Fatalf("%s: Get of a truncated event: %v, want ErrNotFound", stage, err)
		}
		seen := map[string]bool{}
		for _, d := range drafts {
			for _, read := range []func(eventlog.Visit) error{
				func(fn eventlog.Visit) error { return l.ReadStream(ctx, d.Stream, 0, fn) },
				func(fn eventlog.Visit) error { return l.ReadKernel(ctx, d.Kernel, 0, fn) },
			} {
				if seen[d.Stream+"|"+d.Kernel] {
					continue
				}
				for _, e := range collect(t, read) {
					if e.Seq < 101 {
						t.Fatalf("%s: index read of %s/%s returned truncated event %d", stage, d.Stream, d.Kernel, e.Seq)
					}
				}
			}
			seen[d.Stream+"|"+d.Kernel] = true
		}
	}
	check("after truncate")
	if evs := appendOK(t, l, draft("k1", "later")); evs[0].Seq != 201 {
		t.Fatalf("append after truncate got seq %d, want 201", evs[0].Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	check("after reopen")
}

// testTruncateKeeping: the events keep keeps survive a truncation, stay
// readable by stream and from 0, and go at the first truncation that no
// longer keeps them.
func testTruncateKeeping(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	ctx := context.Background()
	var ds []events.Draft
	for i := range 100 {
		ds = append(ds, draft(fmt.Sprintf("k%d", i%4), fmt.Sprint(i)))
	}
	appendOK(t, l, ds...) // k0 has 1, 5, 9, ...
	pinned := true
	keep := func(e events.Event) bool { return pinned && e.Stream == events.KernelStream("k0") }
	n, err := l.TruncateBefore(61, keep)
	if err != nil || n != 45 {
		t.Fatalf("TruncateBefore(61, keep k0) = %d, %v; want 45 deleted (60 less k0's 15)", n, err)
	}
	if l.First() != 61 {
		t.Fatalf("First = %d, want 61", l.First())
	}
	k0 := func() []uint64 {
		return seqs(collect(t, func(fn eventlog.Visit) error { return l.ReadStream(ctx, events.KernelStream("k0"), 0, fn) }))
	}
	want := []uint64{1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77, 81, 85, 89, 93, 97}
	if got := k0(); !slices.Equal(got, want) {
		t.Fatalf("kept stream k0 = %v, want %v", got, want)
	}
	if got := seqs(collect(t, func(fn eventlog.Visit) error { return l.ReadStream(ctx, events.KernelStream("k1"), 0, fn) })); got[0] != 62 {
		t.Fatalf("stream k1 starts at %d, want 62 (its older events were not kept)", got[0])
	}
	if got := collect(t, func(fn eventlog.Visit) error { return l.Scan(ctx, 0, 0, fn) }); len(got) != 15+40 || got[0].Seq != 1 || got[15].Seq != 61 {
		t.Fatalf("Scan(0, 0) = %v, want k0's 15 kept events then 61..100", seqs(got))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	if got := k0(); !slices.Equal(got, want) {
		t.Fatalf("after reopen, kept stream k0 = %v, want %v", got, want)
	}
	pinned = false
	if n, err := l.TruncateBefore(61, keep); err != nil || n != 15 {
		t.Fatalf("TruncateBefore(61) once k0 is released = %d, %v; want its 15 old events deleted", n, err)
	}
	if got := k0(); got[0] != 61 {
		t.Fatalf("released stream k0 = %v, want it to start at 61", got)
	}
}

func testTruncateEverythingThenReopen(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	testkit.AppendAll(t, l, testkit.RealisticDrafts(10))
	if n, err := l.TruncateBefore(11, nil); err != nil || n != 10 {
		t.Fatalf("TruncateBefore(11) = %d, %v", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	if l.First() != 11 || l.Last() != 10 {
		t.Fatalf("reopened empty log: First %d Last %d, want 11 and 10", l.First(), l.Last())
	}
	// NB: numbering continues; a sequence is never handed out twice.
	if evs := appendOK(t, l, draft("k1", "x")); evs[0].Seq != 11 {
		t.Fatalf("append after truncating everything and reopening got seq %d, want 11", evs[0].Seq)
	}
}

func testGetMissing(t *testing.T, open OpenFunc) {
	l := open(t, testkit.TempDataDir(t))
	for _, s := range []uint64{0, 1, 999} {
		if _, err := l.Get(s); !errors.Is(err, eventlog.ErrNotFound) {
			t.Errorf("Get(%d) on an empty log: %v, want ErrNotFound", s, err)
		}
	}
	evs := appendOK(t, l, draft("k1", "a"))
	e, err := l.Get(evs[0].Seq)
	if err != nil || e.Seq != evs[0].Seq || !reflect.DeepEqual(e.Payload, evs[0].Payload) {
		t.Fatalf("Get(%d) = %+v, %v", evs[0].Seq, e, err)
	}
	if _, err := l.Get(evs[0].Seq + 1); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("Get past the end: %v, want ErrNotFound", err)
	}
}

// testPrincipalStored: the principal a draft carries comes back from every
// read, across a reopen, and an event without one reads back without one.
func testPrincipalStored(t *testing.T, open OpenFunc) {
	dir := testkit.TempDataDir(t)
	l := open(t, dir)
	withPrincipal := draft("k1", "signal")
	withPrincipal.Principal = "alice"
	appended := appendOK(t, l, withPrincipal, draft("k1", "signal"))
	if appended[0].Principal != "alice" || appended[1].Principal != "" {
		t.Fatalf("Append returned principals %q and %q, want alice and none", appended[0].Principal, appended[1].Principal)
	}
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		for name, read := range map[string]func(eventlog.Visit) error{
			"Read":       func(fn eventlog.Visit) error { return l.Read(ctx, 0, 0, fn) },
			"ReadStream": func(fn eventlog.Visit) error { return l.ReadStream(ctx, events.KernelStream("k1"), 0, fn) },
			"ReadKernel": func(fn eventlog.Visit) error { return l.ReadKernel(ctx, "k1", 0, fn) },
		} {
			got := collect(t, read)
			if len(got) != 2 || got[0].Principal != "alice" || got[1].Principal != "" {
				t.Fatalf("%s %s: principals %v, want [alice, none]", when, name, principals(got))
			}
		}
		e, err := l.Get(appended[0].Seq)
		if err != nil || e.Principal != "alice" {
			t.Fatalf("%s Get: principal %q, err %v", when, e.Principal, err)
		}
	}
	check("before reopen:")
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l = open(t, dir)
	check("after reopen:")
}

func principals(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Principal
	}
	return out
}
