package ws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// maxKernelID bounds the kernel query parameter.
const maxKernelID = 128

// request is what a client asked for in the URL.
type request struct {
	kernel   string
	since    uint64
	hasSince bool
}

// parseRequest reads kernel=<id> and since=<seq>. Unknown parameters other
// than token are refused, so a typo is not silently ignored.
func parseRequest(q url.Values) (request, error) {
	var r request
	for k, vs := range q {
		if len(vs) != 1 {
			return r, fmt.Errorf("parameter %q given %d times: give it once", k, len(vs))
		}
		switch k {
		case "kernel":
			r.kernel = vs[0]
			if !validKernel(r.kernel) {
				return r, fmt.Errorf("kernel %q: give a kernel id from list_kernels (letters, digits, '-' and '_', at most %d)", clip(r.kernel), maxKernelID)
			}
			r.kernel = events.CanonicalID(r.kernel) // NB: the UUID form frontends show names the same kernel
		case "since":
			n, err := strconv.ParseUint(vs[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("since %q: give the seq of the last event you received (a whole number, 0 for the whole log)", clip(vs[0]))
			}
			r.since, r.hasSince = n, true
		case "token":
		default:
			return r, fmt.Errorf("unknown parameter %q: /ws takes kernel, since and token", clip(k))
		}
	}
	return r, nil
}

func validKernel(s string) bool {
	if s == "" || len(s) > maxKernelID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// clientMessage is the only thing a client may send.
type clientMessage struct {
	Type string `json:"type"`
}

// parseClientMessage accepts exactly {"type":"ping"}.
func parseClientMessage(b []byte) error {
	var m clientMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("malformed client message (%v): send {\"type\":\"ping\"} or nothing", err)
	}
	if dec.More() {
		return fmt.Errorf("malformed client message (trailing data): send {\"type\":\"ping\"} or nothing")
	}
	if m.Type != "ping" {
		return fmt.Errorf("unknown client message type %q: send {\"type\":\"ping\"} or nothing", clip(m.Type))
	}
	return nil
}
