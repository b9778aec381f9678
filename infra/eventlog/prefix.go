package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ReadStreams calls fn for every event with seq > after of every stream
// whose id starts with prefix (for example "asset/"), decoded, in sequence
// order: an actor that owns many streams (one per asset) rebuilds itself
// from exactly its own events, never scanning anyone else's. Only index keys
// are read for events at or before after, so a reader that resumes from a
// snapshot pays for its tail, not for its history.
func (l *Log) ReadStreams(ctx context.Context, prefix string, after uint64, fn Visit) error {
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	last := l.Last() // NB: as in scan, nothing past what Append reported
	lower := append([]byte{prefixStream}, prefix...)
	upper := append([]byte{prefixStream}, prefix...)
	upper = append(upper, 0xff)
	idx, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("read streams %s*: %w", prefix, err)
	}
	defer idx.Close()
	evs, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return fmt.Errorf("read streams %s*: %w", prefix, err)
	}
	defer evs.Close()
	// The index is read first (keys only), then the events in sequence
	// order: one forward pass over the event keys instead of a seek per
	// event, and the caller folds the events in the order they happened.
	var seqs []uint64
	n := 0
	for valid := idx.First(); valid; valid = idx.Next() {
		if n++; n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		key := idx.Key()
		if len(key) < 10 {
			continue
		}
		if seq := seqFromIndexKey(key); seq > after && seq <= last {
			seqs = append(seqs, seq)
		}
	}
	if err := idx.Error(); err != nil {
		return fmt.Errorf("read streams %s*: %w", prefix, err)
	}
	slices.Sort(seqs)
	var k [9]byte
	var in events.Interner
	valid, cur := false, uint64(0)
	for i, seq := range seqs {
		if i&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if valid && cur < seq && seq-cur <= nextRun {
			for valid && cur < seq {
				if valid = evs.Next(); valid {
					cur = seqFromEventKey(evs.Key())
				}
			}
		} else if valid = evs.SeekGE(eventKey(k[:0], seq)); valid {
			cur = seqFromEventKey(evs.Key())
		}
		if !valid || cur != seq {
			return &events.DecodeError{Seq: seq, Err: fmt.Errorf("%w: an index of %s* names a missing event", events.ErrCorrupt, prefix)}
		}
		if err := l.visit(seq, evs.Value(), true, &in, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return evs.Error()
}

// nextRun: a gap of at most so many events is crossed with Next, a longer
// one with a seek.
const nextRun = 64
