package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// SeqHeader is the header carrying an event's sequence. NB: public API;
// must not change.
const SeqHeader = "Mcp-Seq"

// ErrClosed: the publisher was closed.
var ErrClosed = errors.New("natsbus: closed")

// Log is what the publisher needs from the event log (infra/eventlog
// implements it). FollowRaw calls fn for every event after `after`, in
// order, then waits for new ones until ctx ends; Raw aliases the log's
// buffers during fn. The snapshot pair stores the publisher's cursor.
type Log interface {
	FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error
	SaveSnapshot(name string, seq uint64, data []byte) error
	LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error)
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
	// Logger receives the publisher's messages (default: discard).
	Logger *slog.Logger
}

// Publisher publishes every durable event of the log on NATS.
type Publisher struct {
	log  Log
	nc   *nats.Conn
	opts PublisherOptions

	published atomic.Uint64
	saved     uint64        // loop goroutine, then Close
	savedSeq  atomic.Uint64 // saved, for LogFloor
	started   atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
	err       error
	closeOnce sync.Once
	closeErr  error
}

// NewPublisher returns a publisher of log's events on nc.
func NewPublisher(log Log, nc *nats.Conn, opts PublisherOptions) *Publisher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CursorEvery == 0 {
		opts.CursorEvery = 1024
	}
	return &Publisher{log: log, nc: nc, opts: opts, done: make(chan struct{})}
}

// Start loads the cursor and starts following the log. The loop stops when
// ctx ends, on Close, or on the first error (see Wait).
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
	p.saved = after
	p.savedSeq.Store(after)
	ctx, p.cancel = context.WithCancel(ctx)
	go p.loop(ctx, after)
	return nil
}

func (p *Publisher) loop(ctx context.Context, after uint64) {
	defer close(p.done)
	err := p.log.FollowRaw(ctx, after, p.publish)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	if err != nil {
		p.opts.Logger.Error("nats publisher stopped", "err", err)
	}
	p.err = err
}

func (p *Publisher) publish(e events.Event) error {
	data, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("publish event %d: %w", e.Seq, err)
	}
	msg := &nats.Msg{Subject: events.Subject(e), Data: data, Header: nats.Header{}}
	seq := strconv.FormatUint(e.Seq, 10)
	msg.Header[SeqHeader] = []string{seq}
	msg.Header[nats.MsgIdHdr] = []string{seq} // JetStream deduplicates republished events
	if err := p.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("publish event %d on %s: %w", e.Seq, msg.Subject, err)
	}
	p.published.Store(e.Seq)
	if p.opts.Cursor != "" && e.Seq-p.saved >= p.opts.CursorEvery {
		return p.saveCursor(e.Seq)
	}
	return nil
}

func (p *Publisher) saveCursor(seq uint64) error {
	// NB: flush first, so the cursor never runs ahead of what NATS has.
	if err := p.nc.Flush(); err != nil {
		return fmt.Errorf("save nats cursor at %d: flush: %w", seq, err)
	}
	if err := p.log.SaveSnapshot(p.opts.Cursor, seq, nil); err != nil {
		return fmt.Errorf("save nats cursor: %w", err)
	}
	p.saved = seq
	p.savedSeq.Store(seq)
	return nil
}

// LogFloor implements projections.Floor: retention keeps every event after
// the saved cursor, since a restart resumes publishing there (without a
// Cursor, every event not yet published). Before Start
// it holds the whole log (the cursor is not loaded yet).
func (p *Publisher) LogFloor() (uint64, bool) {
	if !p.started.Load() {
		return 0, true
	}
	if p.opts.Cursor == "" {
		return p.published.Load() + 1, true // NB: no cursor: a restart starts at the end
	}
	return p.savedSeq.Load() + 1, true
}

// Published returns the sequence of the last event published.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// Done closes when the loop has stopped.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Wait blocks until the loop stops and returns its error (nil after Close
// or the end of Start's ctx).
func (p *Publisher) Wait() error {
	<-p.done
	return p.err
}

// Close stops the loop, waits for it (bounded by ctx), flushes what was
// published and saves the cursor. It is idempotent.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		if !p.started.Load() {
			return
		}
		p.cancel()
		select {
		case <-p.done:
		case <-ctx.Done():
			p.closeErr = fmt.Errorf("close nats publisher: %w", ctx.Err())
			return
		}
		if err := flush(ctx, p.nc); err != nil {
			p.closeErr = fmt.Errorf("close nats publisher: flush: %w", err)
			return
		}
		if seq := p.published.Load(); p.opts.Cursor != "" && seq > p.saved {
			if err := p.log.SaveSnapshot(p.opts.Cursor, seq, nil); err != nil {
				p.closeErr = fmt.Errorf("close nats publisher: %w", err)
			}
			p.saved = seq
			p.savedSeq.Store(seq)
		}
	})
	return p.closeErr
}
