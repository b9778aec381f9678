package ws

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
)

// Subscriptions: one kernel's durable events, for an edge in this process
// (the Jupyter channels WebSocket, infra/jupyterapi) rather than a /ws
// client. A subscription rides the same fan-out as /ws clients: the hub
// follows the log once for all of them and offers each event to the
// subscription's bounded queue without blocking; what the subscriber does
// with it (and how slowly) is its own business.

// ErrSlowSubscriber: a subscription fell behind past its queue's bound and
// was ended (the hub never waits for it). Subscribe again after the last
// seq you handled (SlowError.After) to resume with nothing lost.
var ErrSlowSubscriber = errors.New("ws: subscriber fell behind")

// SlowError is the ErrSlowSubscriber a subscription ends with.
type SlowError struct {
	Kernel string
	After  uint64 // the last seq Next returned
	Max    int    // the bound it passed (messages)
}

func (e *SlowError) Error() string {
	return fmt.Sprintf("ws: subscriber of kernel %s fell behind by more than %d events: subscribe again after seq %d", e.Kernel, e.Max, e.After)
}

func (e *SlowError) Is(target error) bool { return target == ErrSlowSubscriber }

// Subscription defaults.
const (
	DefaultSubscriptionMessages = 4096
	DefaultSubscriptionBytes    = 16 << 20
	// catchUpPage bounds the events one Next reads from the log.
	catchUpPage = 1024
)

// SubscribeOptions configure a subscription.
type SubscribeOptions struct {
	// After: deliver the kernel's events with seq > After (0: from the
	// start of what is retained). Ignored with Live.
	After uint64
	// Live: deliver only events appended from now on.
	Live bool
	// QueueMessages and QueueBytes bound the live events waiting for Next.
	QueueMessages int
	QueueBytes    int
}

// Subscription is one kernel's durable events in seq order, no gap and no
// duplicate: what is recorded already (from the backlog read model, from
// the log for what it no longer holds), then the live fan-out. It is
// owned by one goroutine (Next is not safe for concurrent use); Close it
// when done.
type Subscription struct {
	h        *Hub
	c        *client
	kernel   string
	cursor   uint64 // the last seq Next returned
	liveFrom uint64 // the fan-out feeds it after this seq
	max      int
	batch    []frame
	err      error
}

// Subscribe starts a subscription to kernel's events (kernel in canonical
// form). It fails when the hub is closed or not started, when After is
// past the log's end, or when the events after After are no longer
// retained (and the backlog does not hold them): the error says which.
// Access is the caller's to check.
func (h *Hub) Subscribe(kernel string, opts SubscribeOptions) (*Subscription, error) {
	if kernel == "" {
		return nil, errors.New("ws: subscribe: no kernel")
	}
	if opts.QueueMessages <= 0 {
		opts.QueueMessages = DefaultSubscriptionMessages
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = DefaultSubscriptionBytes
	}
	if !opts.Live {
		if last := h.log.Last(); opts.After > last {
			return nil, fmt.Errorf("ws: subscribe after seq %d: past the last event %d", opts.After, last)
		}
		if err := h.log.CheckAfter(opts.After); err != nil && !h.backlogCovers(kernel, opts.After) {
			return nil, fmt.Errorf("ws: subscribe after seq %d: %w", opts.After, err)
		}
	}
	c := &client{kernel: kernel, view: viewer{all: true}, q: newQueue(opts.QueueMessages, opts.QueueBytes),
		revoked: make(chan struct{}), sub: true}
	if !opts.Live {
		c.floor.Store(opts.After + 1) // NB: before joining: retention keeps what it has yet to read
	}
	h.mu.Lock()
	if h.closed || h.ctx == nil {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.clients[c] = struct{}{}
	h.idx.add(c)
	liveFrom := h.last
	h.mu.Unlock()
	s := &Subscription{h: h, c: c, kernel: kernel, cursor: opts.After, liveFrom: liveFrom, max: opts.QueueMessages}
	if opts.Live {
		s.cursor = liveFrom
	}
	if s.cursor >= liveFrom {
		c.floor.Store(0) // NB: nothing to catch up (the fan-out may lag the log: frames up to the cursor are skipped)
	}
	return s, nil
}

// Cursor returns the seq the subscription delivers after (its cursor before
// the first Next): with Live, the last event recorded when it began.
func (s *Subscription) Cursor() uint64 { return s.cursor }

// Next returns the next events in order (at least one), waiting for them
// until ctx ends. It ends with ctx's error, ErrClosed (the hub closed), a
// *SlowError (fell behind; resume after Cursor), or a log read error; once
// it returned an error other than ctx's it returns the same again. The
// events' Raw is the subscriber's own; Payload is not decoded.
func (s *Subscription) Next(ctx context.Context) ([]events.Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for s.cursor < s.liveFrom {
		evs, err := s.catchUp(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.err = err
			}
			return nil, err
		}
		if len(evs) > 0 {
			return evs, nil
		}
	}
	s.c.floor.Store(0) // caught up: the fan-out feeds it from here
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.h.ctx.Done():
			s.err = ErrClosed
			return nil, s.err
		case <-s.c.q.ready:
		}
		var over bool
		s.batch, over = s.c.q.take(s.batch)
		out := make([]events.Event, 0, len(s.batch))
		for _, f := range s.batch {
			if f.seq <= s.cursor {
				continue
			}
			out = append(out, *f.ev)
			s.cursor = f.seq
		}
		clear(s.batch)
		if over {
			// NB: the queue was emptied when it overflowed: what came
			// before is delivered, what follows is for a new subscription.
			s.err = &SlowError{Kernel: s.kernel, After: s.cursor, Max: s.max}
			if len(out) > 0 {
				return out, nil
			}
			return nil, s.err
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}

// catchUp returns the next recorded events in (cursor, liveFrom]: the
// backlog's part when it holds them all, else a page from the log.
func (s *Subscription) catchUp(ctx context.Context) ([]events.Event, error) {
	h := s.h
	limit := s.liveFrom
	var held []backlog.Entry
	if bl := h.opts.Backlog; bl != nil && h.opts.BacklogWait != nil && h.opts.BacklogWait(ctx, s.liveFrom) == nil {
		ents, complete, _ := bl.Since(s.kernel, s.cursor)
		held = ents
		switch {
		case complete:
			limit = s.cursor
		case len(ents) > 0:
			limit = min(limit, ents[0].Seq-1)
		}
	}
	if limit > s.cursor {
		h.logReads.Add(1)
		var out []events.Event
		err := h.log.ReadKernel(ctx, s.kernel, s.cursor, func(e events.Event) error {
			if e.Seq > limit || len(out) >= catchUpPage {
				return errStop
			}
			out = append(out, own(e))
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("ws: read kernel %s after seq %d: %w", s.kernel, s.cursor, err)
		}
		if len(out) > 0 {
			s.cursor = out[len(out)-1].Seq
			return out, nil
		}
		// NB: nothing of this kernel up to limit: skip ahead.
		s.cursor = limit
		return nil, nil
	}
	out := make([]events.Event, 0, len(held))
	for _, ent := range held {
		if ent.Seq <= s.cursor || ent.Seq > s.liveFrom {
			continue
		}
		out = append(out, own(ent.Event()))
	}
	s.cursor = s.liveFrom
	return out, nil
}

// own returns e with a Raw of its own and no decoded payload (a reader's
// Raw aliases its record).
func own(e events.Event) events.Event {
	e.Raw = append([]byte(nil), e.Raw...)
	e.Payload = nil
	return e
}

// Close ends the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	s.h.drop(s.c)
	s.h.mu.Unlock()
	if s.err == nil {
		s.err = ErrClosed
	}
}
