package actors

import (
	"context"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Log is what actors need from the event log (infra/eventlog implements it).
//
// Append returns only when the events are durable, with their envelopes
// filled in; on error nothing of the call may be treated as done. ReadStream
// calls fn for each event of the stream with seq > after, in order, with
// payloads decoded; an error from fn ends the read and is returned.
//
// AppendAsync puts drafts in the log's write path and returns at once; the
// Pending settles when they are durable (see events.Pending).
type Log interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
	AppendAsync(ctx context.Context, drafts ...events.Draft) (*events.Pending, error)
	ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error
}

// Appender is the part of the log an actor's append step needs.
type Appender interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
}

// Persist is the append step of decide → append → apply: it makes drafts
// durable (waiting at most timeout) and folds the events the log returns
// into state. On error nothing is applied and state is returned unchanged.
func Persist[S any](log Appender, timeout time.Duration, state S, apply func(S, events.Event) S, drafts []events.Draft) (S, error) {
	if len(drafts) == 0 {
		return state, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	evs, err := log.Append(ctx, drafts...)
	if err != nil {
		return state, err
	}
	for _, e := range evs {
		state = apply(state, e)
	}
	return state, nil
}
