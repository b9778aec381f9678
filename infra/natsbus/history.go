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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// The shared history of a cluster (docs/cluster.md): every node publishes
// the records it wrote itself, raw, to the replicated JetStream stream
// HistoryStream, one subject per node; every node imports the other nodes'
// records into its own log (importer.go), so its read models answer for the
// whole cluster.

// HistoryStream is the cluster's history stream. NB: public API; must not
// change.
const HistoryStream = "MCPJUPYTER_HISTORY"

// HistorySubjectPrefix starts every history subject:
// mcpjupyter.history.<node>. NB: public API; must not change.
const HistorySubjectPrefix = "mcpjupyter.history."

// NodeHeader names the node that wrote a history record (its sequence is in
// SeqHeader, "Mcp-Seq"). NB: public API; must not change.
const NodeHeader = "Mcp-Node"

// HistorySubject is the subject node's records are published on.
func HistorySubject(node string) string { return HistorySubjectPrefix + node }

// DefaultHistoryMaxBytes bounds the history stream on each node's disk: the
// oldest records go first. A node away for longer than the stream holds
// misses what was dropped (the importer says so); its own log is whole.
const DefaultHistoryMaxBytes = 8 << 30

// EnsureHistoryStream creates the history stream with replicas, or updates
// its configuration (idempotent: every node calls it at start).
func EnsureHistoryStream(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64) error {
	if replicas < 1 {
		replicas = 1
	}
	if maxBytes <= 0 {
		maxBytes = DefaultHistoryMaxBytes
	}
	cfg := jetstream.StreamConfig{
		Name: HistoryStream, Subjects: []string{HistorySubjectPrefix + ">"}, Storage: jetstream.FileStorage,
		Replicas: replicas, MaxBytes: maxBytes, Discard: jetstream.DiscardOld, Duplicates: 10 * time.Minute,
		Description: "each mcp-jupyter node's own event records, raw (subject per node; headers Mcp-Node, Mcp-Seq)",
	}
	// NB: every node creates it at start, at once: Ensure asks again when
	// the meta leader leaves an equal request unanswered.
	_, err := Ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.CreateOrUpdateStream(ctx, cfg) })
	if err != nil {
		return fmt.Errorf("create stream %s (replicas %d): %w", HistoryStream, replicas, err)
	}
	return nil
}

// HistoryOptions configure a HistoryPublisher.
type HistoryOptions struct {
	// Node is this node's name: only records whose Node it is are
	// published (imported ones are their writer's to publish).
	Node string
	// Window bounds the records published and not yet acknowledged by the
	// stream (default 256).
	Window int
	// AckTimeout bounds the wait for one acknowledgement (default 10s);
	// past it the session stops and resumes from what was acknowledged.
	AckTimeout time.Duration
	// Cursor names the snapshot the last acknowledged sequence is saved
	// under (default "nats-history"), every CursorEvery (default 1024) and
	// on Close.
	Cursor      string
	CursorEvery uint64
	// RetryMin and RetryMax bound the wait before a stopped session
	// resumes (defaults 100ms and 30s), doubling while no progress is made.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

func (o *HistoryOptions) defaults() {
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.Cursor == "" {
		o.Cursor = "nats-history"
	}
	if o.CursorEvery == 0 {
		o.CursorEvery = 1024
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// HistoryPublisher publishes this node's own durable records to the history
// stream, in log order, each acknowledged by JetStream (so stored with the
// stream's replicas) before the cursor passes it.
//
// Exactly once in the stream: each record carries Nats-Msg-Id
// <node>:<seq> (JetStream drops a repeat within its duplicate window), and
// every session starts after the newest record the stream already holds
// for this node, whatever the cursor says, so a cursor saved late (a
// crash) repeats nothing however long the node was down.
type HistoryPublisher struct {
	log  Log
	bus  Bus
	opts HistoryOptions
	subj string

	confirmed atomic.Uint64 // acknowledged by the stream (or not ours): where a session resumes
	savedSeq  atomic.Uint64
	published atomic.Uint64 // records published (counted)
	oversize  atomic.Uint64 // records too large for a NATS message, not published
	started   atomic.Bool

	mu     sync.Mutex
	health health
	// advanced is closed (and replaced) when confirmed moves while someone
	// waits (WaitConfirmed): one channel whatever the number of waiters,
	// so the publisher never blocks on them and nothing grows.
	advanced chan struct{}

	reported map[string]time.Time // loop goroutine only
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	closeMu  sync.Once
	closeErr error
}

// NewHistoryPublisher returns a publisher of log's own records on bus.
func NewHistoryPublisher(log Log, bus Bus, opts HistoryOptions) *HistoryPublisher {
	opts.defaults()
	return &HistoryPublisher{log: log, bus: bus, opts: opts, subj: HistorySubject(opts.Node), done: make(chan struct{}),
		reported: map[string]time.Time{}}
}

// Start loads the cursor and starts following the log; failures later are
// retried (Healthy says so).
func (h *HistoryPublisher) Start(ctx context.Context) error {
	if h.opts.Node == "" {
		return errors.New("start history publisher: no node name")
	}
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("natsbus: history publisher already started")
	}
	seq, _, ok, err := h.log.LoadSnapshot(h.opts.Cursor)
	if err != nil {
		return fmt.Errorf("start history publisher: %w", err)
	}
	if ok {
		h.advance(seq)
		h.savedSeq.Store(seq)
	}
	ctx, h.cancel = context.WithCancel(ctx)
	go h.loop(ctx) // NB: owned: Close cancels it and waits for done
	return nil
}

func (h *HistoryPublisher) loop(ctx context.Context) {
	defer close(h.done)
	delay := h.opts.RetryMin
	for {
		from := h.confirmed.Load()
		err := h.session(ctx)
		if ctx.Err() != nil {
			h.err = h.saveCursor(h.confirmed.Load())
			return
		}
		if h.confirmed.Load() > from {
			delay = h.opts.RetryMin
		}
		h.stopped(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			h.err = h.saveCursor(h.confirmed.Load())
			return
		case <-t.C:
		}
		delay = min(2*delay, h.opts.RetryMax)
	}
}

// pubAck is a record in flight: its sequence and its acknowledgement (nil:
// a record not ours, passed over; it confirms once those before it did).
type pubAck struct {
	seq uint64
	f   jetstream.PubAckFuture
}

// session publishes from the confirmed position until something fails.
func (h *HistoryPublisher) session(ctx context.Context) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	nc, err := h.bus.Connect(nats.Name("mcp-jupyter history "+h.opts.Node), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { cancel(errors.New("the connection to the embedded NATS server closed")) }))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	// NB: the async window of the client is above ours, so a publish never
	// stalls inside the client: the acks channel bounds what is in flight.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*h.opts.Window+2), jetstream.WithPublishAsyncTimeout(h.opts.AckTimeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	stored, err := h.lastStored(sctx, js)
	if err != nil {
		return err
	}
	h.advance(stored)
	maxMsg := nc.MaxPayload()
	acks := make(chan pubAck, h.opts.Window)
	var wg sync.WaitGroup
	wg.Go(func() { h.confirm(sctx, cancel, acks) })
	err = h.log.FollowRaw(sctx, h.confirmed.Load(), func(e events.Event) error {
		if e.Node != h.opts.Node {
			select { // NB: a hint only: a full window skips it, the next record confirms past it
			case acks <- pubAck{seq: e.Seq}:
			default:
			}
			return nil
		}
		rec := events.AppendRecord(nil, e, e.Raw)
		if int64(len(rec))+headerRoom > maxMsg {
			h.oversize.Add(1)
			h.opts.Logger.Error("history: a record is larger than a NATS message; the other nodes will not see it",
				"seq", e.Seq, "type", e.Type, "stream", e.Stream, "bytes", len(rec), "max_payload", maxMsg)
			select {
			case acks <- pubAck{seq: e.Seq}:
			case <-sctx.Done():
				return context.Cause(sctx)
			}
			return nil
		}
		seq := strconv.FormatUint(e.Seq, 10)
		msg := &nats.Msg{Subject: h.subj, Data: rec, Header: nats.Header{
			nats.MsgIdHdr: {h.opts.Node + ":" + seq}, NodeHeader: {h.opts.Node}, SeqHeader: {seq}}}
		f, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(HistoryStream))
		if err != nil {
			return fmt.Errorf("publish record %d: %w", e.Seq, err)
		}
		select {
		case acks <- pubAck{seq: e.Seq, f: f}:
		case <-sctx.Done():
			return context.Cause(sctx)
		}
		h.published.Add(1)
		return nil
	})
	cancel(err)
	wg.Wait()
	if c := context.Cause(sctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// lastStored is the newest sequence of this node the stream holds (0:
// none).
func (h *HistoryPublisher) lastStored(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.AckTimeout)
	defer cancel()
	st, err := js.Stream(ctx, HistoryStream)
	if err != nil {
		return 0, fmt.Errorf("find stream %s: %w", HistoryStream, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, h.subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the newest record of %s: %w", h.subj, err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(SeqHeader), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the newest record of %s has no %s header: %w", h.subj, SeqHeader, err)
	}
	return seq, nil
}

// confirm waits for the acknowledgements in publish order and advances
// confirmed (and the saved cursor) over each.
func (h *HistoryPublisher) confirm(ctx context.Context, cancel context.CancelCauseFunc, acks <-chan pubAck) {
	for {
		var a pubAck
		select {
		case a = <-acks:
		case <-ctx.Done():
			return
		}
		if a.f != nil {
			select {
			case <-a.f.Ok():
			case err := <-a.f.Err():
				cancel(fmt.Errorf("record %d not stored in %s: %w", a.seq, HistoryStream, err))
				return
			case <-ctx.Done():
				return
			}
		}
		h.advance(a.seq)
		if seq := h.confirmed.Load(); seq-h.savedSeq.Load() >= h.opts.CursorEvery {
			if err := h.saveCursor(seq); err != nil {
				cancel(err)
				return
			}
		}
	}
}

func (h *HistoryPublisher) saveCursor(seq uint64) error {
	if seq <= h.savedSeq.Load() {
		return nil
	}
	if err := h.log.SaveSnapshot(h.opts.Cursor, seq, nil); err != nil {
		return fmt.Errorf("save history cursor at %d: %w", seq, err)
	}
	h.savedSeq.Store(seq)
	return nil
}

// stopped records a failure; logged once per minute at most.
func (h *HistoryPublisher) stopped(err error, delay time.Duration) {
	now := time.Now()
	h.mu.Lock()
	h.health = h.health.failed(err, now)
	h.health.retryAt = now.Add(delay)
	h.mu.Unlock()
	if recentlyLogged(h.reported, "stopped", now) {
		return
	}
	h.opts.Logger.Error("history publisher stopped; retrying", "err", err, "after_seq", h.confirmed.Load(), "retry_in", delay.String())
}

// Healthy returns nil while the publisher runs (or retries within its
// first backoff), else what stopped it.
func (h *HistoryPublisher) Healthy() error {
	if !h.started.Load() {
		return ErrNotStarted
	}
	select {
	case <-h.done:
		return ErrClosed
	default:
	}
	h.mu.Lock()
	hl := h.health
	h.mu.Unlock()
	if hl.err == nil {
		return nil
	}
	return fmt.Errorf("history publisher stopped after record %d for %s (%d retries): %w",
		h.confirmed.Load(), time.Since(hl.since).Round(time.Millisecond), hl.attempts, hl.err)
}

// Confirmed is the log sequence up to which this node's records are in the
// history stream.
func (h *HistoryPublisher) Confirmed() uint64 { return h.confirmed.Load() }

// advance moves confirmed to seq (never back) and wakes the waiters.
func (h *HistoryPublisher) advance(seq uint64) {
	if seq <= h.confirmed.Load() {
		return
	}
	h.mu.Lock()
	h.confirmed.Store(seq)
	if h.advanced != nil {
		close(h.advanced)
		h.advanced = nil
	}
	h.mu.Unlock()
}

// WaitConfirmed returns once every record of this node up to log sequence
// seq is acknowledged by the history stream (stored with its replicas), so
// a node that takes a kernel over sees it; or ctx's error, or ErrClosed
// once the publisher stopped. It never blocks the publisher.
//
// In a cluster the kernel actor sends an execute_request only after its
// ExecutionStarted passed here (docs/cluster.md, "Losing a node: takeover", "At most
// once").
func (h *HistoryPublisher) WaitConfirmed(ctx context.Context, seq uint64) error {
	for {
		h.mu.Lock()
		if h.confirmed.Load() >= seq {
			h.mu.Unlock()
			return nil
		}
		if h.advanced == nil {
			h.advanced = make(chan struct{})
		}
		ch := h.advanced
		h.mu.Unlock()
		select {
		case <-ch:
		case <-h.done:
			if h.confirmed.Load() >= seq {
				return nil
			}
			return fmt.Errorf("wait for record %d in %s: %w", seq, HistoryStream, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("wait for record %d in %s (acknowledged up to %d): %w", seq, HistoryStream, h.confirmed.Load(), ctx.Err())
		}
	}
}

// Published counts the records published (repeats after a failure
// included); Oversize the records too large for a NATS message.
func (h *HistoryPublisher) Published() uint64 { return h.published.Load() }
func (h *HistoryPublisher) Oversize() uint64  { return h.oversize.Load() }

// LogFloor implements projections.Floor: retention keeps every record
// after the saved cursor (a restart resumes there).
func (h *HistoryPublisher) LogFloor() (uint64, bool) {
	if !h.started.Load() {
		return 0, true
	}
	return h.savedSeq.Load() + 1, true
}

// Close stops the publisher (bounded by ctx) and saves the cursor.
func (h *HistoryPublisher) Close(ctx context.Context) error {
	h.closeMu.Do(func() {
		if !h.started.Load() {
			return
		}
		h.cancel()
		select {
		case <-h.done:
			h.closeErr = h.err
		case <-ctx.Done():
			h.closeErr = fmt.Errorf("close history publisher: %w", ctx.Err())
		}
	})
	return h.closeErr
}
