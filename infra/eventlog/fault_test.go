package eventlog_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestSecondOpenInProcessIsInUse(t *testing.T) {
	dir := testkit.TempDataDir(t)
	testkit.OpenLog(t, dir)
	l, err := eventlog.Open(dir, eventlog.Options{})
	if err == nil {
		l.Close()
		t.Fatal("a second Open of the same dir succeeded")
	}
	var inUse *eventlog.InUseError
	if !errors.As(err, &inUse) || inUse.Pid != os.Getpid() {
		t.Fatalf("second Open: %v, want *InUseError with pid %d", err, os.Getpid())
	}
	if want := fmt.Sprintf("in use by pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not say %q", err, want)
	}
}

func TestOpenWhileChildOwnsDirIsInUse(t *testing.T) {
	dir := testkit.TempDataDir(t)
	c := startChild(t, "hold", dir)
	line := c.line(t, 30*time.Second)
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "ready "))
	if err != nil || pid != c.cmd.Process.Pid {
		t.Fatalf("child said %q; want ready %d", line, c.cmd.Process.Pid)
	}
	_, err = eventlog.Open(dir, eventlog.Options{})
	var inUse *eventlog.InUseError
	if !errors.As(err, &inUse) || inUse.Pid != pid || !strings.Contains(err.Error(), fmt.Sprintf("in use by pid %d", pid)) {
		t.Fatalf("Open while child %d owns the dir: %v", pid, err)
	}
	// Pebble locks its dir even read-only: a read-only open is for a
	// stopped server's log, and beside a running one it names the owner too.
	_, err = eventlog.Open(dir, eventlog.Options{ReadOnly: true})
	if !errors.As(err, &inUse) || inUse.Pid != pid {
		t.Fatalf("read-only Open while child %d owns the dir: %v", pid, err)
	}
	// Once the child lets go, the dir is ours, and read-only opens work.
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr:\n%s", err, c.stderr)
	}
	ro, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a stopped server's log: %v", err)
	}
	if _, err := ro.Append(context.Background(), events.Draft{Stream: "kernel/k", Payload: events.KernelLost{}}); !errors.Is(err, eventlog.ErrReadOnly) {
		t.Fatalf("append to a read-only log: %v, want ErrReadOnly", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.OpenLog(t, dir)
}

// walFault injects err into the given operations on WAL files while on.
func walFault(kinds ...errorfs.OpKind) (*errorfs.Toggle, vfs.FS) {
	injected := errors.New("injected WAL fault")
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && slices.Contains(kinds, op.Kind) {
			return injected
		}
		return nil
	})}
	return toggle, errorfs.Wrap(vfs.Default, toggle)
}

// TestWALFailure: Pebble reports a failed WAL write or fsync through
// Logger.Fatalf after it has already applied the batch to its memtable. The
// log must turn that into an error for the appender, report nothing as done,
// hide the batch from readers, refuse every later write with ErrFailed, and
// keep the process alive.
func TestWALFailure(t *testing.T) {
	for name, kinds := range map[string][]errorfs.OpKind{
		"fsync": {errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo},
		"write": {errorfs.OpFileWrite, errorfs.OpFileWriteAt},
	} {
		t.Run(name, func(t *testing.T) {
			dir := testkit.TempDataDir(t)
			toggle, fs := walFault(kinds...)
			l, err := eventlog.Open(dir, eventlog.Options{FS: fs, Node: "n"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			ctx := context.Background()
			drafts := testkit.RealisticDrafts(40)
			testkit.AppendAll(t, l, drafts[:10])

			toggle.On()
			evs, err := l.Append(ctx, drafts[10])
			if err == nil || len(evs) != 0 {
				t.Fatalf("append with a failing WAL %s: %v, %v; want an error and no events", name, evs, err)
			}
			if !errors.Is(err, eventlog.ErrFailed) {
				t.Fatalf("append error %v is not ErrFailed", err)
			}
			t.Logf("append error: %v", err)

			// Appends queued behind the failure fail too; none is reported done.
			var wg sync.WaitGroup
			errs := make([]error, 16)
			for i := range errs {
				wg.Go(func() {
					evs, err := l.Append(ctx, drafts[11+i])
					if err == nil || len(evs) != 0 {
						err = fmt.Errorf("append after failure reported %v as done", evs)
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				if !errors.Is(err, eventlog.ErrFailed) {
					t.Fatalf("append after failure: %v, want ErrFailed", err)
				}
			}
			if err := l.SaveSnapshot("q", 10, nil); !errors.Is(err, eventlog.ErrFailed) {
				t.Fatalf("snapshot after failure: %v, want ErrFailed", err)
			}
			if _, err := l.TruncateBefore(5, nil); !errors.Is(err, eventlog.ErrFailed) {
				t.Fatalf("truncate after failure: %v, want ErrFailed", err)
			}

			// Readers see exactly what was reported done, although Pebble
			// published the failed batch to its memtable.
			if l.Last() != 10 {
				t.Fatalf("Last %d after a failed append, want 10", l.Last())
			}
			if got := readAll(t, l); len(got) != 10 {
				t.Fatalf("Read after a failed append returned %d events, want 10", len(got))
			}
			if _, err := l.Get(11); !errors.Is(err, eventlog.ErrNotFound) {
				t.Fatalf("Get of the failed event: %v, want ErrNotFound", err)
			}
			var n int
			if err := l.ReadStream(ctx, drafts[10].Stream, 0, func(e events.Event) error {
				if e.Seq > 10 {
					return fmt.Errorf("ReadStream returned the failed event %d", e.Seq)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}

			closed := make(chan error, 1)
			go func() { closed <- l.Close() }()
			select {
			case err := <-closed:
				t.Logf("close after WAL failure: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("Close after a WAL failure hung")
			}

			// After a restart, everything reported done is there. The failed
			// append's outcome is unknown: a write that reached the page cache
			// before a failed fsync is found again by WAL replay.
			toggle.Off()
			l2 := testkit.OpenLog(t, dir)
			got := readAll(t, l2)
			if len(got) < 10 {
				t.Fatalf("after restart the log holds %d events, want at least the 10 acknowledged", len(got))
			}
			t.Logf("after restart: %d events (the failed append %s)", len(got),
				map[bool]string{true: "was found in the WAL", false: "is absent"}[len(got) > 10])
			if evs, err := l2.Append(ctx, drafts[30]); err != nil || evs[0].Seq != l2.Last() || evs[0].Seq != uint64(len(got)+1) {
				t.Fatalf("append after restart: %v, %v", evs, err)
			}
		})
	}
}

// TestKillDuringAppends SIGKILLs a child process in the middle of a stream of
// concurrent appends. Every sequence it acknowledged must be in the log
// after reopening, and the log must be 1..Last with no gap, no duplicate and
// every record decodable.
func TestKillDuringAppends(t *testing.T) {
	dir := testkit.TempDataDir(t)
	c := startChild(t, "append", dir)
	acked := map[uint64]bool{}
	var maxAcked uint64
	for len(acked) < 2000 {
		for _, f := range strings.Fields(c.line(t, 60*time.Second)) {
			seq, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", f)
			}
			if acked[seq] {
				t.Fatalf("sequence %d acknowledged twice", seq)
			}
			acked[seq] = true
			maxAcked = max(maxAcked, seq)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v; stderr:\n%s", c.cmd.ProcessState, c.stderr)
	}

	l := testkit.OpenLog(t, dir)
	if l.Last() < maxAcked {
		t.Fatalf("log ends at %d, but the child acknowledged %d", l.Last(), maxAcked)
	}
	got := readAll(t, l) // decodes every payload
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("position %d holds sequence %d: gap or duplicate", i+1, e.Seq)
		}
		if e.Node != "child" || e.Payload == nil {
			t.Fatalf("event %d: node %q payload %v", e.Seq, e.Node, e.Payload)
		}
	}
	if uint64(len(got)) != l.Last() {
		t.Fatalf("read %d events, Last is %d", len(got), l.Last())
	}
	t.Logf("child acknowledged %d events (up to %d); the log holds %d", len(acked), maxAcked, len(got))
	// The reopened log goes on from where the child stopped.
	evs, err := l.Append(context.Background(), testkit.RealisticDrafts(1)...)
	if err != nil || evs[0].Seq != uint64(len(got))+1 {
		t.Fatalf("append after recovery: %v, %v", evs, err)
	}
}

// rawSet writes key -> value straight into the log's Pebble store, the way a
// disk or a bug could: the log is closed first and reopened by the caller.
func rawSet(t testing.TB, dir string, kvs map[uint64][]byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("open raw pebble: %v", err)
	}
	for seq, v := range kvs {
		key := binary.BigEndian.AppendUint64([]byte{'e'}, seq) // NB: doc.go key layout
		if err := db.Set(key, v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func recordAt(t testing.TB, l *eventlog.Log, seq uint64) []byte {
	t.Helper()
	e, err := l.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestDamagedRecords stores records the binary cannot use and checks that
// every read path returns a *events.DecodeError naming the sequence and how
// to inspect it, never a panic and never a silent skip.
func TestDamagedRecords(t *testing.T) {
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, dir)
	drafts := testkit.RealisticDrafts(10)
	testkit.AppendAll(t, l, drafts)
	flipped := recordAt(t, l, 3)
	flipped[len(flipped)-2] ^= 0x20 // a bit flip in the payload
	e5, _ := l.Get(5)
	unknown := events.AppendRecord(nil, events.Event{Seq: 5, Time: e5.Time, Stream: e5.Stream, Kernel: e5.Kernel,
		Node: "n", Type: "EventFromTheFuture", Version: 1}, []byte(`{}`))
	e7, _ := l.Get(7)
	newer := events.AppendRecord(nil, events.Event{Seq: 7, Time: e7.Time, Stream: e7.Stream, Kernel: e7.Kernel,
		Node: "n", Type: e7.Type, Version: 99}, e7.Raw)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// NB: garbage must start with format byte 1 to be reported as corrupt: a
	// higher first byte reads as a record format from a newer binary.
	rawSet(t, dir, map[uint64][]byte{2: []byte("\x01garbage, not a record"), 3: flipped, 5: unknown, 7: newer, 9: {0, 1, 2}})
	l = testkit.OpenLog(t, dir)
	ctx := context.Background()

	for _, c := range []struct {
		seq  uint64
		kind error
		typ  string
	}{
		{2, events.ErrCorrupt, ""},
		{3, events.ErrCorrupt, ""},
		{5, events.ErrUnknownType, "EventFromTheFuture"},
		{7, events.ErrNewerVersion, e7.Type},
		{9, events.ErrCorrupt, ""},
	} {
		check := func(what string, err error) {
			t.Helper()
			var de *events.DecodeError
			if !errors.As(err, &de) || de.Seq != c.seq || !errors.Is(err, c.kind) || de.Type != c.typ {
				t.Fatalf("%s of damaged event %d: %v; want *DecodeError{Seq: %d, Type: %q} wrapping %v", what, c.seq, err, c.seq, c.typ, c.kind)
			}
			if want := fmt.Sprintf("events show %d", c.seq); !strings.Contains(err.Error(), want) {
				t.Fatalf("%s of damaged event %d: message %q does not say %q", what, c.seq, err, want)
			}
		}
		nop := func(events.Event) error { return nil }
		check("Read", l.Read(ctx, c.seq, c.seq, nop))
		_, err := l.Get(c.seq)
		check("Get", err)
		check("ReadStream", l.ReadStream(ctx, drafts[c.seq-1].Stream, c.seq-1, nop))
		check("ReadKernel", l.ReadKernel(ctx, drafts[c.seq-1].Kernel, c.seq-1, nop))
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		check("Follow", l.Follow(fctx, c.seq-1, nop))
		cancel()
		if c.kind != events.ErrCorrupt {
			// The envelope is fine: Scan passes it and DecodePayload refuses.
			var scanned events.Event
			if err := l.Scan(ctx, c.seq, c.seq, func(e events.Event) error { scanned = e; return nil }); err != nil {
				t.Fatalf("Scan of event %d with an intact envelope: %v", c.seq, err)
			}
			check("DecodePayload", scanned.DecodePayload())
		}
	}
	// A full read stops at the first damaged record rather than skipping it.
	var seen []uint64
	err := l.Read(ctx, 0, 0, func(e events.Event) error { seen = append(seen, e.Seq); return nil })
	var de *events.DecodeError
	if !errors.As(err, &de) || de.Seq != 2 || !slices.Equal(seen, []uint64{1}) {
		t.Fatalf("Read over damage: saw %v, err %v; want [1] then the error for 2", seen, err)
	}
	// Undamaged records around them still read.
	for _, s := range []uint64{1, 4, 6, 8, 10} {
		if _, err := l.Get(s); err != nil {
			t.Fatalf("intact event %d: %v", s, err)
		}
	}
}
