package eventlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// The write path. An append hands nothing to another goroutine:
//
//  1. It encodes its payloads outside any lock.
//  2. Under one short lock (writePath.mu) it is admitted (the bound on what
//     is written but not durable, free space, the sequence mark), gets its
//     sequences, and its batch is written with db.ApplyNoSyncWait. Pebble
//     writes batches to its WAL in the order they are applied, so sequence
//     order is WAL order.
//  3. Outside the lock it waits for its batch's fsync (Batch.SyncWait:
//     Pebble's WAL syncer wakes it, as it wakes a raw db.Apply with
//     pebble.Sync), then settles: it advances the durable watermark (Last)
//     over every append up to its own and wakes followers (Changed) once.
//
// AppendAsync stops after step 2 and returns a Pending; its fsync is waited
// for by whoever's sync covers it (an Append behind it) or by the syncer
// goroutine, which waits on the newest asynchronous append and so covers a
// whole burst with one wake.
//
// Settling is in WAL order: a batch is reported durable only when every
// batch before it is. A batch whose own SyncWait returned nil is durable,
// and so is every earlier batch in the same WAL file: Pebble's WAL writer
// syncs in order and its errors are sticky (a failed write or sync fails
// every later sync of that file). Across a WAL rotation (the generation
// counted by the WALCreated listener) only a batch's own SyncWait says.

const (
	defaultMaxUnsyncedEvents = 8192
	defaultMaxUnsyncedBytes  = 32 << 20
	// recordOverhead approximates the envelope and index keys of one event.
	recordOverhead = 128
)

// writePath is the Log's append state.
type writePath struct {
	mu       sync.Mutex // admit, sequence, write (held for microseconds)
	next     uint64     // last sequence handed out; ahead of Last while appends are unsynced (mu)
	reserved uint64     // the sequence mark: no sequence above it is handed out (mu)

	walGen atomic.Uint64 // WAL files created since Open (Pebble's WALCreated)

	fmu     sync.Mutex
	flights []*flight // written, not yet settled, in WAL order (fmu; popped under settleMu)

	settleMu sync.Mutex // serializes settling, so Last only grows and failures are seen in order

	unsyncedEvents atomic.Int64 // written but not yet settled
	unsyncedBytes  atomic.Int64

	async chan *flight // appends nobody waits on, for the syncer (capacity: the event bound + 1)
}

// flight is one append in the write path: written to Pebble, awaiting its
// fsync.
type flight struct {
	batch       *pebble.Batch
	pending     *events.Pending
	first, last uint64 // its sequences
	bytes       int64
	walBefore   uint64 // WAL generation before and after its write
	walAfter    uint64
	start       time.Time
	synced      atomic.Bool // its own SyncWait returned; syncErr is set
	syncErr     error
}

// listener is Pebble's event listener: damaged files (corrupt.go) and WAL
// rotations (the generation that bounds the in-order inference above).
func (l *Log) listener() *pebble.EventListener {
	el := l.corruptionListener()
	el.WALCreated = func(pebble.WALCreateInfo) { l.w.walGen.Add(1) }
	return el
}

// Append makes drafts durable, in order and contiguous, and returns them as
// events. It returns after the fsync. It is safe to call concurrently;
// concurrent calls share syncs. Once written, the append's outcome is
// awaited even if ctx ends, so the caller never believes an event absent
// that became durable.
func (l *Log) Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error) {
	if len(drafts) == 0 {
		if l.opts.ReadOnly {
			return nil, ErrReadOnly
		}
		return nil, nil
	}
	f, err := l.write(ctx, drafts, false)
	if err != nil {
		return nil, err
	}
	l.syncWait(f)
	return f.pending.Wait(context.Background())
}

// AppendAsync puts drafts in the log's write path and returns without
// waiting for the fsync: the Pending's events have their sequences, in WAL
// order, and it settles once they are durable (or failed). See
// events.Pending for what a caller may do before that. It blocks while the
// bound on what is written but not durable (Options.MaxUnsyncedEvents,
// MaxUnsyncedBytes) is reached, until syncs make room, ctx ends or the log
// closes.
func (l *Log) AppendAsync(ctx context.Context, drafts ...events.Draft) (*events.Pending, error) {
	if len(drafts) == 0 {
		if l.opts.ReadOnly {
			return nil, ErrReadOnly
		}
		p := events.NewPending(nil)
		p.Settle(nil)
		return p, nil
	}
	f, err := l.write(ctx, drafts, true)
	if err != nil {
		return nil, err
	}
	return f.pending, nil
}

// encoded is an append's payloads, encoded outside the lock.
type encoded struct {
	raws  [][]byte
	types []string
	vers  []uint16
	bytes int64
}

func encode(drafts []events.Draft) (encoded, error) {
	enc := encoded{raws: make([][]byte, len(drafts)), types: make([]string, len(drafts)), vers: make([]uint16, len(drafts))}
	for i, d := range drafts {
		if d.Payload == nil || d.Stream == "" {
			return enc, fmt.Errorf("append draft %d: stream and payload are required", i)
		}
		// NB: index keys are <name> 0x00 <seq>; a name holding 0x00 would
		// fall inside another name's range.
		if strings.IndexByte(d.Stream, 0) >= 0 || strings.IndexByte(d.Kernel, 0) >= 0 {
			return enc, fmt.Errorf("append draft %d: stream %q or kernel %q contains a NUL byte", i, d.Stream, d.Kernel)
		}
		typ := d.Payload.EventType()
		v, ok := events.CurrentVersion(typ)
		if !ok {
			return enc, fmt.Errorf("append %s: %w", typ, events.ErrUnknownType)
		}
		raw, err := json.Marshal(d.Payload)
		if err != nil {
			return enc, fmt.Errorf("append %s: marshal payload: %w", typ, err)
		}
		enc.raws[i], enc.types[i], enc.vers[i] = raw, typ, v
		enc.bytes += int64(len(raw)) + recordOverhead
	}
	return enc, nil
}

// write puts one append in the write path: steps 1 and 2 above. An async
// append is queued for the syncer.
func (l *Log) write(ctx context.Context, drafts []events.Draft, async bool) (*flight, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	enc, err := encode(drafts)
	if err != nil {
		return nil, err
	}
	n := int64(len(drafts))
	w := &l.w
	for {
		w.mu.Lock()
		if err := l.err(); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		// NB: Changed is taken before the counts are read: every settle
		// that frees room lowers them, then closes it.
		room := l.Changed()
		ue, ub := w.unsyncedEvents.Load(), w.unsyncedBytes.Load()
		if ue == 0 || (ue+n <= int64(l.opts.MaxUnsyncedEvents) && ub+enc.bytes <= l.opts.MaxUnsyncedBytes) {
			break // NB: holding w.mu
		}
		w.mu.Unlock()
		select {
		case <-room:
		case <-l.stop:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("append: wait for room in the write path (%d events, %s written but not yet durable): %w",
				ue, HumanSize(uint64(ub)), ctx.Err())
		}
	}
	defer w.mu.Unlock()
	// NB: Import writes without the write path; continue after it.
	w.next = max(w.next, l.last.Load())
	if err := l.admit(enc.bytes, w.next+uint64(n)); err != nil {
		return nil, err
	}
	if l.opts.BeforeCommit != nil {
		l.opts.BeforeCommit()
	}
	f := &flight{first: w.next + 1, bytes: enc.bytes, start: time.Now()}
	now := l.opts.Now().UTC()
	batch := l.db.NewBatch()
	evs := make([]events.Event, len(drafts))
	var key [9]byte
	var rec, idx []byte
	seq := w.next
	for j, d := range drafts {
		seq++
		e := events.Event{Seq: seq, Time: now, Stream: d.Stream, Kernel: d.Kernel, Node: l.opts.Node, Principal: d.Principal,
			Type: enc.types[j], Version: enc.vers[j], Payload: d.Payload, Raw: enc.raws[j]}
		rec = events.AppendRecord(rec[:0], e, enc.raws[j])
		_ = batch.Set(eventKey(key[:0], seq), rec, nil) // NB: Set copies key and value
		idx = appendIndexKey(idx[:0], prefixStream, d.Stream, seq)
		_ = batch.Set(idx, nil, nil)
		if d.Kernel != "" {
			idx = appendIndexKey(idx[:0], prefixKernel, d.Kernel, seq)
			_ = batch.Set(idx, nil, nil)
		}
		evs[j] = e
	}
	f.batch, f.last, f.pending = batch, seq, events.NewPending(evs)
	f.walBefore = w.walGen.Load()
	if err := l.applyNoSyncWait(batch); err != nil {
		// NB: the batch is not closed: after a failed write Pebble may
		// still hold it, and it is never reused (Pebble clears its db).
		return nil, l.fail(fmt.Errorf("append %d events at sequence %d: %w", n, f.first, err))
	}
	f.walAfter = w.walGen.Load()
	w.next = seq
	w.unsyncedEvents.Add(n)
	w.unsyncedBytes.Add(enc.bytes)
	w.fmu.Lock()
	w.flights = append(w.flights, f)
	w.fmu.Unlock()
	if async {
		// NB: never blocks: the bound keeps at most MaxUnsyncedEvents+1
		// appends unsettled, the channel's capacity.
		w.async <- f
	}
	if l.opts.Faults != nil {
		l.opts.Faults.Hit("eventlog.written")
	}
	return f, nil
}

// syncWait waits for f's own fsync, then settles what it covers. Only one
// goroutine calls it per flight (the appender, or the syncer for an async
// append): SyncWait is not safe to call twice concurrently.
func (l *Log) syncWait(f *flight) {
	err := f.batch.SyncWait()
	if err == nil {
		_ = f.batch.Close()
	} else {
		// NB: settle reports it in order; failing here too makes sure the
		// log is inoperable even if an earlier settle passed f by inference.
		err = l.fail(fmt.Errorf("sync %d events at sequence %d: %w", f.last-f.first+1, f.first, err))
	}
	f.syncErr = err
	f.synced.Store(true)
	l.settle(f)
}

// settle pops, in WAL order, every unsettled append known durable (or
// failed) now that witness's own sync returned: the ones whose own sync
// returned, and those before witness in the same WAL file. It advances Last,
// wakes followers once and settles their Pendings. An append it cannot
// pass yet is settled by whoever syncs it (its SyncWait caller settles
// after marking it synced, and passes every later synced append).
func (l *Log) settle(witness *flight) {
	w := &l.w
	w.settleMu.Lock()
	w.fmu.Lock()
	i := 0
	var syncErr error
	for ; i < len(w.flights); i++ {
		f := w.flights[i]
		switch {
		case f.synced.Load():
			if f.syncErr != nil && syncErr == nil {
				syncErr = f.syncErr
			}
		case witness.syncErr == nil && f.last < witness.first && f.walBefore == witness.walAfter:
			// Durable by WAL order (see the top of this file).
		default:
			goto popped
		}
	}
popped:
	if i == 0 {
		w.fmu.Unlock()
		w.settleMu.Unlock()
		return
	}
	done := make([]*flight, i)
	copy(done, w.flights[:i])
	rest := copy(w.flights, w.flights[i:])
	clear(w.flights[rest:])
	w.flights = w.flights[:rest]
	w.fmu.Unlock()

	// NB: a batch written after a failed one may sync fine (after a WAL
	// rotation); it still must not be reported done, or the log would have
	// a gap. A batch durable before Close is reported done.
	err := l.failedErr()
	if syncErr != nil && err == nil {
		err = syncErr
	}
	first, last := done[0], done[len(done)-1]
	var events, bytes int64
	for _, f := range done {
		events += int64(f.last - f.first + 1)
		bytes += f.bytes
	}
	if err == nil {
		l.last.Store(last.last)
		l.appendStats.record(len(done), int(events), time.Since(first.start))
	}
	w.unsyncedEvents.Add(-events)
	w.unsyncedBytes.Add(-bytes)
	w.settleMu.Unlock()

	// One wake for followers and for appends waiting for room.
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	for _, f := range done {
		if err == nil && l.opts.Faults != nil {
			l.opts.Faults.Hit("eventlog.durable")
		}
		f.pending.Settle(err)
	}
}

// syncLoop is the syncer: it waits for the fsync of the appends nobody
// waits on (AppendAsync) and settles them. It takes every async append
// queued so far and waits on the newest (its fsync covers the earlier
// ones), so a burst costs one wake. Owned by the Log: Close stops it once
// the write path is empty.
func (l *Log) syncLoop() {
	defer close(l.done)
	var burst []*flight
	for {
		select {
		case f := <-l.w.async:
			burst = append(burst[:0], f)
		case <-l.stop:
			return
		}
	more:
		for len(burst) < cap(l.w.async) {
			select {
			case f := <-l.w.async:
				burst = append(burst, f)
			default:
				break more
			}
		}
		// NB: newest first: the earlier SyncWaits then return at once
		// (Pebble wakes sync waiters oldest first).
		newest := burst[len(burst)-1]
		l.syncWaitQuiet(newest)
		for _, f := range burst[:len(burst)-1] {
			l.syncWaitQuiet(f)
		}
		l.settle(newest)
		clear(burst)
	}
}

// syncWaitQuiet is syncWait without settling (the syncer settles a burst
// once).
func (l *Log) syncWaitQuiet(f *flight) {
	err := f.batch.SyncWait()
	if err == nil {
		_ = f.batch.Close()
	} else {
		err = l.fail(fmt.Errorf("sync %d events at sequence %d: %w", f.last-f.first+1, f.first, err))
	}
	f.syncErr = err
	f.synced.Store(true)
}

// closeWritePath waits until no append is in the write path: a writer
// holding the lock finishes (later ones see closed and get ErrClosed), and
// every written append settles. Then it stops the syncer.
func (l *Log) closeWritePath() {
	l.w.mu.Lock()
	l.w.mu.Unlock() //nolint:staticcheck // NB: an empty section: waits for the writer inside
	for {
		changed := l.Changed()
		l.w.fmu.Lock()
		n := len(l.w.flights)
		l.w.fmu.Unlock()
		if n == 0 {
			break
		}
		<-changed
	}
	close(l.stop)
	<-l.done
}

// admit checks, before an append is written, that the file system has
// room for it (when MinFree is set) and that its sequences (up to last) are
// reserved in the sequence mark. Both cost nothing most of the time: an
// atomic add and compare, and one mark write per seqReserveStep
// sequences. A refusal leaves the log usable. Called with w.mu held.
func (l *Log) admit(size int64, last uint64) error {
	if l.space.min > 0 {
		if err := l.admitSpace(uint64(size)); err != nil {
			return err
		}
	}
	if last > l.w.reserved {
		next := last + seqReserveStep
		if err := writeSeqMark(l.dir, seqMark{seq: next}); err != nil {
			return fmt.Errorf("append: reserve sequences up to %d: %w", next, err)
		}
		l.w.reserved = next
	}
	return nil
}

// admitSpace checks that the file system has room for size bytes.
func (l *Log) admitSpace(size uint64) error {
	// NB: near the levels, look before every append (a statfs is
	// microseconds, an fsync hundreds): other writers on the file system
	// (assets, kernels) fill it too.
	if l.space.wrote(size) || l.space.near() {
		l.space.refresh(l.opts.Now())
	}
	if err := l.errNoSpace(); err != nil {
		return err
	}
	// NB: one append can be large (a batch of big outputs): it must fit
	// above the reserve as a whole.
	if l.space.fits(size, l.space.min/4) != nil {
		l.space.refresh(l.opts.Now())
		if err := l.space.fits(size, l.space.min/4); err != nil {
			return fmt.Errorf("append: %w", err)
		}
	}
	return nil
}

func (l *Log) err() error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}
