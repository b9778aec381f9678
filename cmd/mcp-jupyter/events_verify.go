package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// VerifyError says where a log first goes wrong.
type VerifyError struct {
	Seq  uint64 // the event at fault (0: the log as a whole)
	What string
	Err  error
}

func (e *VerifyError) Error() string {
	where := "the log"
	if e.Seq != 0 {
		where = fmt.Sprintf("event %d", e.Seq)
	}
	if e.Err != nil {
		return fmt.Sprintf("first problem at %s: %s: %v", where, e.What, e.Err)
	}
	return fmt.Sprintf("first problem at %s: %s", where, e.What)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// verifyReport is what a clean verify found.
type verifyReport struct {
	First, Last, Events uint64
	Types               map[string]uint64
	// Dropped lists the tails a start found damaged and recorded
	// (events.LogTailDropped): gaps that are explained, not errors.
	Dropped []events.LogTailDropped
	// Foreign counts the records imported from other nodes of a cluster,
	// by node (a local log only: its marks say which records it imported).
	Foreign map[string]uint64
}

// foreignReader is a local log that knows which of its records it imported
// from other nodes of a cluster (eventlog.AppendForeign).
type foreignReader interface {
	ForeignMarks(after uint64, limit int) ([]eventlog.ForeignMark, error)
	ForeignPosition() uint64
}

// foreignCheck walks the log's marks of imported records beside its
// records. An imported record is checked for what an importer guarantees:
// a kind the cluster shares (kernel, execution, server), history positions
// that never go back, a writer that is another node (never one whose
// records this log also holds as its own), and no position beyond the one
// the log recorded last. The checks of every record (decoding, checksum,
// sequence, replay) apply to imported records as to own ones.
type foreignCheck struct {
	src   foreignReader
	marks []eventlog.ForeignMark
	after uint64 // marks fetched up to this sequence
	done  bool
	pos   uint64 // the last mark's position
	own   map[string]bool
}

const foreignChunk = 4096

// next returns the first mark not yet matched, if any.
func (f *foreignCheck) next() (eventlog.ForeignMark, bool, error) {
	for len(f.marks) == 0 {
		if f.done {
			return eventlog.ForeignMark{}, false, nil
		}
		ms, err := f.src.ForeignMarks(f.after, foreignChunk)
		if err != nil {
			return eventlog.ForeignMark{}, false, err
		}
		f.done = len(ms) < foreignChunk
		if len(ms) > 0 {
			f.after = ms[len(ms)-1].Seq
		}
		f.marks = ms
	}
	return f.marks[0], true, nil
}

// visit checks record e; it returns whether e was imported.
func (f *foreignCheck) visit(e *events.Event, rep *verifyReport) (bool, error) {
	m, ok, err := f.next()
	if err != nil {
		return false, &VerifyError{Seq: e.Seq, What: "foreign marks do not read", Err: err}
	}
	if ok && m.Seq < e.Seq {
		return false, &VerifyError{Seq: m.Seq, What: "an imported record's mark has no record"}
	}
	if !ok || m.Seq != e.Seq {
		if rep.Foreign[e.Node] > 0 {
			return false, &VerifyError{Seq: e.Seq, What: fmt.Sprintf("node %s's records were imported here and this record of node %s is written as this log's own: two nodes share the name %s, or this data dir ran under another node's name", e.Node, e.Node, e.Node)}
		}
		f.own[e.Node] = true
		return false, nil
	}
	f.marks = f.marks[1:]
	switch {
	case f.own[e.Node]:
		return true, &VerifyError{Seq: e.Seq, What: fmt.Sprintf("imported a record of node %s, whose records this log also holds as its own (a node never imports its own): two nodes share the name %s, or this data dir ran under another node's name", e.Node, e.Node)}
	case !slices.Contains(natsbus.ImportedKinds, events.StreamKind(e.Stream)):
		return true, &VerifyError{Seq: e.Seq, What: fmt.Sprintf("imported a record of stream %s: only %v are shared in a cluster", e.Stream, natsbus.ImportedKinds)}
	case m.Position < f.pos:
		return true, &VerifyError{Seq: e.Seq, What: fmt.Sprintf("imported from history position %d after position %d: out of order", m.Position, f.pos)}
	}
	f.pos = m.Position
	rep.Foreign[e.Node]++
	return true, nil
}

// tailReporter is a local log, which knows what it found at its end.
type tailReporter interface{ Tail() eventlog.TailReport }

// recordedGap reports whether e explains the gap before it: a
// LogTailDropped whose sequences skipped are exactly those missing.
func recordedGap(e *events.Event, next uint64) (events.LogTailDropped, bool) {
	if e.Type != events.TypeLogTailDropped || e.DecodePayload() != nil {
		return events.LogTailDropped{}, false
	}
	p, ok := e.Payload.(events.LogTailDropped)
	return p, ok && p.Explains(e.Seq, next-1)
}

// verifySource checks a whole log: every record decodes (envelope,
// checksum, payload through the registry), sequences run without a gap from
// First to Last, and every read model replays through the server's runner.
// It stops at the first problem.
func verifySource(ctx context.Context, src source, bar *progress) (verifyReport, error) {
	rep := verifyReport{First: src.First(), Last: src.Last(), Types: map[string]uint64{}, Foreign: map[string]uint64{}}
	var fc *foreignCheck
	if fr, ok := src.(foreignReader); ok {
		// NB: marks of records retention kept below First are not visited.
		fc = &foreignCheck{src: fr, after: max(src.First(), 1) - 1, own: map[string]bool{}}
	}
	if tr, ok := src.(tailReporter); ok {
		if t := tr.Tail(); t.Dropped {
			// NB: Pebble reads a damaged WAL tail as the log's end: without
			// this the loss would pass unseen.
			return rep, &VerifyError{Seq: t.LastGood + 1, What: t.String() +
				"; start the server once to record the loss (it continues after " + fmt.Sprint(t.Issued) + "), or restore the data dir from a backup"}
		}
	}
	if rep.Last == 0 {
		return rep, nil
	}
	if rep.Last < rep.First {
		return rep, &VerifyError{What: fmt.Sprintf("the log ends at %d, before its first retained event %d", rep.Last, rep.First)}
	}
	next := rep.First
	_, err := replayModels(ctx, src, rep.Last, func(e *events.Event) error {
		if e.Seq != next {
			if p, ok := recordedGap(e, next); ok && e.Seq > next {
				rep.Dropped = append(rep.Dropped, p)
				next = e.Seq
			}
		}
		if e.Seq != next {
			if e.Seq > next {
				return &VerifyError{Seq: next, What: fmt.Sprintf("missing: the log jumps from %d to %d", next-1, e.Seq)}
			}
			return &VerifyError{Seq: e.Seq, What: fmt.Sprintf("out of order: expected %d", next)}
		}
		if err := e.DecodePayload(); err != nil {
			return &VerifyError{Seq: e.Seq, What: "payload does not decode", Err: err}
		}
		if fc != nil {
			if _, err := fc.visit(e, &rep); err != nil {
				return err
			}
		}
		next++
		rep.Events++
		rep.Types[e.Type]++
		bar.add(1)
		return nil
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return rep, ve
		}
		var de *events.DecodeError
		if errors.As(err, &de) {
			return rep, &VerifyError{Seq: de.Seq, What: "record does not decode", Err: err}
		}
		return rep, &VerifyError{Seq: next, What: "read models do not replay", Err: err}
	}
	if next != rep.Last+1 {
		return rep, &VerifyError{Seq: next, What: fmt.Sprintf("missing: the records end at %d but the log's last sequence is %d", next-1, rep.Last)}
	}
	if fc != nil {
		if m, ok, err := fc.next(); err != nil || ok {
			return rep, &VerifyError{Seq: m.Seq, What: "an imported record's mark has no record", Err: err}
		}
		if p := fc.src.ForeignPosition(); fc.pos > p {
			return rep, &VerifyError{What: fmt.Sprintf("imported records up to history position %d, but the log recorded position %d", fc.pos, p)}
		}
	}
	return rep, nil
}

func runEventsVerify(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events verify", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("events verify: unexpected argument %q", pos[0])
	}
	src, err := openSource(ctx, ef)
	if err != nil {
		return err
	}
	defer src.Close()
	bar := newProgress(sio.stderr, "verify", src.Last()-src.First()+1)
	rep, err := verifySource(ctx, src, bar)
	bar.done()
	if err != nil {
		return fmt.Errorf("events verify: %w", err)
	}
	if rep.Events == 0 {
		fmt.Fprintln(sio.stdout, "the log is empty: nothing to verify")
		return nil
	}
	fmt.Fprintf(sio.stdout, "ok: %d events (%d..%d): every record decodes and passes its checksum, sequences are continuous, the read models (queue, kernels) replay\n",
		rep.Events, rep.First, rep.Last)
	if len(rep.Foreign) > 0 {
		var total uint64
		nodes := make([]string, 0, len(rep.Foreign))
		for n, c := range rep.Foreign {
			total += c
			nodes = append(nodes, fmt.Sprintf("%s: %d", n, c))
		}
		slices.Sort(nodes)
		fmt.Fprintf(sio.stdout, "note: %d of them were imported from other nodes of the cluster (%s): checked as every record, and for their kinds (%v), their history positions in order and their writers\n",
			total, strings.Join(nodes, ", "), natsbus.ImportedKinds)
	}
	for _, d := range rep.Dropped {
		fmt.Fprintf(sio.stdout, "note: events %d..%d were lost to a damaged log tail and recorded at %d (%s)\n", d.LastGood+1, d.Issued, d.Issued+1, d.Reason)
	}
	return nil
}
