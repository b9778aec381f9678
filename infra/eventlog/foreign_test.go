package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// foreignBatch is what node "a" would have published at history position
// pos: pos%3+1 records of kernel stream k<pos>, each naming its position and
// index, with the origin's own sequence and time.
func foreignBatch(pos uint64) []events.Event {
	n := int(pos%3) + 1
	out := make([]events.Event, n)
	for i := range out {
		e := events.Event{Seq: 1000 + pos*10 + uint64(i), Time: time.Unix(1700000000, int64(pos)).UTC(),
			Stream: events.KernelStream(fmt.Sprintf("k%d", pos)), Kernel: fmt.Sprintf("k%d", pos), Node: "a", Principal: "alice",
			Payload: events.KernelLost{KernelID: fmt.Sprintf("k%d", pos), Reason: fmt.Sprintf("pos %d rec %d of %d", pos, i, n)}}
		e.Type = e.Payload.EventType()
		e.Version, _ = events.CurrentVersion(e.Type)
		raw, err := events.Encode(e)
		if err != nil {
			panic(err)
		}
		d, err := events.Decode(e.Seq, raw)
		if err != nil {
			panic(err)
		}
		d.Payload = nil // NB: an importer has the raw payload only
		out[i] = d
	}
	return out
}

// TestAppendForeignKeepsTheEnvelope: imported records get local sequences
// after the log's own, keep everything else of their envelope, are marked
// foreign with their position, and a follower sees them.
func TestAppendForeignKeepsTheEnvelope(t *testing.T) {
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{Node: "b"})
	ctx := context.Background()
	if _, err := l.Append(ctx, lostDraft("kernel/own", "own")); err != nil {
		t.Fatal(err)
	}
	woke := l.Changed()
	in := foreignBatch(2) // 3 records
	if err := l.AppendForeign(ctx, 7, in); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	default:
		t.Fatal("followers were not woken by the import")
	}
	if got := l.ForeignPosition(); got != 7 {
		t.Fatalf("ForeignPosition = %d, want 7", got)
	}
	all := readAll(t, l)
	if len(all) != 4 || l.Last() != 4 {
		t.Fatalf("log holds %d events (last %d), want 4", len(all), l.Last())
	}
	for i, e := range all[1:] {
		want := in[i]
		if e.Seq != uint64(i+2) || e.Node != "a" || !e.Time.Equal(want.Time) || e.Stream != want.Stream || e.Kernel != want.Kernel ||
			e.Principal != "alice" || e.Type != want.Type || e.Version != want.Version || string(e.Raw) != string(want.Raw) {
			t.Fatalf("imported record %d = %+v, want the envelope of %+v at seq %d", i, e, want, i+2)
		}
		if p, ok := e.Payload.(events.KernelLost); !ok || !strings.Contains(p.Reason, fmt.Sprintf("rec %d", i)) {
			t.Fatalf("imported record %d payload %#v", i, e.Payload)
		}
	}
	marks, err := l.ForeignMarks(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(marks) != "[{2 7} {3 7} {4 7}]" {
		t.Fatalf("foreign marks %v, want seqs 2..4 at position 7", marks)
	}
	// The same position again, or an older one: refused, nothing written.
	for _, pos := range []uint64{7, 3} {
		if err := l.AppendForeign(ctx, pos, foreignBatch(pos)); !errors.Is(err, eventlog.ErrForeignImported) {
			t.Fatalf("AppendForeign at %d after 7: %v, want ErrForeignImported", pos, err)
		}
	}
	// A skip-only import records the position and no record.
	if err := l.AppendForeign(ctx, 9, nil); err != nil {
		t.Fatal(err)
	}
	if l.Last() != 4 || l.ForeignPosition() != 9 {
		t.Fatalf("after a skip: last %d position %d, want 4 and 9", l.Last(), l.ForeignPosition())
	}
	// Own appends continue the numbering and carry no mark.
	evs, err := l.Append(ctx, lostDraft("kernel/own", "own 2"))
	if err != nil || evs[0].Seq != 5 || evs[0].Node != "b" {
		t.Fatalf("own append after an import: %v %v", evs, err)
	}
	if marks, _ := l.ForeignMarks(4, 10); len(marks) != 0 {
		t.Fatalf("marks after seq 4: %v, want none", marks)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := testkit.OpenLogWith(t, l.Dir(), eventlog.Options{Node: "b"})
	if l2.ForeignPosition() != 9 {
		t.Fatalf("reopened ForeignPosition = %d, want 9", l2.ForeignPosition())
	}
}

// TestAppendForeignRefusesWhatCannotReplay: a record of a type this binary
// does not know, or of a newer version, would stop the read models: refused
// with what to do, nothing written.
func TestAppendForeignRefusesWhatCannotReplay(t *testing.T) {
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{Node: "b"})
	e := foreignBatch(1)[0]
	unknown, newer := e, e
	unknown.Type = "KernelTeleported"
	newer.Version = 999
	for _, bad := range []events.Event{unknown, newer} {
		err := l.AppendForeign(context.Background(), 1, []events.Event{bad})
		if err == nil || !strings.Contains(err.Error(), "upgrade this node") || !strings.Contains(err.Error(), "node a") {
			t.Fatalf("AppendForeign(%s v%d): %v, want a refusal naming the node and the upgrade", bad.Type, bad.Version, err)
		}
	}
	if l.Last() != 0 || l.ForeignPosition() != 0 {
		t.Fatalf("refused imports wrote: last %d position %d", l.Last(), l.ForeignPosition())
	}
}

// TestAppendForeignSharesTheWritePath: imports beside 8 appending
// goroutines: sequences stay 1..N without a gap, each import contiguous and
// in order, and each appender's events in its order.
func TestAppendForeignSharesTheWritePath(t *testing.T) {
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{Node: "b"})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := l.Append(ctx, lostDraft(fmt.Sprintf("kernel/w%d", w), fmt.Sprint(i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	const imports = 300
	for pos := uint64(1); pos <= imports; pos++ {
		if err := l.AppendForeign(ctx, pos, foreignBatch(pos)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	all := readAll(t, l)
	next := map[string]int{}
	var lastPos uint64
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, e.Seq)
		}
		p := e.Payload.(events.KernelLost)
		if e.Node == "a" {
			var pos uint64
			var rec, n int
			if _, err := fmt.Sscanf(p.Reason, "pos %d rec %d of %d", &pos, &rec, &n); err != nil {
				t.Fatal(err)
			}
			switch {
			case rec == 0 && pos != lastPos+1:
				t.Fatalf("seq %d: import %d after %d", e.Seq, pos, lastPos)
			case rec > 0 && (all[i-1].Node != "a" || pos != lastPos):
				t.Fatalf("seq %d: import %d record %d not right after its previous record", e.Seq, pos, rec)
			}
			lastPos = pos
			continue
		}
		if want := fmt.Sprint(next[e.Stream]); p.Reason != want {
			t.Fatalf("seq %d on %s: %q, want %q", e.Seq, e.Stream, p.Reason, want)
		}
		next[e.Stream]++
	}
	if lastPos != imports || l.ForeignPosition() != imports {
		t.Fatalf("last import %d, position %d, want %d", lastPos, l.ForeignPosition(), imports)
	}
}

// runForeignChild imports positions 1, 2, 3, ... forever, each after the
// log's ForeignPosition, printing each acknowledged position.
func runForeignChild(l *eventlog.Log) int {
	for pos := l.ForeignPosition() + 1; ; pos++ {
		if err := l.AppendForeign(context.Background(), pos, foreignBatch(pos)); err != nil {
			fmt.Fprintln(os.Stderr, "child: import:", err)
			return 3
		}
		if _, err := fmt.Printf("%d\n", pos); err != nil {
			return 4
		}
	}
}

// TestAppendForeignIsExactlyOnceAcrossKill9: a child imports without pause
// and is killed -9 twice, each time resuming after its ForeignPosition.
// The log then holds every position up to ForeignPosition whole, once, in
// order, and nothing beyond it, and every position the child acknowledged.
func TestAppendForeignIsExactlyOnceAcrossKill9(t *testing.T) {
	dir := testkit.TempDataDir(t)
	var acked uint64
	for round := range 2 {
		c := startChild(t, "foreign", dir)
		for range 50 + round*30 {
			var pos uint64
			if _, err := fmt.Sscan(c.line(t, 30*time.Second), &pos); err != nil {
				t.Fatal(err)
			}
			acked = max(acked, pos)
		}
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
	l := testkit.OpenLogWith(t, dir, eventlog.Options{Node: "b"})
	top := l.ForeignPosition()
	if top < acked {
		t.Fatalf("ForeignPosition %d below the acknowledged %d", top, acked)
	}
	var pos uint64
	var rec, n int
	count := 0
	for _, e := range readAll(t, l) {
		var p, r, k int
		if _, err := fmt.Sscanf(e.Payload.(events.KernelLost).Reason, "pos %d rec %d of %d", &p, &r, &k); err != nil {
			t.Fatal(err)
		}
		switch {
		case r == 0 && (uint64(p) != pos+1 || rec+1 != n && pos != 0):
			t.Fatalf("seq %d: position %d starts after position %d record %d of %d", e.Seq, p, pos, rec, n)
		case r != 0 && (uint64(p) != pos || r != rec+1):
			t.Fatalf("seq %d: position %d record %d after position %d record %d", e.Seq, p, r, pos, rec)
		}
		pos, rec, n = uint64(p), r, k
		count++
	}
	if pos != top || rec+1 != n {
		t.Fatalf("the log ends at position %d record %d of %d; ForeignPosition %d", pos, rec, n, top)
	}
	t.Logf("%d records, positions 1..%d, acknowledged up to %d", count, top, acked)
}

// TestAppendForeignConcurrentSamePositionWritesOnce: two imports of one
// position, both past the quick check (the second queued while the first
// is being written): exactly one writes, the other is refused with
// ErrForeignImported, and the log holds the records once.
func TestAppendForeignConcurrentSamePositionWritesOnce(t *testing.T) {
	var armed, in, proceed = make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{Node: "b", BeforeCommit: func() {
		select {
		case <-armed:
		default:
			return
		}
		once.Do(func() { close(in); <-proceed }) // NB: the first batch only
	}})
	close(armed)
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { errs <- l.AppendForeign(ctx, 5, foreignBatch(5)) }()
	<-in
	go func() { errs <- l.AppendForeign(ctx, 5, foreignBatch(5)) }()
	testkit.WaitUntil(t, 10*time.Second, "the second import queued", func() (bool, string) {
		n := l.QueuedAppends()
		return n == 1, fmt.Sprint(n, " queued")
	})
	close(proceed)
	var ok, refused int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, eventlog.ErrForeignImported):
			refused++
		default:
			t.Fatalf("import: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two imports of position 5: %d written, %d refused; want 1 and 1", ok, refused)
	}
	marks, err := l.ForeignMarks(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(foreignBatch(5)); len(marks) != want {
		t.Fatalf("the log holds %d imported records, want %d (once)", len(marks), want)
	}
	if got := l.ForeignPosition(); got != 5 {
		t.Fatalf("ForeignPosition %d, want 5", got)
	}
}
