package projections

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Log is what the runner needs from the event log (infra/eventlog
// implements it).
//
// Scan calls fn for every event with from <= seq <= to, in order, envelope
// decoded and payload raw; FollowRaw does the same for every event after
// `after`, then waits (signalled, not polled) for new ones until ctx ends or
// fn fails. In both, Raw aliases the log's buffers for the duration of fn.
// Last and First bound the retained log. SaveSnapshot stores a read model's
// state as of seq, durably; LoadSnapshot returns it (ok false when none).
// TruncateBefore deletes the events with seq < before but those keep keeps
// (keep nil: none; it sees envelopes), and reconsiders the ones kept by
// earlier calls.
type Log interface {
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
	FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error
	Last() uint64
	First() uint64
	SaveSnapshot(name string, seq uint64, data []byte) error
	LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error)
	TruncateBefore(before uint64, keep func(events.Event) bool) (deleted int, err error)
}
