package actors

import (
	"context"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Recover folds one stream through apply, starting from state (a snapshot
// or the zero state) and the events after seq. It returns the state and the
// sequence of the last event applied.
func Recover[S any](ctx context.Context, log Log, stream string, state S, seq uint64, apply func(S, events.Event) S) (S, uint64, error) {
	err := log.ReadStream(ctx, stream, seq, func(e events.Event) error {
		state = apply(state, e)
		seq = e.Seq
		return nil
	})
	if err != nil {
		return state, seq, fmt.Errorf("recover %s: %w", stream, err)
	}
	return state, seq, nil
}
