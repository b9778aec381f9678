package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// SeqHeader is the header carrying an event's sequence. NB: public API;
// must not change.
const SeqHeader = "Mcp-Seq"

// ErrClosed: the publisher was closed.
var ErrClosed = errors.New("natsbus: closed")

// ErrNotStarted: the publisher has not been started (Healthy).
var ErrNotStarted = errors.New("natsbus: publisher not started")

// Log is what the publisher needs from the event log (infra/eventlog
// implements it). FollowRaw calls fn for every event after `after`, in
// order, then waits for new ones until ctx ends; Raw aliases the log's
// buffers during fn. The snapshot pair stores the publisher's cursor.
type Log interface {
	FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error
	SaveSnapshot(name string, seq uint64, data []byte) error
	LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error)
}

// Bus is what the publisher needs from the NATS server (*Server implements
// it): a fresh connection for each session, and the largest message it may
// publish. Both are safe to call from any goroutine.
type Bus interface {
	Connect(opts ...nats.Option) (*nats.Conn, error)
	MaxMessage() int64
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// After: publish the events with seq > After, unless Cursor has a saved
	// position, which wins.
	After uint64
	// Cursor, if set, names the snapshot the last published sequence is
	// saved under (every CursorEvery events and on Close), so a restart
	// resumes there.
	Cursor      string
	CursorEvery uint64 // default 1024
	// RetryMin and RetryMax bound the wait before a stopped publisher
	// reconnects and resumes (defaults 100ms and 30s). The wait doubles
	// after each attempt that made no progress.
	RetryMin, RetryMax time.Duration
	// Logger receives the publisher's messages (default: discard). A
	// failure is logged once per kind per minute, not per attempt.
	Logger *slog.Logger
	// Node, in a cluster, is this node's name: only records it wrote are
	// published; records imported from other nodes (history.go) are
	// their writer's to publish, so none is seen twice. "" publishes all.
	Node string
}

// Publisher publishes every durable event of the log on NATS.
//
// It owns its own connection. Any failure (the connection closed, a flush
// timing out, the cursor not saved, the log unreadable) stops the current
// session: Healthy reports it, and the publisher reconnects after a backoff
// and resumes after the last event the server confirmed, so nothing is
// skipped. Events accepted but unconfirmed when the session failed are
// published again (at least once: subscribers deduplicate by Mcp-Seq).
type Publisher struct {
	log  Log
	bus  Bus
	opts PublisherOptions

	published atomic.Uint64 // accepted by the connection
	confirmed atomic.Uint64 // confirmed by the server (a flush): where a session resumes
	savedSeq  atomic.Uint64 // saved cursor: written by confirm during a session, by the loop outside one
	refs      atomic.Uint64 // events sent as references
	started   atomic.Bool

	mu     sync.Mutex // guards health
	health health

	// Owned by the loop goroutine (then by nobody once done is closed).
	maxMsg   int64
	reported map[string]time.Time // failure kind -> last logged
	muted    map[string]int       // failure kind -> failures not logged since

	cancel    context.CancelFunc
	done      chan struct{}
	err       error
	closeOnce sync.Once
	closeErr  error
}

// health is the publisher's state as Healthy reports it.
type health struct {
	err      error     // nil while a session runs
	since    time.Time // when the publisher stopped
	attempts int       // reconnections tried since
	retryAt  time.Time // the next attempt
}

// failed is h after a failure err at now (the first since a session ran
// starts the outage; later ones count as attempts).
func (h health) failed(err error, now time.Time) health {
	if h.err == nil {
		h.since = now
	} else {
		h.attempts++
	}
	h.err = err
	return h
}

// recentlyLogged reports whether kind was logged less than a minute before
// now; if not, it notes now as kind's last log.
func recentlyLogged(reported map[string]time.Time, kind string, now time.Time) bool {
	if last, ok := reported[kind]; ok && now.Sub(last) < time.Minute {
		return true
	}
	reported[kind] = now
	return false
}

// NewPublisher returns a publisher of log's events on bus.
func NewPublisher(log Log, bus Bus, opts PublisherOptions) *Publisher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CursorEvery == 0 {
		opts.CursorEvery = 1024
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	return &Publisher{log: log, bus: bus, opts: opts, done: make(chan struct{}),
		reported: map[string]time.Time{}, muted: map[string]int{}}
}

// failure is a stopped session: what the publisher was doing (its kind, the
// unit of log rate limiting) and why.
type failure struct {
	kind string
	err  error
}

func (f *failure) Error() string { return f.kind + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// session is one connection's run.
type session struct {
	nc     *nats.Conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	kick   chan struct{} // cap 1: events were published since the last flush
}

// failed names a session's failure. A publish or flush that failed because
// the connection closed under it is the lost connection, not a kind of its
// own: the operator sees one "connection" line whichever call noticed first.
func (s *session) failed(kind string, err error) *failure {
	if s.nc.IsClosed() || errors.Is(err, nats.ErrConnectionClosed) {
		kind = "connection"
	}
	return &failure{kind: kind, err: err}
}

// Start loads the cursor, connects and starts following the log. The loop
// runs until ctx ends or Close; failures on the way are retried (Healthy).
func (p *Publisher) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("natsbus: publisher already started")
	}
	after := p.opts.After
	if p.opts.Cursor != "" {
		seq, _, ok, err := p.log.LoadSnapshot(p.opts.Cursor)
		if err != nil {
			return fmt.Errorf("start nats publisher: %w", err)
		}
		if ok {
			after = seq
		}
	}
	p.published.Store(after)
	p.confirmed.Store(after)
	p.savedSeq.Store(after)
	ctx, p.cancel = context.WithCancel(ctx)
	s, err := p.connect(ctx)
	if err != nil {
		p.cancel()
		close(p.done)
		return fmt.Errorf("start nats publisher: %w", err)
	}
	go p.loop(ctx, s)
	return nil
}

// connect opens a session. Its ctx ends when the connection closes, for
// whatever reason, so an idle session notices too.
func (p *Publisher) connect(ctx context.Context) (*session, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	nc, err := p.bus.Connect(nats.Name("mcp-jupyter publisher"),
		nats.NoReconnect(), // NB: a lost connection ends the session; the next resumes from what was confirmed
		nats.ClosedHandler(func(nc *nats.Conn) {
			why := nc.LastError()
			if why == nil {
				why = nats.ErrConnectionClosed
			}
			cancel(fmt.Errorf("the connection to the embedded NATS server closed: %w", why))
		}))
	if err != nil {
		cancel(err)
		return nil, &failure{kind: "connect", err: err}
	}
	p.maxMsg = min(p.bus.MaxMessage(), nc.MaxPayload())
	return &session{nc: nc, ctx: sctx, cancel: cancel, kick: make(chan struct{}, 1)}, nil
}

func (p *Publisher) loop(ctx context.Context, s *session) {
	defer close(p.done)
	delay := p.opts.RetryMin
	for {
		from := p.confirmed.Load()
		err := p.follow(s)
		if ctx.Err() != nil {
			p.err = p.finish(s)
			return
		}
		s.cancel(nil)
		s.nc.Close()
		p.published.Store(p.confirmed.Load()) // NB: unconfirmed events go again
		if p.confirmed.Load() > from {
			delay = p.opts.RetryMin // it made progress: not a poison loop
		}
		p.stopped(err)
		for s = nil; s == nil; {
			p.waiting(delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				p.err = p.saveOnExit()
				return
			case <-t.C:
			}
			delay = min(2*delay, p.opts.RetryMax)
			if s, err = p.connect(ctx); err != nil {
				if ctx.Err() != nil {
					p.err = p.saveOnExit()
					return
				}
				p.stopped(err)
			}
		}
		p.resumed()
	}
}

// follow publishes from the confirmed position until the session fails
// (or the publisher stops), with confirm beside it.
func (p *Publisher) follow(s *session) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // NB: owned: ends with the session's ctx, awaited below
		defer wg.Done()
		p.confirm(s)
	}()
	err := p.log.FollowRaw(s.ctx, p.confirmed.Load(), func(e events.Event) error { return p.publish(s, e) })
	var f *failure
	switch {
	case err == nil:
		err = &failure{kind: "read log", err: errors.New("the log follower ended")}
	case errors.As(err, &f):
	case s.ctx.Err() == nil:
		err = &failure{kind: "read log", err: err}
	}
	s.cancel(err) // ends confirm; the first cause wins
	wg.Wait()
	cause := context.Cause(s.ctx)
	if errors.As(cause, &f) {
		return f
	}
	return &failure{kind: "connection", err: cause}
}

// confirm flushes the connection whenever events were published since the
// last flush, and advances confirmed to what the flush covered. It runs
// beside publishing, so a round trip to the server never delays the next
// event; a publisher that goes idle is confirmed right away, so losing its
// connection then repeats nothing.
func (p *Publisher) confirm(s *session) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
		seq := p.published.Load()
		if err := flush(s.ctx, s.nc); err != nil {
			s.cancel(s.failed("flush", fmt.Errorf("confirm event %d: %w", seq, err)))
			return
		}
		p.confirmed.Store(seq)
		if p.opts.Cursor != "" && seq-p.savedSeq.Load() >= p.opts.CursorEvery {
			if err := p.saveCursor(seq); err != nil {
				s.cancel(err)
				return
			}
		}
	}
}

// headerRoom is what the headers of an event take at most (Mcp-Seq and
// Nats-Msg-Id, or Mcp-Ref); the body must fit in the rest.
const headerRoom = 512

func (p *Publisher) publish(s *session, e events.Event) error {
	if p.opts.Node != "" && e.Node != p.opts.Node {
		p.published.Store(e.Seq) // NB: passed over; the next flush confirms past it
		select {
		case s.kick <- struct{}{}:
		default:
		}
		return nil
	}
	data, encodeErr := e.MarshalJSON()
	msg := &nats.Msg{Subject: events.Subject(e), Data: data, Header: nats.Header{}}
	seq := strconv.FormatUint(e.Seq, 10)
	msg.Header[SeqHeader] = []string{seq}
	msg.Header[nats.MsgIdHdr] = []string{seq} // JetStream deduplicates republished events
	if p.opts.Node != "" {
		// NB: in a cluster every node publishes into the one events
		// stream, each with its own sequence: a bare seq would make node
		// B's event 5 a duplicate of node A's.
		msg.Header[nats.MsgIdHdr] = []string{p.opts.Node + ":" + seq}
	}
	if encodeErr != nil || int64(len(data))+headerRoom > p.maxMsg {
		// NB: NATS refuses it (max_payload, the stream's max message
		// size), or it does not encode: a reference instead, or the bus
		// stops at this event.
		var err error
		if msg.Data, err = referenceTo(e, len(data), encodeErr); err != nil {
			return &failure{kind: "encode", err: err}
		}
		msg.Header[RefHeader] = []string{RefPath(e.Seq)}
		p.refs.Add(1)
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		return s.failed("publish", fmt.Errorf("publish event %d on %s: %w", e.Seq, msg.Subject, err))
	}
	p.published.Store(e.Seq)
	select {
	case s.kick <- struct{}{}:
	default: // confirm is flushing; it flushes again after
	}
	return nil
}

// saveCursor saves a confirmed position. NB: never one ahead of what NATS
// has: a restart resumes there.
func (p *Publisher) saveCursor(seq uint64) error {
	if err := p.log.SaveSnapshot(p.opts.Cursor, seq, nil); err != nil {
		return &failure{kind: "save cursor", err: fmt.Errorf("save nats cursor at %d: %w", seq, err)}
	}
	p.savedSeq.Store(seq)
	return nil
}

// finish ends the last session on shutdown: flush, save the cursor, close.
func (p *Publisher) finish(s *session) error {
	defer s.nc.Close()
	defer s.cancel(nil)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	if err := s.nc.FlushWithContext(ctx); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return p.saveOnExit() // the session had failed: what was confirmed
		}
		return errors.Join(fmt.Errorf("close nats publisher: flush: %w", err), p.saveOnExit())
	}
	p.confirmed.Store(p.published.Load())
	return p.saveOnExit()
}

// saveOnExit saves what was confirmed when the publisher stops while it
// is down (no connection to flush).
func (p *Publisher) saveOnExit() error {
	if seq := p.confirmed.Load(); p.opts.Cursor != "" && seq > p.savedSeq.Load() {
		if err := p.saveCursor(seq); err != nil {
			return fmt.Errorf("close nats publisher: %w", err)
		}
	}
	return nil
}

// stopped records a failure and logs it, once per kind per minute.
func (p *Publisher) stopped(err error) {
	now := time.Now()
	p.mu.Lock()
	p.health = p.health.failed(err, now)
	since, attempts := p.health.since, p.health.attempts
	p.mu.Unlock()
	kind := "other"
	var f *failure
	if errors.As(err, &f) {
		kind = f.kind
	}
	if recentlyLogged(p.reported, kind, now) {
		p.muted[kind]++
		return
	}
	p.opts.Logger.Error("nats publisher stopped; retrying", "kind", kind, "err", err,
		"after_seq", p.confirmed.Load(), "down_for", now.Sub(since).Round(time.Millisecond).String(),
		"attempts", attempts, "not_logged_since_last", p.muted[kind])
	p.muted[kind] = 0
}

func (p *Publisher) waiting(delay time.Duration) {
	p.mu.Lock()
	p.health.retryAt = time.Now().Add(delay)
	p.mu.Unlock()
}

func (p *Publisher) resumed() {
	p.mu.Lock()
	since, attempts := p.health.since, p.health.attempts
	p.health = health{}
	p.mu.Unlock()
	if last, ok := p.reported["resumed"]; ok && time.Since(last) < time.Minute {
		return // NB: a failure that recurs must not log a line per recovery either
	}
	p.reported["resumed"] = time.Now()
	p.opts.Logger.Info("nats publisher resumed", "after_seq", p.confirmed.Load(),
		"down_for", time.Since(since).Round(time.Millisecond).String(), "attempts", attempts+1)
}

// Healthy returns nil while the publisher runs, and otherwise what stopped
// it, since when, and when it retries (for /readyz).
func (p *Publisher) Healthy() error {
	if !p.started.Load() {
		return ErrNotStarted
	}
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	p.mu.Lock()
	h := p.health
	p.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("publisher stopped after event %d for %s (%d retries, next in %s): %w",
		p.confirmed.Load(), time.Since(h.since).Round(time.Millisecond), h.attempts,
		max(time.Until(h.retryAt), 0).Round(time.Millisecond), h.err)
}

// LogFloor implements projections.Floor: retention keeps every event after
// the saved cursor, since a restart resumes publishing there (without a
// Cursor, every event not yet confirmed). Before Start it holds the whole
// log (the cursor is not loaded yet).
func (p *Publisher) LogFloor() (uint64, bool) {
	if !p.started.Load() {
		return 0, true
	}
	if p.opts.Cursor == "" {
		return p.confirmed.Load() + 1, true // NB: no cursor: a restart starts at the end
	}
	return p.savedSeq.Load() + 1, true
}

// Published returns the sequence of the last event published.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// Confirmed returns the sequence of the last event the server confirmed.
func (p *Publisher) Confirmed() uint64 { return p.confirmed.Load() }

// References returns how many events went out as references (too large
// for NATS).
func (p *Publisher) References() uint64 { return p.refs.Load() }

// Done closes when the loop has stopped.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Wait blocks until the loop stops and returns the error of its last flush
// or cursor save (failures before are retried, not returned).
func (p *Publisher) Wait() error {
	<-p.done
	return p.err
}

// Close stops the loop and waits for it (bounded by ctx); the loop flushes
// what was published and saves the cursor. It is idempotent.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		if !p.started.Load() {
			return
		}
		p.cancel()
		select {
		case <-p.done:
			p.closeErr = p.err
		case <-ctx.Done():
			p.closeErr = fmt.Errorf("close nats publisher: %w", ctx.Err())
		}
	})
	return p.closeErr
}
