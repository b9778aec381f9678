package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ErrStop, returned by a read callback, ends the read without error.
var ErrStop = errors.New("eventlog: stop")

// Visit receives one event. Its Raw payload aliases the log's buffers: copy
// it to keep it past the call. Returning ErrStop ends the read cleanly.
type Visit = func(events.Event) error

// Read calls fn for every event with from <= seq <= to (to 0 means up to the
// end), in order, with payloads decoded. A from below First returns a
// *TruncatedError (ErrTruncated) before any event; from 0 means every
// retained event, the kept streams' events below First included (see
// TruncateBefore).
func (l *Log) Read(ctx context.Context, from, to uint64, fn Visit) error {
	if err := l.Truncated(from); err != nil {
		return fmt.Errorf("read events from %d: %w", from, err)
	}
	return l.scan(ctx, from, to, true, fn)
}

// Scan is Read without decoding payloads: each event carries its envelope
// and Raw payload; call DecodePayload on the ones you need. It is the fast
// path for replays.
func (l *Log) Scan(ctx context.Context, from, to uint64, fn Visit) error {
	if err := l.Truncated(from); err != nil {
		return fmt.Errorf("scan events from %d: %w", from, err)
	}
	return l.scan(ctx, from, to, false, fn)
}

func (l *Log) scan(ctx context.Context, from, to uint64, decode bool, fn Visit) error {
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	// NB: readers see only what Append reported durable. After a failed sync
	// Pebble has already published the batch to its memtable; bounding by
	// Last keeps it out of sight.
	if last := l.Last(); to == 0 || to > last {
		to = last
	}
	if from == 0 {
		from = 1
	}
	if from > to {
		return nil
	}
	var lo, hi [9]byte
	upper := eventKey(hi[:0], to+1) // to <= Last < MaxUint64
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(lo[:0], from), UpperBound: upper})
	if err != nil {
		return fmt.Errorf("read events from %d: %w", from, err)
	}
	defer it.Close()
	n := 0
	var in events.Interner
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := l.visit(seqFromEventKey(it.Key()), it.Value(), decode, &in, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := it.Error(); err != nil {
		return l.readErr(fmt.Errorf("read events from %d: %w", from, err))
	}
	return nil
}

func (l *Log) visit(seq uint64, rec []byte, decode bool, in *events.Interner, fn Visit) error {
	e, err := events.DecodeEnvelopeInterned(seq, rec, in)
	if err != nil {
		return err
	}
	if decode {
		if err := e.DecodePayload(); err != nil {
			return err
		}
	}
	return fn(e)
}

// Get returns the event with the given sequence, decoded.
func (l *Log) Get(seq uint64) (events.Event, error) {
	if err := l.acquire(); err != nil {
		return events.Event{}, err
	}
	defer l.release()
	var k [9]byte
	v, closer, err := l.db.Get(eventKey(k[:0], seq))
	if errors.Is(err, pebble.ErrNotFound) || err == nil && seq > l.Last() {
		if err == nil {
			closer.Close()
		}
		return events.Event{}, fmt.Errorf("event %d: %w (the log holds %d..%d)", seq, ErrNotFound, l.First(), l.Last())
	}
	if err != nil {
		return events.Event{}, l.readErr(fmt.Errorf("get event %d: %w", seq, err))
	}
	defer closer.Close()
	e, err := events.Decode(seq, v)
	if err != nil {
		return events.Event{}, err
	}
	e.Raw = append([]byte(nil), e.Raw...)
	return e, nil
}

// ErrNotFound: no event with that sequence is retained.
var ErrNotFound = errors.New("eventlog: not found")

// ReadStream calls fn for every event of one stream with seq > after, in
// order, decoded.
func (l *Log) ReadStream(ctx context.Context, stream string, after uint64, fn Visit) error {
	return l.readIndex(ctx, prefixStream, stream, after, true, fn)
}

// ReadKernel calls fn for every event about one kernel (its own stream, its
// executions, their output) with seq > after, in order, decoded.
func (l *Log) ReadKernel(ctx context.Context, kernel string, after uint64, fn Visit) error {
	return l.readIndex(ctx, prefixKernel, kernel, after, true, fn)
}

// ScanKernel is ReadKernel without decoding payloads (as Scan is to Read):
// call DecodePayload on the events you need. A scheduler's recovery uses
// it to fold a few lifecycle events among many outputs.
func (l *Log) ScanKernel(ctx context.Context, kernel string, after uint64, fn Visit) error {
	return l.readIndex(ctx, prefixKernel, kernel, after, false, fn)
}

func (l *Log) readIndex(ctx context.Context, prefix byte, name string, after uint64, decode bool, fn Visit) error {
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	last := l.Last() // NB: as in scan, nothing past what Append reported
	lower, upper := indexBounds(prefix, name, after)
	idx, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer idx.Close()
	evs, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer evs.Close()
	var k [9]byte
	var in events.Interner
	for valid := idx.First(); valid; valid = idx.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		seq := seqFromIndexKey(idx.Key())
		if seq > last {
			break
		}
		if !evs.SeekGE(eventKey(k[:0], seq)) || seqFromEventKey(evs.Key()) != seq {
			return &events.DecodeError{Seq: seq, Err: fmt.Errorf("%w: index of %s names a missing event", events.ErrCorrupt, name)}
		}
		if err := l.visit(seq, evs.Value(), decode, &in, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := idx.Error(); err != nil {
		return l.readErr(fmt.Errorf("read %s: %w", name, err))
	}
	if err := evs.Error(); err != nil {
		return l.readErr(fmt.Errorf("read %s: %w", name, err))
	}
	return nil
}

// Follow calls fn for every event with seq > after, in order, decoded, then
// waits for new ones and calls fn for them too, until ctx ends (returning
// ctx.Err()), fn returns an error, or the log closes (ErrClosed). Waiting is
// signalled by commits, never polled. An after below First-1 (other than 0,
// which means from the start of what is retained) returns a
// *TruncatedError.
func (l *Log) Follow(ctx context.Context, after uint64, fn Visit) error {
	return l.follow(ctx, after, true, fn)
}

// FollowRaw is Follow without decoding payloads.
func (l *Log) FollowRaw(ctx context.Context, after uint64, fn Visit) error {
	return l.follow(ctx, after, false, fn)
}

func (l *Log) follow(ctx context.Context, after uint64, decode bool, fn Visit) error {
	if after != 0 {
		if err := l.CheckAfter(after); err != nil {
			return fmt.Errorf("follow events after %d: %w", after, err)
		}
	}
	cursor := after
	for {
		changed := l.Changed() // NB: taken before reading Last, so no commit is missed
		if l.closed.Load() {
			return ErrClosed
		}
		if cursor != 0 {
			// NB: retention may have passed a lagging follower; the scan
			// below would skip the gap silently.
			if err := l.CheckAfter(cursor); err != nil {
				return fmt.Errorf("follow events after %d: %w", cursor, err)
			}
		}
		if last := l.Last(); last > cursor {
			var stopped bool
			err := l.scan(ctx, cursor+1, last, decode, func(e events.Event) error {
				cursor = e.Seq
				err := fn(e)
				if errors.Is(err, ErrStop) {
					stopped = true
				}
				return err
			})
			if err != nil || stopped {
				return err
			}
			cursor = last
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
