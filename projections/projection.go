package projections

import "github.com/mcp-jupyter/mcp-jupyter/events"

// Interest is how much of an event type a projection needs.
type Interest uint8

const (
	// Skip: Apply is not called for this type.
	Skip Interest = iota
	// Envelope: Apply gets the envelope and the raw JSON payload (Raw), with
	// Payload nil. Raw aliases the log's buffers: copy what you keep.
	Envelope
	// Payload: Apply gets the payload decoded. A payload is decoded at most
	// once per event, however many projections want it.
	Payload
)

// Projection is one read model folded from the log.
//
// The runner never overlaps one projection's calls of Apply, Snapshot and
// Restore; callers of the projection's query methods run concurrently with
// them, so the projection guards its state (see the package doc). NB: Wants
// may be called from the runner's reader goroutine while Apply runs: it
// must be a pure function of the event type. Two projections' Restore (in
// Start) or Apply (during catch-up) may run at once: projections share no
// mutable state, and treat the event (Payload, Raw) as read-only.
type Projection interface {
	// Name identifies the projection's snapshot. NB: stored in the log; must
	// not change, or the projection rebuilds from the start of the log.
	Name() string
	// Wants reports what the projection needs of events of type eventType.
	// The runner caches the answer per type.
	Wants(eventType string) Interest
	// Apply folds one event into the model. An error stops the runner.
	Apply(e events.Event) error
	// Snapshot encodes the whole model.
	Snapshot() ([]byte, error)
	// Restore replaces the model with a decoded snapshot.
	Restore(data []byte) error
}
