package actors

import (
	"context"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Written remembers the newest append an actor put in the log's write path
// (AppendAsync), so that an actor rebuilt after a crash reads a log that
// holds it: readers see only durable events, and an append still in the
// write path would otherwise be missing from the recovered state (a
// started execution sent again, an ended one resumed). The actors of one
// kernel share one, which outlives their instances. Safe for concurrent
// use; the zero value is ready. A nil Written tracks nothing (an actor
// wired alone, as a benchmark of one scheduler does, has no partner whose
// appends it must wait for).
type Written struct {
	mu   sync.Mutex
	last *events.Pending
	seq  uint64
}

// Track records p if it is the newest append seen.
func (w *Written) Track(p *events.Pending) {
	if w == nil {
		return
	}
	evs := p.Events()
	if len(evs) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := evs[len(evs)-1].Seq; s > w.seq {
		w.last, w.seq = p, s
	}
}

// Wait returns once every append tracked so far is durable (the log makes
// appends durable in sequence order, so the newest covers the rest), or
// with the error that kept it from being so.
func (w *Written) Wait(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	p := w.last
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	_, err := p.Wait(ctx)
	return err
}
