package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
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
	rep := verifyReport{First: src.First(), Last: src.Last(), Types: map[string]uint64{}}
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
	for _, d := range rep.Dropped {
		fmt.Fprintf(sio.stdout, "note: events %d..%d were lost to a damaged log tail and recorded at %d (%s)\n", d.LastGood+1, d.Issued, d.Issued+1, d.Reason)
	}
	return nil
}
