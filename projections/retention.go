package projections

import "fmt"

// Retention bounds the log's disk use by deleting the prefix of the log
// that every projection's snapshot covers. The zero value keeps everything.
//
// After each periodic snapshot (Options.SnapshotEvery) the runner truncates
// the log before
//
//	min(oldest snapshot seq + 1, Last - KeepEvents + 1, Floor())
//
// so the newest KeepEvents events always stay (for inspection and for
// readers that lag a little) and nothing a snapshot does not cover is ever
// deleted.
//
// NB: the runner knows only its own projections. Every other reader of the
// log that cannot be rebuilt from these snapshots (actors recovering their
// streams, the NATS publisher's cursor) must be represented by Floor.
type Retention struct {
	// KeepEvents is how many of the newest events are never deleted. 0
	// disables retention.
	KeepEvents uint64
	// Floor, if set, returns the lowest sequence another reader still
	// needs: events at or above it are kept.
	Floor func() uint64
}

func (r *Runner) retain() error {
	keep := r.opts.Retention.KeepEvents
	if keep == 0 || len(r.states) == 0 {
		return nil
	}
	last := r.log.Last()
	if last <= keep {
		return nil
	}
	before := last - keep + 1
	for _, st := range r.states {
		before = min(before, st.saved+1)
	}
	if f := r.opts.Retention.Floor; f != nil {
		before = min(before, f())
	}
	if before <= r.log.First() {
		return nil
	}
	n, err := r.log.TruncateBefore(before)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	r.opts.Logger.Debug("log truncated", "before", before, "deleted", n)
	return nil
}
