package events

import (
	"context"
	"fmt"
	"sync"
)

// Pending is an append in the log's write path: its events have their
// sequences (in the order the write-ahead log holds them) but may not be
// durable yet. Events written later become durable only with or after it,
// so a later event known durable makes this one durable too.
//
// A caller may act on Events at once where a crash before durability is
// recovered from (the actors' sends to a kernel); anything an agent or a
// person is told must wait for Durable.
type Pending struct {
	evs     []Event
	durable chan struct{}
	once    sync.Once
	err     error
}

// NewPending returns a pending append of evs (the log's side).
func NewPending(evs []Event) *Pending {
	return &Pending{evs: evs, durable: make(chan struct{})}
}

// Settle marks the append durable (err nil) or failed; the first call
// counts (the log's side).
func (p *Pending) Settle(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.durable)
	})
}

// Events are the appended events, envelopes filled in.
func (p *Pending) Events() []Event { return p.evs }

// Durable is closed once the append is durable or failed (then Err says).
func (p *Pending) Durable() <-chan struct{} { return p.durable }

// Err is the append's outcome once Durable is closed (nil: durable).
func (p *Pending) Err() error {
	select {
	case <-p.durable:
		return p.err
	default:
		return nil
	}
}

// Wait returns the events once durable, or the error that kept them from
// becoming so. NB: a ctx that ends first says nothing of the outcome.
func (p *Pending) Wait(ctx context.Context) ([]Event, error) {
	select {
	case <-p.durable:
		if p.err != nil {
			return nil, p.err
		}
		return p.evs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the append to be durable: %w", ctx.Err())
	}
}
