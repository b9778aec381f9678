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
//  2. It reserves room under the bound on what is written but not durable,
//     queues itself and takes the write lock (writePath.mu) if it is free.
//     The lock holder writes every queued append into one batch: each
//     admitted (free space, the sequence mark) and given its sequences,
//     then the batch written with db.ApplyNoSyncWait. Pebble writes batches
//     to its WAL in the order they are applied, so sequence order is WAL
//     order. 64 appenders arriving together cost one lock acquisition and
//     enter the WAL at once, ahead of the next fsync, instead of a convoy
//     of 64 hand-overs of a contended lock. An Append that finds the lock
//     taken sleeps once, until its Pending settles (step 3); an
//     AppendAsync is woken once its events are written.
//  3. Outside the lock the holder (an Append) waits for the batch's fsync
//     (Batch.SyncWait: Pebble's WAL syncer wakes it, as it wakes a raw
//     db.Apply with pebble.Sync), then settles: it advances the durable
//     watermark (Last) over every append up to the batch's last, wakes
//     followers (Changed) once and settles each append's Pending, which
//     wakes the Appends that were queued behind the lock.
//
// AppendAsync stops after step 2 and returns a Pending; its fsync is waited
// for by whoever's sync covers it (an Append behind it) or by the syncer
// goroutine, which waits on the newest batch of a burst first and so
// settles the whole burst with one wake.
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
	mu       sync.Mutex  // admit, sequence, write (held for microseconds)
	next     uint64      // last sequence handed out; ahead of Last while appends are unsynced (mu)
	reserved uint64      // the sequence mark: no sequence above it is handed out (mu)
	rec, idx []byte      // scratch for building batches (mu)
	spare    []*writeReq // the queue's other buffer (mu)
	written  []*writeReq // scratch (mu)
	// foreignPos is the highest AppendForeign position written (mu): an
	// import at or below it is refused here, where two imports of one
	// position cannot both pass (foreign.go).
	foreignPos uint64
	// origins is the newest origin sequence imported per node (mu;
	// foreign.go).
	origins map[string]uint64

	qmu   sync.Mutex
	queue []*writeReq // appends waiting for mu (qmu)

	roomMu sync.Mutex // makes a reservation under the bound atomic

	walGen atomic.Uint64 // WAL files created since Open (Pebble's WALCreated)

	fmu     sync.Mutex
	flights []*flight // written, not yet settled, in WAL order (fmu; popped under settleMu)

	settleMu sync.Mutex // serializes settling, so Last only grows and failures are seen in order

	unsyncedEvents atomic.Int64 // reserved or written, not yet settled
	unsyncedBytes  atomic.Int64
	roomWaits      atomic.Int64 // times an append waited for room (tests look)

	async chan *flight // batches nobody else waits on, for the syncer
}

// flight is one append in the write path: written to Pebble, awaiting its
// fsync.
type flight struct {
	batch       *pebble.Batch
	pendings    []*events.Pending // the appends it carries, in order
	first, last uint64            // its sequences
	bytes       int64
	async       bool        // it carries an AppendAsync: the syncer sees it
	hasSync     bool        // it carries an Append: the writer that wrote it waits for it
	claimed     atomic.Bool // someone calls its SyncWait (exactly one may)
	walBefore   uint64      // WAL generation before and after its write
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
	p, err := l.write(ctx, drafts, false)
	if err != nil {
		return nil, err
	}
	return p.Wait(context.Background())
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
	p, err := l.write(ctx, drafts, true)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// encoded is an append's payloads, encoded outside the lock.
type encoded struct {
	payloads []encodedPayload
	bytes    int64
}

type encodedPayload struct {
	raw []byte
	typ string
	ver uint16
}

func encode(drafts []events.Draft, into []encodedPayload) (encoded, error) {
	enc := encoded{payloads: into}
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
		enc.payloads[i] = encodedPayload{raw: raw, typ: typ, ver: v}
		enc.bytes += int64(len(raw)) + recordOverhead
	}
	return enc, nil
}

// writeReq is an append waiting for the write lock.
type writeReq struct {
	drafts []events.Draft
	// foreign and position are an AppendForeign's (foreign.go): records
	// of another node, and the history stream position recorded with them.
	foreign  []events.Event
	position uint64
	enc      encoded
	async    bool
	evs      []events.Event // the Pending's events, filled in by the lock holder
	p        *events.Pending
	err      error
	done     chan struct{} // AppendAsync only: closed once written or refused

	onePayload [1]encodedPayload
	oneEvent   [1]events.Event
}

// records is how many records the append writes.
func (r *writeReq) records() int {
	if r.position != 0 {
		return len(r.foreign)
	}
	return len(r.drafts)
}

// write puts one append in the write path: steps 1 and 2 above. The append
// first reserves room under the bound, then queues itself and takes the
// write lock if it is free; whoever holds the lock writes every queued
// append, in one batch, before letting it go (so 64 appenders arriving at
// once cost one lock acquisition and enter the WAL together, ahead of the
// next fsync). The holder, when it is an Append, then waits for the fsync
// of what it wrote and settles it: the other Appends sleep once, until
// their Pending settles. Batches nobody waits on this way (written by an
// AppendAsync) go to the syncer.
func (l *Log) write(ctx context.Context, drafts []events.Draft, async bool) (*events.Pending, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	// NB: one allocation holds the request, its encoded payload and its
	// event in the usual case of one draft.
	req := &writeReq{drafts: drafts, async: async}
	payloads, evs := req.onePayload[:], req.oneEvent[:]
	if len(drafts) > 1 {
		payloads, evs = make([]encodedPayload, len(drafts)), make([]events.Event, len(drafts))
	}
	enc, err := encode(drafts, payloads)
	if err != nil {
		return nil, err
	}
	if err := l.reserve(ctx, int64(len(drafts)), enc.bytes); err != nil {
		return nil, err
	}
	req.enc, req.evs, req.p = enc, evs, events.NewPending(evs)
	if async {
		req.done = make(chan struct{})
	}
	w := &l.w
	w.qmu.Lock()
	w.queue = append(w.queue, req)
	w.qmu.Unlock()
	written := l.combine()
	if !async {
		// NB: once queued, the outcome is awaited even if ctx ends: the
		// lock holder writes or refuses a queued append at once.
		l.syncFlights(written)
		return req.p, nil
	}
	for _, f := range written {
		if !f.async { // NB: a batch with an async append went to the syncer already
			w.async <- f
		}
	}
	<-req.done
	if req.err != nil {
		return nil, req.err
	}
	return req.p, nil
}

// combine writes every queued append if the write lock is free, and
// returns the batches it wrote that carry an Append (someone must wait for
// their fsync). NB: an appender whose TryLock fails is served by the
// holder, which looks at the queue again after letting the lock go.
func (l *Log) combine() (withSync []*flight) {
	w := &l.w
	for {
		if !w.mu.TryLock() {
			return withSync
		}
		for {
			w.qmu.Lock()
			reqs := w.queue
			if len(reqs) == 0 {
				w.qmu.Unlock()
				break
			}
			// NB: swap buffers; spare is only touched by the lock holder.
			w.queue, w.spare = w.spare[:0], nil
			w.qmu.Unlock()
			if f := l.writeBatch(reqs); f != nil && f.hasSync {
				withSync = append(withSync, f)
			}
			for _, r := range reqs {
				if r.done != nil {
					close(r.done)
				}
			}
			clear(reqs)
			w.spare = reqs[:0]
		}
		w.mu.Unlock()
		w.qmu.Lock()
		empty := len(w.queue) == 0
		w.qmu.Unlock()
		if empty {
			return withSync
		}
	}
}

// refuse answers a queued append that was not written and gives back its
// room under the bound, waking the appends waiting for room (no settle
// will: nothing of it was written).
func (l *Log) refuse(r *writeReq, err error) {
	r.err = err
	r.p.Settle(err)
	l.w.unsyncedEvents.Add(-int64(r.records()))
	l.w.unsyncedBytes.Add(-r.enc.bytes)
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// reserve takes room for n events and size bytes under the bound on what
// is written but not durable, waiting while there is none (always room
// when nothing is in flight). settle gives it back.
func (l *Log) reserve(ctx context.Context, n, size int64) error {
	w := &l.w
	for {
		if err := l.err(); err != nil {
			return err
		}
		if l.tryReserve(n, size) {
			return nil
		}
		// NB: Changed is taken before the counts are read again: every
		// settle that frees room lowers them, then closes it.
		room := l.Changed()
		if l.tryReserve(n, size) {
			return nil
		}
		ue, ub := w.unsyncedEvents.Load(), w.unsyncedBytes.Load()
		w.roomWaits.Add(1)
		select {
		case <-room:
		case <-l.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("append: wait for room in the write path (%d events, %s written but not yet durable): %w",
				ue, HumanSize(uint64(ub)), ctx.Err())
		}
	}
}

func (l *Log) tryReserve(n, size int64) bool {
	w := &l.w
	w.roomMu.Lock()
	defer w.roomMu.Unlock()
	ue, ub := w.unsyncedEvents.Load(), w.unsyncedBytes.Load()
	if ue != 0 && (ue+n > int64(l.opts.MaxUnsyncedEvents) || ub+size > l.opts.MaxUnsyncedBytes) {
		return false
	}
	w.unsyncedEvents.Add(n)
	w.unsyncedBytes.Add(size)
	return true
}

// writeBatch sequences the queued appends and writes them as one batch,
// filling in each one's events, or refusing it. An append refused (disk
// full, sequence mark) leaves the others in. It returns the batch, nil when
// nothing was written. Called with w.mu held.
func (l *Log) writeBatch(reqs []*writeReq) *flight {
	w := &l.w
	// NB: Import writes without the write path; continue after it.
	w.next = max(w.next, l.last.Load())
	if l.opts.BeforeCommit != nil {
		l.opts.BeforeCommit()
	}
	f := &flight{first: w.next + 1, start: time.Now()}
	now := l.opts.Now().UTC()
	var batch *pebble.Batch
	var key [9]byte
	written := w.written[:0]
	seq := w.next
	foreignPos := max(w.foreignPos, l.foreignPos.Load())
	for _, r := range reqs {
		if err := l.err(); err != nil {
			l.refuse(r, err)
			continue
		}
		if r.position != 0 && r.position <= foreignPos {
			l.refuse(r, fmt.Errorf("append foreign records up to position %d: %w (the log holds them up to %d)", r.position, ErrForeignImported, foreignPos))
			continue
		}
		if err := l.admit(r.enc.bytes, seq+uint64(r.records())); err != nil {
			l.refuse(r, err)
			continue
		}
		if batch == nil {
			batch = l.db.NewBatch()
		}
		if r.position != 0 {
			seq = l.writeForeignReq(batch, r, seq)
			foreignPos = r.position
		}
		for j, d := range r.drafts {
			seq++
			pl := r.enc.payloads[j]
			e := events.Event{Seq: seq, Time: now, Stream: d.Stream, Kernel: d.Kernel, Node: l.opts.Node, Principal: d.Principal,
				Type: pl.typ, Version: pl.ver, Payload: d.Payload, Raw: pl.raw}
			w.rec = events.AppendRecord(w.rec[:0], e, pl.raw)
			_ = batch.Set(eventKey(key[:0], seq), w.rec, nil) // NB: Set copies key and value
			w.idx = appendIndexKey(w.idx[:0], prefixStream, d.Stream, seq)
			_ = batch.Set(w.idx, nil, nil)
			if d.Kernel != "" {
				w.idx = appendIndexKey(w.idx[:0], prefixKernel, d.Kernel, seq)
				_ = batch.Set(w.idx, nil, nil)
			}
			r.evs[j] = e
		}
		f.pendings = append(f.pendings, r.p)
		f.bytes += r.enc.bytes
		f.async = f.async || r.async
		f.hasSync = f.hasSync || !r.async
		written = append(written, r)
	}
	if cap(w.rec) > 1<<20 {
		w.rec = nil // NB: one big output must not pin its buffer
	}
	defer func() { clear(written); w.written = written[:0] }()
	if batch == nil {
		return nil
	}
	f.batch, f.last = batch, seq
	f.walBefore = w.walGen.Load()
	if err := l.applyNoSyncWait(batch); err != nil {
		// NB: the batch is not closed: after a failed write Pebble may
		// still hold it, and it is never reused (Pebble clears its db).
		err = l.fail(fmt.Errorf("append %d events at sequence %d: %w", f.last-f.first+1, f.first, err))
		for _, r := range written {
			l.refuse(r, err)
		}
		return nil
	}
	f.walAfter = w.walGen.Load()
	w.next = seq
	w.foreignPos = foreignPos
	w.fmu.Lock()
	w.flights = append(w.flights, f)
	w.fmu.Unlock()
	if l.opts.Faults != nil {
		for range written {
			l.opts.Faults.Hit("eventlog.written")
		}
	}
	if f.async {
		// NB: if the channel is full, this waits for the syncer, which
		// drains it without taking mu: a wait here is short.
		w.async <- f
	}
	return f
}

// syncFlights waits, oldest first, for the fsync of the batches it can
// claim and settles each as soon as it is durable (an earlier batch's
// appenders must not wait for a later batch's fsync). A batch claimed by
// another goroutine is that one's to wait for.
func (l *Log) syncFlights(fs []*flight) {
	for _, f := range fs {
		if f.claimed.CompareAndSwap(false, true) {
			l.syncWaitQuiet(f)
			l.settle(f)
		}
	}
}

// syncBurst is the syncer's syncFlights: newest first (the earlier
// SyncWaits then return at once: Pebble wakes sync waiters oldest first),
// then one settle for the burst, so followers wake once.
func (l *Log) syncBurst(fs []*flight) {
	var newest *flight
	for i := len(fs) - 1; i >= 0; i-- {
		if f := fs[i]; f.claimed.CompareAndSwap(false, true) {
			l.syncWaitQuiet(f)
			if newest == nil {
				newest = f
			}
		}
	}
	if newest != nil {
		l.settle(newest)
	}
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
	appends := 0
	for _, f := range done {
		events += int64(f.last - f.first + 1)
		bytes += f.bytes
		appends += len(f.pendings)
	}
	if err == nil {
		l.last.Store(last.last)
		l.appendStats.record(appends, int(events), time.Since(first.start))
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
		for _, p := range f.pendings {
			if err == nil && l.opts.Faults != nil {
				l.opts.Faults.Hit("eventlog.durable")
			}
			p.Settle(err)
		}
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
		l.syncBurst(burst)
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
	// Wake appends waiting for room: they see closed.
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.w.mu.Lock()
	l.w.mu.Unlock() //nolint:staticcheck // NB: an empty section: waits for the writer inside
	// Refuse what is still queued (ErrClosed); a batch written all the
	// same goes to the syncer.
	for _, f := range l.combine() {
		if !f.async {
			l.w.async <- f
		}
	}
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
	if !l.hasFailed.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}
