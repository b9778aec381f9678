package kernels

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// status is what the model needs from an IOPubMessageReceived payload.
type status struct {
	isStatus bool   // msg_type == "status"
	state    string // content.execution_state (one of the constants, or a copy)
	kernelID []byte // aliases the payload
}

// peekStatus reads msg_type, kernel_id and content.execution_state from an
// IOPubMessageReceived payload without decoding the rest: a full
// json.Unmarshal costs ~2 µs per message and IOPub is most of the log.
// It walks the top-level members with a small validating skipper, so it is
// correct for any JSON object, not only the encoder's canonical form.
func peekStatus(raw []byte) (status, error) {
	var st status
	var content []byte
	err := members(raw, func(key, val []byte) error {
		switch keyName(key, "msg_type", "kernel_id", "content") {
		case "msg_type":
			s, err := stringValue(val)
			if err != nil {
				return fmt.Errorf("msg_type: %w", err)
			}
			st.isStatus = string(s) == "status"
		case "kernel_id":
			s, err := stringValue(val)
			if err != nil {
				return fmt.Errorf("kernel_id: %w", err)
			}
			st.kernelID = s
		case "content":
			content = val
		}
		return nil
	})
	if err != nil || !st.isStatus || content == nil {
		return st, err
	}
	err = members(content, func(key, val []byte) error {
		if keyName(key, "execution_state") == "" {
			return nil
		}
		s, err := stringValue(val)
		if err != nil {
			return fmt.Errorf("execution_state: %w", err)
		}
		switch string(s) {
		case "busy":
			st.state = "busy"
		case "idle":
			st.state = "idle"
		case "starting":
			st.state = "starting"
		default:
			st.state = string(s)
		}
		return nil
	})
	return st, err
}

// keyName returns which of names key selects, the way encoding/json does:
// an exact match, or else a case-insensitive one (Unicode simple folding).
func keyName(key []byte, names ...string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	ascii := true
	for _, c := range key {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	for _, n := range names {
		if (!ascii || len(key) == len(n)) && bytes.EqualFold(key, []byte(n)) {
			return n
		}
	}
	return ""
}

var errSyntax = errors.New("malformed JSON")

// members calls fn with each top-level member of the JSON object in b: the
// key (unescaped) and the raw value.
func members(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if string(bytes.TrimRight(b[i:], " \t\r\n")) == "null" {
		return nil // encoding/json leaves the target unset
	}
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: not an object", errSyntax)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		key, err := stringValue(b[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: missing colon", errSyntax)
		}
		start := skipSpace(b, i+1)
		end, err = skipValue(b, start)
		if err != nil {
			return err
		}
		if err := fn(key, b[start:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return fmt.Errorf("%w: unterminated object", errSyntax)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return fmt.Errorf("%w: unexpected %q", errSyntax, b[i])
		}
	}
}

// stringValue returns the contents of a JSON string value, unescaping only
// when it holds escapes.
func stringValue(v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, fmt.Errorf("%w: not a string", errSyntax)
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, fmt.Errorf("%w: expected a string", errSyntax)
	}
	// NB: IndexByte, not a byte loop: most strings hold no escape.
	for i++; i <= len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break
		}
		esc := bytes.IndexByte(b[i:i+q], '\\')
		if esc < 0 {
			return i + q + 1, nil
		}
		i += esc + 2 // the escape and the byte it escapes
	}
	return 0, fmt.Errorf("%w: unterminated string", errSyntax)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: missing value", errSyntax)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated container", errSyntax)
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == start {
			return 0, fmt.Errorf("%w: unexpected %q", errSyntax, b[i])
		}
		return i, nil
	}
}
