package eventlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// The sequence mark is a small file beside Pebble's, outside its WAL, that
// says how far sequence numbers may have been handed out:
//
//	open <H>    a server runs (or crashed): no sequence above H was issued
//	clean <L>   the log was closed cleanly with L its last event
//
// The write path writes "open" ahead of itself in steps of seqReserveStep
// (one fsync per step, off the hot path), Close writes "clean". At Open,
// a log reading back less than a clean mark says means acknowledged events
// are gone: the log then continues after the mark, so that no sequence is
// ever issued twice, and records what it dropped (events.LogTailDropped).
// A log without a mark whose WAL ends damaged is reported too. After an
// unclean stop ("open") a partial last record is the append in flight,
// never acknowledged: no loss.
//
// NB: the file name and format are on disk; they must not change.
const (
	seqMarkFile    = "SEQMARK"
	seqReserveStep = 1 << 16
)

type seqMark struct {
	clean bool
	seq   uint64
}

func (m seqMark) String() string {
	if m.clean {
		return fmt.Sprintf("clean %d", m.seq)
	}
	return fmt.Sprintf("open %d", m.seq)
}

// readSeqMark returns the mark, ok false when there is none (a log older
// than the mark, or a new one).
func readSeqMark(dir string) (seqMark, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, seqMarkFile))
	if errors.Is(err, os.ErrNotExist) {
		return seqMark{}, false, nil
	}
	if err != nil {
		return seqMark{}, false, fmt.Errorf("read sequence mark: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || (f[0] != "open" && f[0] != "clean") {
		return seqMark{}, false, fmt.Errorf("read sequence mark %s: unexpected content %q (delete the file to start without it)", filepath.Join(dir, seqMarkFile), b)
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return seqMark{}, false, fmt.Errorf("read sequence mark %s: %w (delete the file to start without it)", filepath.Join(dir, seqMarkFile), err)
	}
	return seqMark{clean: f[0] == "clean", seq: seq}, true, nil
}

// writeSeqMark replaces the mark durably (atomicfile.Write): a crash
// leaves the old mark or the new one.
func writeSeqMark(dir string, m seqMark) error {
	if err := atomicfile.Write(filepath.Join(dir, seqMarkFile), []byte(m.String()+"\n")); err != nil {
		return fmt.Errorf("write sequence mark: %w", err)
	}
	return nil
}

// TailReport says what Open found at the end of the log.
type TailReport struct {
	// Dropped is true when events that may have been acknowledged could
	// not be read back.
	Dropped bool
	// LastGood is the last event read back; Issued the highest sequence
	// that may have been handed out. The log continues after Issued.
	LastGood, Issued uint64
	// Bytes unreadable at the end of File (a write-ahead log), when known.
	Bytes int64
	File  string
	// Reason says what was found.
	Reason string
	// Recorded is the sequence of the events.LogTailDropped this Open
	// appended (0 for a read-only Open, which only reports).
	Recorded uint64
	// Torn describes a partial last record after an unclean stop (no loss).
	Torn string
}

func (t TailReport) String() string {
	if !t.Dropped {
		return "the log's tail is intact"
	}
	s := fmt.Sprintf("the log's tail was dropped: events after %d up to %d may have been acknowledged and cannot be read back (%s)",
		t.LastGood, t.Issued, t.Reason)
	if t.Recorded != 0 {
		s += fmt.Sprintf("; recorded as event %d, and the log continues after %d so that no sequence is reused", t.Recorded, t.Issued)
	}
	return s
}

// judgeTail decides from the mark, the WAL scan and what Pebble read back
// whether acknowledged events may be gone.
func judgeTail(mark seqMark, hasMark bool, tail walTail, last uint64) TailReport {
	t := TailReport{LastGood: last, Issued: last, Bytes: tail.Bytes, File: tail.File}
	switch {
	case hasMark && mark.clean && last < mark.seq:
		t.Dropped, t.Issued = true, mark.seq
		t.Reason = fmt.Sprintf("the log was closed cleanly at event %d but reads back only to %d", mark.seq, last)
		if tail.Damaged {
			t.Reason += "; " + tail.Reason + " in " + tail.File
		}
	case tail.Damaged && hasMark && !mark.clean:
		// NB: after a crash the WAL normally ends in the append that was in
		// flight: written in part, never synced, so never acknowledged nor
		// seen by a reader. It is no loss, and its sequences may be handed
		// out again. (Damage after the fact to acknowledged records of a
		// crashed log cannot be told from it; see docs/security.md (disk full and a damaged event log).)
		t.Torn = "after an unclean stop, " + tail.Reason + " in " + tail.File + " (an append in flight, never acknowledged)"
	case tail.Damaged && !hasMark:
		t.Dropped = true
		t.Reason = tail.Reason + " in " + tail.File + " (no sequence mark: which sequences were handed out is unknown)"
	}
	return t
}
