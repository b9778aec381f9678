package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// SaveSnapshot stores a read model's state as of seq, durably.
func (l *Log) SaveSnapshot(name string, seq uint64, data []byte) error {
	if l.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	if err := l.err(); err != nil {
		return err
	}
	// NB: a snapshot can be large (an executions model with its outputs):
	// refuse it while space is short or when writing it (twice: WAL and
	// table) would reach the reserve, rather than run Pebble out of space.
	if err := l.space.roomFor(2*uint64(len(data)), l.opts.Now()); err != nil {
		return fmt.Errorf("save snapshot %s: %w", name, err)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(data)), seq)
	v = append(v, data...)
	b := l.db.NewBatch()
	defer b.Close()
	_ = b.Set(snapshotKey(name), v, nil)
	if err := l.apply(b); err != nil {
		return l.fail(fmt.Errorf("save snapshot %s at %d: %w", name, seq, err))
	}
	return nil
}

// LoadSnapshot returns a snapshot's sequence and a copy of its data; ok is
// false when there is none.
func (l *Log) LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error) {
	if err := l.acquire(); err != nil {
		return 0, nil, false, err
	}
	defer l.release()
	v, closer, err := l.db.Get(snapshotKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, nil, false, fmt.Errorf("load snapshot %s: %w: %d bytes", name, events.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v[:8]), append([]byte(nil), v[8:]...), true, nil
}

func snapshotKey(name string) []byte { return append([]byte{prefixSnapshot}, name...) }

// TruncateBefore deletes every event with seq < before, and its index
// entries, except the events keep keeps (keep nil keeps none): retention
// keeps the streams actors still recover from (a live kernel's lifecycle,
// an unfinished execution), however old, and deletes the rest. Events kept
// below First stay readable through ReadStream, ReadKernel and a Read or
// Scan from 0; each call reconsiders them, so an event kept once is deleted
// by the first call whose keep lets it go. keep sees envelopes (Raw set,
// Payload nil) and runs on the caller's goroutine.
//
// The caller must hold snapshots that cover what it deletes (see
// projections.Retention); the log only refuses to cut past its end.
func (l *Log) TruncateBefore(before uint64, keep func(events.Event) bool) (deleted int, err error) {
	if l.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if err := l.acquire(); err != nil {
		return 0, err
	}
	defer l.release()
	if err := l.err(); err != nil {
		return 0, err
	}
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	if before > l.Last()+1 {
		return 0, fmt.Errorf("truncate before %d: the log ends at %d", before, l.Last())
	}
	first := l.First()
	if before <= first && (keep == nil || first <= 1) {
		return 0, nil // NB: with keep, events kept earlier may be released
	}
	before = max(before, first)
	// NB: in chunks, each its own batch: the first run on a large log kept
	// whole (retention newly switched on) would otherwise build one batch
	// of every index key of millions of events.
	lo := uint64(1) // the first chunk reconsiders the events kept below First
	for lo < before {
		hi := min(before, max(lo, first)+truncateChunk)
		n, err := l.truncateRange(lo, hi, keep)
		deleted += n
		if err != nil {
			return deleted, err
		}
		lo = hi
	}
	return deleted, nil
}

// truncateChunk bounds the events one truncation batch deletes.
const truncateChunk = 1 << 16

// truncateRange deletes the events in [lo, hi) that keep does not keep and
// moves First to hi. Under truncMu.
func (l *Log) truncateRange(lo, hi uint64, keep func(events.Event) bool) (deleted int, err error) {
	batch := l.db.NewBatch()
	defer batch.Close()
	var a, b [9]byte
	run := uint64(0) // first seq of the run of deleted events being built
	err = l.scan(context.Background(), lo, hi-1, false, func(e events.Event) error {
		if keep != nil && keep(e) {
			if run != 0 {
				_ = batch.DeleteRange(eventKey(a[:0], run), eventKey(b[:0], e.Seq), nil)
				_ = batch.DeleteRange(foreignKey(a[:0], run), foreignKey(b[:0], e.Seq), nil)
				run = 0
			}
			return nil
		}
		_ = batch.Delete(indexKey(prefixStream, e.Stream, e.Seq), nil)
		if e.Kernel != "" {
			_ = batch.Delete(indexKey(prefixKernel, e.Kernel, e.Seq), nil)
		}
		if run == 0 {
			run = e.Seq
		}
		deleted++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("truncate before %d: %w", hi, err)
	}
	if run != 0 {
		_ = batch.DeleteRange(eventKey(a[:0], run), eventKey(b[:0], hi), nil)
		_ = batch.DeleteRange(foreignKey(a[:0], run), foreignKey(b[:0], hi), nil)
	}
	_ = batch.Set(metaFirstKey, binary.BigEndian.AppendUint64(nil, hi), nil)
	if err := l.apply(batch); err != nil {
		return 0, l.fail(fmt.Errorf("truncate before %d: %w", hi, err))
	}
	l.first.Store(max(l.First(), hi))
	return deleted, nil
}

// Compact rewrites the log's files so that the space of deleted events is
// returned to the file system now rather than at Pebble's next compaction
// of that range. Retention does not need it; tests and operators measuring
// DiskUsage do.
func (l *Log) Compact(ctx context.Context) error {
	if l.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("compact event log: flush: %w", err)
	}
	if err := l.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		return fmt.Errorf("compact event log: %w", err)
	}
	return nil
}
