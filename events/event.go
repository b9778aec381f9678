package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Payload is the body of an event. Each payload type is listed in the
// registry with its type string and schema version.
type Payload interface {
	EventType() string
}

// Draft is what a producer hands to the log: the log assigns the sequence,
// the time and the node, and turns it into an Event.
type Draft struct {
	Stream string // "<kind>/<id>", e.g. "kernel/01J..." or "execution/01J..."
	Kernel string // the kernel this event concerns, if any
	// Principal is the name of the caller whose command caused the event
	// ("alice", "admin", "oidc:<sub>"); empty for what the server does on
	// its own (a kernel died, a lease expired, recovery).
	Principal string
	Payload   Payload
}

// Event is a durable fact: a payload in its envelope.
type Event struct {
	Seq     uint64
	Time    time.Time
	Stream  string
	Kernel  string
	Node    string
	Type    string
	Version uint16
	// Principal is who caused the event (see Draft.Principal); empty for
	// events the server caused on its own and for events written before
	// principals existed (record format 1).
	Principal string
	// Payload is the decoded body. It is nil when the event was read with
	// DecodeEnvelope; call Decode or DecodePayload to fill it.
	Payload Payload
	// Raw is the encoded payload as stored (JSON). It aliases the record it
	// was read from: copy it before keeping it beyond the read callback.
	Raw []byte
}

// StreamKind returns the part of a stream id before the slash ("kernel").
func StreamKind(stream string) string {
	kind, _, _ := strings.Cut(stream, "/")
	return kind
}

// StreamID returns the part of a stream id after the slash.
func StreamID(stream string) string {
	_, id, _ := strings.Cut(stream, "/")
	return id
}

// KernelStream, ExecutionStream, ... build stream ids. NB: the kinds are part
// of the on-disk contract and the NATS subject scheme; they must not change.
func KernelStream(id string) string       { return "kernel/" + id }
func ExecutionStream(id string) string    { return "execution/" + id }
func AssetStream(sha string) string       { return "asset/" + sha }
func CheckpointStream(name string) string { return "checkpoint/" + name }
func NotebookStream(id string) string     { return "notebook/" + id }
func ServerStream(node string) string     { return "server/" + node }

// Subject returns the NATS subject an event is published on:
// mcpjupyter.ev.<kernel or "->.<stream kind>.<stream id>.<type>.
func Subject(e Event) string {
	kernel := e.Kernel
	if kernel == "" {
		kernel = "-"
	}
	return "mcpjupyter.ev." + subjectToken(kernel) + "." + subjectToken(StreamKind(e.Stream)) + "." +
		subjectToken(StreamID(e.Stream)) + "." + e.Type
}

// subjectToken keeps a token legal in NATS: no dots, spaces or wildcards.
func subjectToken(s string) string {
	if s == "" {
		return "-"
	}
	if !strings.ContainsAny(s, ". *>\t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '*', '>', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// jsonEvent is the public JSON form of an event.
type jsonEvent struct {
	Seq     uint64 `json:"seq"`
	Time    string `json:"time"`
	Stream  string `json:"stream"`
	Kernel  string `json:"kernel,omitempty"`
	Node    string `json:"node,omitempty"`
	Type    string `json:"type"`
	Version uint16 `json:"version"`
	// Principal sits before the payload so that a reader of the JSON form
	// sees who did it before what was done.
	Principal string          `json:"principal,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// TimeFormat is the layout of times in the JSON form: microseconds, UTC, so
// that Python's parsers accept it too.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON renders the public JSON form.
func (e Event) MarshalJSON() ([]byte, error) {
	raw := e.Raw
	if raw == nil && e.Payload != nil {
		var err error
		if raw, err = json.Marshal(e.Payload); err != nil {
			return nil, fmt.Errorf("marshal %s payload: %w", e.Type, err)
		}
	}
	if raw == nil {
		raw = []byte("{}")
	}
	return json.Marshal(jsonEvent{
		Seq: e.Seq, Time: e.Time.UTC().Format(TimeFormat), Stream: e.Stream, Kernel: e.Kernel,
		Node: e.Node, Type: e.Type, Version: e.Version, Principal: e.Principal, Payload: raw,
	})
}

// UnmarshalJSON reads the public JSON form (events import). The payload is
// decoded through the registry, so unknown types are refused.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j jsonEvent
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode event json: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("decode event %d time %q: %w", j.Seq, j.Time, err)
	}
	*e = Event{Seq: j.Seq, Time: t, Stream: j.Stream, Kernel: j.Kernel, Node: j.Node,
		Type: j.Type, Version: j.Version, Principal: j.Principal, Raw: append([]byte(nil), j.Payload...)}
	return e.DecodePayload()
}

// DecodePayload fills e.Payload from e.Raw through the registry, upcasting
// older versions.
func (e *Event) DecodePayload() error {
	if e.Payload != nil {
		return nil
	}
	p, err := decodePayload(e.Type, e.Version, e.Raw)
	if err != nil {
		return &DecodeError{Seq: e.Seq, Type: e.Type, Version: e.Version, Err: err}
	}
	e.Payload = p
	return nil
}

// As returns the event's payload as T, decoding it if needed.
func As[T Payload](e *Event) (T, error) {
	var zero T
	if err := e.DecodePayload(); err != nil {
		return zero, err
	}
	p, ok := e.Payload.(T)
	if !ok {
		return zero, fmt.Errorf("event %d is %s, not %T", e.Seq, e.Type, zero)
	}
	return p, nil
}
