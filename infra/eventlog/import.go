package eventlog

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ErrNotEmpty: Import was given a log that already holds events.
var ErrNotEmpty = errors.New("eventlog: not empty")

// importChunk is how many events one import batch carries.
const importChunk = 4096

// recordedGap reports whether e is the LogTailDropped that explains the
// sequences missing between last and it.
func recordedGap(e events.Event, last uint64) bool {
	if e.Type != events.TypeLogTailDropped {
		return false
	}
	var p events.LogTailDropped
	return json.Unmarshal(e.Raw, &p) == nil && p.Explains(e.Seq, last)
}

// Import writes events exactly as they are (sequence, time, node and all),
// for `mcp-jupyter events import`: a log exported elsewhere becomes this
// log. The log must be empty (ErrNotEmpty otherwise) and nobody may append
// while Import runs. Sequences must be contiguous (except before a
// LogTailDropped that records the gap); when the first is above 1
// the log starts there (as after TruncateBefore). next returns the events in
// order and ok false at the end. Import returns after everything is synced;
// on error, what was written stays (a partial import) and the caller removes
// the data dir.
func (l *Log) Import(ctx context.Context, next func() (e events.Event, ok bool, err error)) (n int, err error) {
	if l.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if err := l.err(); err != nil {
		return 0, err
	}
	if err := l.acquire(); err != nil {
		return 0, err
	}
	defer l.release()
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	if last := l.Last(); last != 0 {
		return 0, fmt.Errorf("import into %s: %w (it holds events up to %d; import into a new --data-dir)", l.dir, ErrNotEmpty, last)
	}
	var key [9]byte
	var rec, idx []byte
	var seq uint64
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		batch := l.db.NewBatch()
		count := 0
		for count < importChunk {
			e, ok, err := next()
			if err != nil {
				_ = batch.Close()
				return n, err
			}
			if !ok {
				done = true
				break
			}
			switch {
			case seq == 0 && e.Seq == 0:
				_ = batch.Close()
				return n, fmt.Errorf("import event: sequence 0 is not a sequence")
			case seq == 0 && e.Seq > 1:
				var v [8]byte
				binary.BigEndian.PutUint64(v[:], e.Seq)
				_ = batch.Set(metaFirstKey, v[:], nil)
			case seq != 0 && e.Seq != seq+1 && !recordedGap(e, seq):
				_ = batch.Close()
				return n, fmt.Errorf("import event %d: expected sequence %d (sequences must be contiguous)", e.Seq, seq+1)
			}
			if e.Raw == nil {
				_ = batch.Close()
				return n, fmt.Errorf("import event %d: no payload", e.Seq)
			}
			seq = e.Seq
			rec = events.AppendRecord(rec[:0], e, e.Raw)
			_ = batch.Set(eventKey(key[:0], seq), rec, nil)
			idx = appendIndexKey(idx[:0], prefixStream, e.Stream, seq)
			_ = batch.Set(idx, nil, nil)
			if e.Kernel != "" {
				idx = appendIndexKey(idx[:0], prefixKernel, e.Kernel, seq)
				_ = batch.Set(idx, nil, nil)
			}
			count++
		}
		if count == 0 {
			_ = batch.Close()
			break
		}
		if err := l.apply(batch); err != nil {
			return n, l.fail(fmt.Errorf("import %d events up to sequence %d: %w", count, seq, err))
		}
		_ = batch.Close()
		n += count
		if l.first.Load() == 1 && n == count && seq+1-uint64(count) > 1 {
			l.first.Store(seq + 1 - uint64(count))
		}
		// NB: the write path takes max(its next, Last) before each append,
		// so appends after an import continue the numbering.
		l.last.Store(seq)
		l.mu.Lock()
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	return n, nil
}
