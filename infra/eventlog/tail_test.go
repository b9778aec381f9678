package eventlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// newestWAL returns the path of the highest-numbered write-ahead log.
func newestWAL(t testing.TB, dir string) string {
	t.Helper()
	wals, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(wals) == 0 {
		t.Fatalf("no write-ahead log in %s", dir)
	}
	slices.Sort(wals)
	return wals[len(wals)-1]
}

// damageTail flips (or cuts) the last n bytes of the newest WAL, as a disk
// or an unlucky copy would.
func damageTail(t testing.TB, dir string, n int, cut bool) {
	t.Helper()
	wal := newestWAL(t, dir)
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("%s holds %d bytes, fewer than the %d to damage", wal, len(b), n)
	}
	if cut {
		b = b[:len(b)-n]
	} else {
		for i := len(b) - n; i < len(b); i++ {
			b[i] ^= 0xff
		}
	}
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTornWALTail damages the last 2 KB of the write-ahead log of a cleanly
// closed log. Pebble drops the damaged records silently; before the
// sequence mark, the next start handed their sequences out again. Now a
// read-only open reports it, the first read-write open records it
// (LogTailDropped, naming the last good event) and continues after the last
// sequence ever issued.
func TestTornWALTail(t *testing.T) {
	for _, cut := range []bool{false, true} {
		name := map[bool]string{false: "flipped", true: "cut"}[cut]
		t.Run(name, func(t *testing.T) {
			dir := testkit.TempDataDir(t)
			l := testkit.OpenLog(t, dir)
			testkit.AppendAll(t, l, testkit.RealisticDrafts(60))
			issued := l.Last()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			damageTail(t, dir, 2048, cut)

			ro, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			tail := ro.Tail()
			if !tail.Dropped || tail.Issued != issued || tail.LastGood >= issued || tail.Recorded != 0 {
				t.Fatalf("read-only open of a damaged tail: %+v; want Dropped, Issued %d, LastGood below it", tail, issued)
			}
			if !strings.Contains(tail.String(), "tail was dropped") {
				t.Fatalf("report %q", tail)
			}
			_ = ro.Close()

			l2 := testkit.OpenLog(t, dir)
			tail = l2.Tail()
			if !tail.Dropped || tail.Recorded != issued+1 || l2.Last() != issued+1 {
				t.Fatalf("read-write open: %+v, Last %d; want the drop recorded at %d", tail, l2.Last(), issued+1)
			}
			e, err := l2.Get(issued + 1)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok := e.Payload.(events.LogTailDropped)
			if !ok || rec.LastGood != tail.LastGood || rec.Issued != issued || rec.Reason == "" {
				t.Fatalf("event %d: %#v; want LogTailDropped{LastGood: %d, Issued: %d}", issued+1, e.Payload, tail.LastGood, issued)
			}
			if !cut && rec.Bytes == 0 {
				t.Fatalf("LogTailDropped %+v does not say how many bytes were dropped", rec)
			}
			evs, err := l2.Append(context.Background(), testkit.RealisticDrafts(1)...)
			if err != nil || evs[0].Seq != issued+2 {
				t.Fatalf("append after the dropped tail: %v, %v; want sequence %d (never one already issued)", evs, err, issued+2)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			// Recorded once: the next start finds the tail intact.
			l3 := testkit.OpenLog(t, dir)
			if l3.Tail().Dropped || l3.Last() != issued+2 {
				t.Fatalf("second reopen: %+v, Last %d", l3.Tail(), l3.Last())
			}
			// The recorded gap survives an export and import.
			all := readAll(t, l3)
			imp := testkit.OpenLog(t, testkit.TempDataDir(t))
			i := 0
			if _, err := imp.Import(context.Background(), func() (events.Event, bool, error) {
				if i == len(all) {
					return events.Event{}, false, nil
				}
				i++
				return all[i-1], true, nil
			}); err != nil || imp.Last() != issued+2 {
				t.Fatalf("import of a log with a recorded gap: %v (Last %d)", err, imp.Last())
			}
		})
	}
}

// TestCrashTailIsNoLoss: a child appending is SIGKILLed mid-stream. The WAL
// may end in the append that was in flight (written in part, never synced,
// never acknowledged): that is no loss, so nothing is reported dropped, no
// sequence is skipped, and every acknowledged event reads back.
func TestCrashTailIsNoLoss(t *testing.T) {
	dir := testkit.TempDataDir(t)
	c := startChild(t, "append", dir)
	var maxAcked uint64
	for range 300 {
		for _, f := range strings.Fields(c.line(t, 60*time.Second)) {
			seq, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", f)
			}
			maxAcked = max(maxAcked, seq)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	ro, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if tail := ro.Tail(); tail.Dropped {
		t.Fatalf("a crash mid-append reported as a loss: %+v", tail)
	}
	_ = ro.Close()
	l := testkit.OpenLog(t, dir)
	if l.Tail().Dropped || l.Last() < maxAcked {
		t.Fatalf("after the crash: %+v, Last %d, acknowledged up to %d", l.Tail(), l.Last(), maxAcked)
	}
	evs, err := l.Append(context.Background(), testkit.RealisticDrafts(1)...)
	if err != nil || evs[0].Seq != l.Last() || evs[0].Seq != uint64(len(readAll(t, l))) {
		t.Fatalf("append after the crash: %v, %v; want the next sequence, no gap", evs, err)
	}
}

// TestDamagedTable flips one byte of a real table file: every path that
// reads it gets a *CorruptStoreError naming the file and what to do, and
// nothing panics (Pebble's default reaction was Logger.Fatalf, which our
// logger turned into a panic through the iterator).
func TestDamagedTable(t *testing.T) {
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, dir)
	testkit.AppendAll(t, l, testkit.RealisticDrafts(3000))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sst := flipTableByte(t, dir)
	for _, ro := range []bool{true, false} {
		l2, err := eventlog.Open(dir, eventlog.Options{ReadOnly: ro})
		if err == nil {
			err = l2.Read(context.Background(), 0, 0, func(events.Event) error { return nil })
			_ = l2.Close()
		}
		var ce *eventlog.CorruptStoreError
		if !errors.As(err, &ce) || ce.File != filepath.Base(sst) || !strings.Contains(err.Error(), "restore it from a backup") {
			t.Fatalf("read-only %v: read of a log with a damaged table: %v; want *CorruptStoreError naming %s", ro, err, filepath.Base(sst))
		}
	}
}

// flipTableByte flushes the log's memtable into a table (through Pebble
// directly: the log is closed) and flips one byte in the middle of it. It
// returns the table's path.
func flipTableByte(t testing.TB, dir string) string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table after a flush")
	}
	b, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x40
	if err := os.WriteFile(ssts[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	return ssts[0]
}
