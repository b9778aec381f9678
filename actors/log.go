package actors

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Log is what actors need from the event log (infra/eventlog implements it).
//
// Append returns only when the events are durable, with their envelopes
// filled in; on error nothing of the call may be treated as done. ReadStream
// calls fn for each event of the stream with seq > after, in order, with
// payloads decoded; an error from fn ends the read and is returned.
type Log interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
	ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error
}
