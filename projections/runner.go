package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Options configure a Runner. The zero value replays, follows and snapshots
// only on Close, and keeps the whole log.
type Options struct {
	// SnapshotEvery saves every projection's snapshot after this many
	// events (0: only on Close). Snapshots bound restart time: a restart
	// replays only the events after the oldest snapshot.
	SnapshotEvery uint64
	// Retention bounds the log's disk use (see Retention). The zero value
	// keeps everything.
	Retention Retention
	// Rebuild ignores stored snapshots and replays from the first event
	// (after a projection's code changed). It fails with ErrGap when the log
	// was truncated.
	Rebuild bool
	// Logger receives the runner's messages (default: discard).
	Logger *slog.Logger
}

// Runner keeps a set of projections current with the log. Its methods are
// safe for concurrent use.
type Runner struct {
	log    Log
	opts   Options
	states []*state
	plans  map[string]*plan // per event type; the catch-up reader's, then the loop goroutine's

	applied   atomic.Uint64 // every projection has applied every event <= applied
	snapFloor atomic.Uint64 // oldest stored snapshot + 1 (see LogFloor)
	target    atomic.Uint64 // the log's end when catch-up started
	ready     chan struct{}
	sinceSnap uint64 // loop goroutine only

	wmu     sync.Mutex
	waiters map[*waiter]struct{}
	nwait   atomic.Int32

	started   atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
	err       error // the loop's error; written before done closes
	closeOnce sync.Once
	closeErr  error
}

type state struct {
	p       Projection
	snapSeq uint64 // events <= snapSeq are in the model already (restored)
	saved   uint64 // sequence of the last stored snapshot
}

// restore restores the projection from its stored snapshot, if any.
func (st *state) restore(log Log) error {
	name := st.p.Name()
	seq, data, ok, err := log.LoadSnapshot(name)
	if err != nil {
		return fmt.Errorf("start projection %s: %w", name, err)
	}
	if ok {
		if err := st.p.Restore(data); err != nil {
			return fmt.Errorf("start projection %s: restore snapshot at %d: %w", name, seq, err)
		}
		st.snapSeq, st.saved = seq, seq
	}
	return nil
}

type plan struct {
	version uint16 // highest version this binary reads
	decode  bool
	targets []int
	wants   []bool // by projection index: is it a target (see applyShare)
}

type waiter struct {
	seq uint64
	ch  chan struct{}
}

// NewRunner returns a runner for the given projections. Names must be
// unique.
func NewRunner(log Log, opts Options, ps ...Projection) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{log: log, opts: opts, plans: map[string]*plan{}, ready: make(chan struct{}),
		waiters: map[*waiter]struct{}{}, done: make(chan struct{})}
	for _, p := range ps {
		r.states = append(r.states, &state{p: p})
	}
	return r
}

// Start restores every projection from its snapshot and starts the loop
// that replays the log and then follows it. It returns once the loop runs;
// Ready closes when the replay has caught up with the log's end as of Start.
// The loop stops when ctx ends, on Close, or on the first error (see Wait).
func (r *Runner) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("projections: runner already started")
	}
	seen := map[string]bool{}
	for _, st := range r.states {
		name := st.p.Name()
		if seen[name] {
			return fmt.Errorf("start projections: two projections named %q", name)
		}
		seen[name] = true
	}
	if !r.opts.Rebuild {
		// NB: the projections restore at the same time, each on its own
		// goroutine (they share nothing): decoding snapshots is most of a
		// restart. The first projection's error, in order, is returned.
		errs := make([]error, len(r.states))
		var wg sync.WaitGroup
		for i, st := range r.states {
			wg.Go(func() { errs[i] = st.restore(r.log) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}
	from := uint64(0)
	for i, st := range r.states {
		if i == 0 || st.snapSeq < from {
			from = st.snapSeq
		}
	}
	r.updateSnapFloor()
	if first := r.log.First(); from+1 < first {
		return fmt.Errorf("start projections: replay from %d: %w (the log starts at %d; rebuild needs the full log)", from+1, ErrGap, first)
	}
	r.applied.Store(from)
	target := r.log.Last()
	r.target.Store(target)
	ctx, r.cancel = context.WithCancel(ctx)
	go r.loop(ctx, from, target)
	return nil
}

func (r *Runner) loop(ctx context.Context, from, target uint64) {
	defer close(r.done)
	var err error
	if target > from {
		err = r.catchUp(ctx, from, target)
	}
	if err == nil {
		// NB: after a catch-up that returned nil every event <= target was applied.
		r.opts.Logger.Info("projections ready", "seq", target, "replayed", target-from)
		close(r.ready)
		err = r.log.FollowRaw(ctx, target, r.apply)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	if err != nil {
		r.opts.Logger.Error("projections stopped", "err", err)
	}
	r.err = err
}

// Catch-up batches: how many events one carries, and how many are in
// flight between the two goroutines.
const (
	batchEvents = 512
	batchesOut  = 4
)

// batch is a run of events read and decoded by catchUp's reader, with Raw
// copied into arena (the log's buffers are gone once its callback returns).
type batch struct {
	evs   []events.Event
	plans []*plan
	arena []byte
	err   error // the reader's error, after evs
}

// catchUp applies the events in (from, to] as a pipeline: a reader
// goroutine scans the log, plans and decodes the payloads; the loop
// goroutine (this one) and a helper apply them, sharing out the
// projections (applyBatch). Replay is most of a start's time and applying
// is the longer stage, so it is split. The reader owns r.plans until it
// returns.
func (r *Runner) catchUp(ctx context.Context, from, to uint64) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan *batch, batchesOut)
	free := make(chan *batch, batchesOut+2)
	for range batchesOut + 2 {
		free <- &batch{evs: make([]events.Event, 0, batchEvents), plans: make([]*plan, 0, batchEvents), arena: make([]byte, 0, 64<<10)}
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(full)
		r.read(rctx, from, to, full, free)
	}()
	// NB: on every way out, stop the reader and wait for it: it uses r.plans.
	defer func() {
		cancel()
		for range full {
		}
		<-readerDone
	}()
	var helper chan<- span
	var helped <-chan error
	if len(r.states) > 1 {
		jobs, results, helperDone := make(chan span), make(chan error), make(chan struct{})
		go func() {
			defer close(helperDone)
			for j := range jobs {
				results <- r.applyShare(j)
			}
		}()
		// NB: every job sent is answered before the next, so the helper is
		// idle here.
		defer func() { close(jobs); <-helperDone }()
		helper, helped = jobs, results
	}
	for b := range full {
		if err := r.applyBatch(b, helper, helped); err != nil {
			return err
		}
		if b.err != nil {
			return b.err
		}
		clear(b.evs) // NB: drop the payloads before the batch is reused
		free <- b
	}
	return nil
}

// span is a run of a batch's events, [from, to), and the index of the
// next projection to apply it to.
type span struct {
	b        *batch
	from, to int
	next     *atomic.Int32
}

// applyBatch applies b's events, a run at a time: this goroutine and the
// helper (when there is one) share the run's projections (applyShare). Between runs it does what
// applyPlanned does after each event: snapshots when due (a run ends at
// that event) and progress, published at each run's end.
func (r *Runner) applyBatch(b *batch, helper chan<- span, helped <-chan error) error {
	for from := 0; from < len(b.evs); {
		to := len(b.evs)
		if every := r.opts.SnapshotEvery; every > 0 && uint64(to-from) >= every-r.sinceSnap {
			to = from + int(every-r.sinceSnap)
		}
		j := span{b: b, from: from, to: to}
		var err error
		j.next = new(atomic.Int32)
		if helper == nil {
			err = r.applyShare(j)
		} else {
			helper <- j
			err = r.applyShare(j)
			err = earlier(err, <-helped)
		}
		if err != nil {
			return err
		}
		last := b.evs[to-1].Seq
		if r.opts.SnapshotEvery > 0 {
			if r.sinceSnap += uint64(to - from); r.sinceSnap >= r.opts.SnapshotEvery {
				r.sinceSnap = 0
				if err := r.snapshot(last); err != nil {
					return err
				}
				if err := r.retain(); err != nil {
					return err
				}
			}
		}
		r.applied.Store(last)
		if r.nwait.Load() > 0 {
			r.wake(last)
		}
		from = to
	}
	return nil
}

// applyShare applies j's events to projections taken one at a time from
// j.next until none is left: the loop goroutine and the helper share a run
// this way, each projection going whole to one of them (its calls never
// overlap), the busier projections balanced by whoever is free. It stops a
// projection at its first error and returns the earliest event's.
func (r *Runner) applyShare(j span) error {
	var first error
	for {
		i := int(j.next.Add(1)) - 1
		if i >= len(r.states) {
			return first
		}
		st := r.states[i]
		for k := j.from; k < j.to; k++ {
			e := j.b.evs[k]
			if !j.b.plans[k].wants[i] || e.Seq <= st.snapSeq {
				continue
			}
			if err := st.p.Apply(e); err != nil {
				first = earlier(first, &ApplyError{Projection: st.p.Name(), Seq: e.Seq, Type: e.Type, Err: err})
				break
			}
		}
	}
}

// earlier returns the error of the earlier event of two.
func earlier(a, b error) error {
	var ea, eb *ApplyError
	if a == nil || (b != nil && errors.As(a, &ea) && errors.As(b, &eb) && eb.Seq < ea.Seq) {
		return b
	}
	return a
}

// read is catchUp's reader: it fills batches from free and sends them on
// full, the last one carrying the scan's error, if any.
func (r *Runner) read(ctx context.Context, from, to uint64, full chan<- *batch, free <-chan *batch) {
	var b *batch
	take := func() bool {
		select {
		case b = <-free:
			b.evs, b.plans, b.arena, b.err = b.evs[:0], b.plans[:0], b.arena[:0], nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !take() {
		return
	}
	err := r.log.Scan(ctx, from+1, to, func(e events.Event) error {
		pl, err := r.planFor(e)
		if err != nil {
			return err
		}
		if len(pl.targets) == 0 {
			e.Raw = nil
		} else {
			if pl.decode {
				if err := e.DecodePayload(); err != nil {
					return err
				}
			}
			at := len(b.arena)
			b.arena = append(b.arena, e.Raw...)
			e.Raw = b.arena[at:len(b.arena):len(b.arena)]
		}
		b.evs = append(b.evs, e)
		b.plans = append(b.plans, pl)
		if len(b.evs) < batchEvents {
			return nil
		}
		select {
		case full <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !take() {
			return ctx.Err()
		}
		return nil
	})
	b.err = err
	select {
	case full <- b:
	case <-ctx.Done():
	}
}

// apply is the hot path of following: once per new event.
func (r *Runner) apply(e events.Event) error {
	pl, err := r.planFor(e)
	if err != nil {
		return err
	}
	if pl.decode && len(pl.targets) > 0 {
		if err := e.DecodePayload(); err != nil {
			return err
		}
	}
	return r.applyPlanned(e, pl)
}

// planFor returns e's plan, refusing a version newer than this binary's.
func (r *Runner) planFor(e events.Event) (*plan, error) {
	pl, ok := r.plans[e.Type]
	if !ok {
		var err error
		if pl, err = r.plan(e); err != nil {
			return nil, err
		}
	}
	if e.Version > pl.version {
		return nil, &events.DecodeError{Seq: e.Seq, Type: e.Type, Version: e.Version,
			Err: fmt.Errorf("%w: %s v%d, this binary knows up to v%d", events.ErrNewerVersion, e.Type, e.Version, pl.version)}
	}
	return pl, nil
}

// applyPlanned hands a planned (and, where wanted, decoded) event to its
// projections, then publishes progress and snapshots when due. Loop
// goroutine only.
func (r *Runner) applyPlanned(e events.Event, pl *plan) error {
	for _, i := range pl.targets {
		st := r.states[i]
		if e.Seq <= st.snapSeq {
			continue
		}
		if err := st.p.Apply(e); err != nil {
			return &ApplyError{Projection: st.p.Name(), Seq: e.Seq, Type: e.Type, Err: err}
		}
	}
	// NB: snapshot and retention before publishing progress, so a WaitFor
	// that returns has seen everything this event caused.
	if r.opts.SnapshotEvery > 0 {
		if r.sinceSnap++; r.sinceSnap >= r.opts.SnapshotEvery {
			r.sinceSnap = 0
			if err := r.snapshot(e.Seq); err != nil {
				return err
			}
			if err := r.retain(); err != nil {
				return err
			}
		}
	}
	r.applied.Store(e.Seq)
	if r.nwait.Load() > 0 {
		r.wake(e.Seq)
	}
	return nil
}

// plan works out, once per event type, which projections get it and
// whether its payload is decoded. An unknown type stops the runner: it is
// never skipped silently.
func (r *Runner) plan(e events.Event) (*plan, error) {
	v, ok := events.CurrentVersion(e.Type)
	if !ok {
		return nil, &events.DecodeError{Seq: e.Seq, Type: e.Type, Version: e.Version, Err: events.ErrUnknownType}
	}
	pl := &plan{version: v}
	for i, st := range r.states {
		switch st.p.Wants(e.Type) {
		case Payload:
			pl.decode = true
			pl.targets = append(pl.targets, i)
		case Envelope:
			pl.targets = append(pl.targets, i)
		}
	}
	pl.wants = make([]bool, len(r.states))
	for _, i := range pl.targets {
		pl.wants[i] = true
	}
	r.plans[e.Type] = pl
	return pl, nil
}

// snapshot saves every projection's model as of seq, the last event applied.
func (r *Runner) snapshot(seq uint64) error {
	for _, st := range r.states {
		if st.saved >= seq {
			continue
		}
		name := st.p.Name()
		data, err := st.p.Snapshot()
		if err != nil {
			return fmt.Errorf("snapshot projection %s at %d: %w", name, seq, err)
		}
		if err := r.log.SaveSnapshot(name, seq, data); err != nil {
			if errors.Is(err, events.ErrDiskFull) {
				// NB: a snapshot only shortens the next replay: skip it while
				// the disk is full (the next one tries again), never stop.
				continue
			}
			return fmt.Errorf("snapshot projection %s: %w", name, err)
		}
		st.saved = seq
	}
	r.updateSnapFloor()
	return nil
}

// Ready closes when the replay has caught up with the end of the log as it
// was at Start. It never closes if the runner fails before that.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// Progress returns the last sequence every projection has applied and the
// log's end when catch-up started; /readyz reports them while not ready.
func (r *Runner) Progress() (applied, target uint64) { return r.applied.Load(), r.target.Load() }

// Applied returns the last sequence every projection has applied.
func (r *Runner) Applied() uint64 { return r.applied.Load() }

// Seq returns the last sequence the named projection reflects.
func (r *Runner) Seq(name string) (uint64, bool) {
	for _, st := range r.states {
		if st.p.Name() == name {
			return max(st.snapSeq, r.applied.Load()), true
		}
	}
	return 0, false
}

// WaitFor returns nil once every projection has applied seq (read your
// writes), the runner's error if it stops first (ErrClosed after Close), or
// ctx's error. It is woken by the runner, never by polling.
func (r *Runner) WaitFor(ctx context.Context, seq uint64) error {
	if r.applied.Load() >= seq {
		return nil
	}
	w := &waiter{seq: seq, ch: make(chan struct{})}
	r.wmu.Lock()
	r.waiters[w] = struct{}{}
	r.nwait.Add(1)
	r.wmu.Unlock()
	defer r.dropWaiter(w)
	// NB: re-check after registering: apply stores applied before loading
	// nwait, so either it sees this waiter or this load sees its store.
	if r.applied.Load() >= seq {
		return nil
	}
	select {
	case <-w.ch:
		return nil
	case <-r.done:
		if r.applied.Load() >= seq {
			return nil
		}
		if r.err != nil {
			return fmt.Errorf("wait for event %d: %w", seq, r.err)
		}
		return fmt.Errorf("wait for event %d: %w", seq, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("wait for event %d (applied %d): %w", seq, r.applied.Load(), ctx.Err())
	}
}

func (r *Runner) wake(applied uint64) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	for w := range r.waiters {
		if w.seq <= applied {
			close(w.ch)
			delete(r.waiters, w)
			r.nwait.Add(-1)
		}
	}
}

func (r *Runner) dropWaiter(w *waiter) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, ok := r.waiters[w]; ok {
		delete(r.waiters, w)
		r.nwait.Add(-1)
	}
}

// Done closes when the loop has stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Wait blocks until the loop stops and returns its error: nil after Close or
// the end of Start's ctx, *ApplyError or a log error otherwise.
func (r *Runner) Wait() error {
	<-r.done
	return r.err
}

// Close stops the loop, waits for it (bounded by ctx) and saves a final
// snapshot of every projection, unless the loop failed. It is idempotent and
// returns the first error of closing (the loop's own error is Wait's).
func (r *Runner) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		if !r.started.Load() {
			return
		}
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			r.closeErr = fmt.Errorf("close projections: %w", ctx.Err())
			return
		}
		if r.err != nil {
			return // a failed model is not worth a snapshot
		}
		if err := r.snapshot(r.applied.Load()); err != nil {
			r.closeErr = fmt.Errorf("close projections: %w", err)
		}
	})
	return r.closeErr
}
