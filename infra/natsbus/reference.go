package natsbus

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// RefHeader marks a reference: an event too large for NATS (its JSON form
// over the server's max_payload or the stream's max message size), sent
// as its envelope, its size and where to fetch it. The header's value is
// that path, relative to the server's HTTP address (GET with the MCP
// bearer token). NB: public API; must not change.
const RefHeader = "Mcp-Ref"

// RefPath is where the full event is served: the /events API of the server.
// NB: public API; must not change.
func RefPath(seq uint64) string { return "/events/" + strconv.FormatUint(seq, 10) }

// Reference is the body of a reference message: the event's envelope
// without its payload, the size of its full JSON form, and the path it is
// fetched from. NB: public API (docs/nats.md); fields are only added.
type Reference struct {
	Seq     uint64 `json:"seq"`
	Time    string `json:"time"`
	Stream  string `json:"stream"`
	Kernel  string `json:"kernel,omitempty"`
	Node    string `json:"node,omitempty"`
	Type    string `json:"type"`
	Version uint16 `json:"version"`
	// Principal is who caused the event, as in the full JSON form.
	Principal string `json:"principal,omitempty"`
	// Size is the length in bytes of the full JSON form, the body GET Ref
	// answers.
	Size int `json:"size"`
	// Ref is RefPath(Seq).
	Ref string `json:"ref"`
	// Error, when set, says why the event could not be encoded for NATS
	// (Size is then 0); Ref serves what the log holds.
	Error string `json:"error,omitempty"`
}

func referenceTo(e events.Event, size int, encodeErr error) ([]byte, error) {
	r := Reference{Seq: e.Seq, Time: e.Time.UTC().Format(events.TimeFormat), Stream: e.Stream,
		Kernel: e.Kernel, Node: e.Node, Type: e.Type, Version: e.Version, Principal: e.Principal, Size: size, Ref: RefPath(e.Seq)}
	if encodeErr != nil {
		r.Size, r.Error = 0, encodeErr.Error()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode a reference to event %d: %w", e.Seq, err)
	}
	return b, nil
}
