package jupyterapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Framings of the channels WebSocket. NB: the subprotocol string is what
// clients offer in Sec-WebSocket-Protocol; it must not change.
const (
	// SubprotocolV1 is jupyter_server's v1.kernel.websocket.jupyter.org:
	// every message binary, u64 little-endian offsets then channel, header,
	// parent_header, metadata, content and buffers.
	SubprotocolV1 = "v1.kernel.websocket.jupyter.org"
	// FramingLegacy: no subprotocol offered. A message is a JSON text
	// {"channel", "header", "parent_header", "metadata", "content",
	// "buffers": []}, or, when it carries buffers, binary: u32 big-endian
	// count and offsets, the JSON message, then the buffers.
	FramingLegacy = "legacy"
)

// Limits of the codec. A message past them is malformed.
const (
	// MaxBuffers bounds the binary buffers of one message (comm messages of
	// widgets carry a few).
	MaxBuffers = 64
)

// Message is one Jupyter message on the channels WebSocket. Header,
// ParentHeader, Metadata and Content hold JSON objects as they travel.
type Message struct {
	Channel      string
	Header       json.RawMessage
	ParentHeader json.RawMessage
	Metadata     json.RawMessage
	Content      json.RawMessage
	Buffers      [][]byte
}

// Header is the part of a message header the server reads and writes.
type Header struct {
	MsgID    string `json:"msg_id"`
	MsgType  string `json:"msg_type"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	Version  string `json:"version"`
}

// FrameError says why a client's WebSocket message is not a Jupyter
// message in its framing.
type FrameError struct {
	Framing string
	Reason  string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("malformed %s message: %s", e.Framing, e.Reason)
}

func frameErr(framing, format string, args ...any) error {
	return &FrameError{Framing: framing, Reason: fmt.Sprintf(format, args...)}
}

// DecodeV1 parses a binary message of the v1.kernel.websocket.jupyter.org
// subprotocol: a u64 LE count n, n u64 LE offsets (from the start of the
// message), then the parts between consecutive offsets: channel, header,
// parent_header, metadata, content, buffers. The last offset is the end of
// the message.
func DecodeV1(b []byte) (Message, error) {
	const f = SubprotocolV1
	if len(b) < 8 {
		return Message{}, frameErr(f, "%d bytes: shorter than the 8-byte offset count", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	// channel start, channel end, then the ends of header, parent_header,
	// metadata, content and of each buffer.
	if n < 6 || n > 6+MaxBuffers {
		return Message{}, frameErr(f, "%d offsets: want 6 (channel, header, parent_header, metadata, content) to %d (with buffers)", n, 6+MaxBuffers)
	}
	table := 8 * (1 + int(n))
	if len(b) < table {
		return Message{}, frameErr(f, "%d bytes: shorter than its %d-byte offset table", len(b), table)
	}
	offs := make([]int, n)
	prev := table
	for i := range offs {
		o := binary.LittleEndian.Uint64(b[8*(i+1):])
		if o < uint64(prev) || o > uint64(len(b)) {
			return Message{}, frameErr(f, "offset %d is %d: outside [%d, %d]", i, o, prev, len(b))
		}
		offs[i] = int(o)
		prev = int(o)
	}
	if offs[0] != table {
		return Message{}, frameErr(f, "the channel starts at %d, not right after the offset table (%d)", offs[0], table)
	}
	if offs[n-1] != len(b) {
		return Message{}, frameErr(f, "the last part ends at %d but the message has %d bytes", offs[n-1], len(b))
	}
	part := func(i int) []byte { return b[offs[i]:offs[i+1]] }
	m := Message{Channel: string(part(0))}
	var err error
	if m.Header, err = object(f, "header", part(1), false); err != nil {
		return Message{}, err
	}
	if m.ParentHeader, err = object(f, "parent_header", part(2), true); err != nil {
		return Message{}, err
	}
	if m.Metadata, err = object(f, "metadata", part(3), true); err != nil {
		return Message{}, err
	}
	if m.Content, err = object(f, "content", part(4), true); err != nil {
		return Message{}, err
	}
	for i := 5; i < int(n)-1; i++ {
		m.Buffers = append(m.Buffers, part(i))
	}
	return m, nil
}

// EncodeV1 is DecodeV1's inverse.
func EncodeV1(m Message) []byte {
	parts := [][]byte{[]byte(m.Channel), orEmpty(m.Header), orEmpty(m.ParentHeader), orEmpty(m.Metadata), orEmpty(m.Content)}
	parts = append(parts, m.Buffers...)
	n := len(parts) + 1
	size := 8 * (1 + n)
	for _, p := range parts {
		size += len(p)
	}
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint64(out, uint64(n))
	o := 8 * (1 + n)
	out = binary.LittleEndian.AppendUint64(out, uint64(o))
	for _, p := range parts {
		o += len(p)
		out = binary.LittleEndian.AppendUint64(out, uint64(o))
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// legacyJSON is a message of the legacy framing.
type legacyJSON struct {
	Channel      string          `json:"channel"`
	Header       json.RawMessage `json:"header"`
	ParentHeader json.RawMessage `json:"parent_header"`
	Metadata     json.RawMessage `json:"metadata"`
	Content      json.RawMessage `json:"content"`
	// MsgID and MsgType repeat the header's, as jupyter_client's
	// Session.msg writes them; clients read either.
	MsgID   string `json:"msg_id,omitempty"`
	MsgType string `json:"msg_type,omitempty"`
	Buffers []any  `json:"buffers"`
}

// DecodeLegacyText parses a JSON text message of the legacy framing. A
// message without a channel is on shell, as jupyter_server assumes.
func DecodeLegacyText(b []byte) (Message, error) {
	const f = FramingLegacy
	var lj legacyJSON
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&lj); err != nil {
		return Message{}, frameErr(f, "not a JSON message object: %v", err)
	}
	if d.More() {
		return Message{}, frameErr(f, "more than one JSON value")
	}
	return legacyMessage(lj)
}

func legacyMessage(lj legacyJSON) (Message, error) {
	const f = FramingLegacy
	m := Message{Channel: lj.Channel}
	if m.Channel == "" {
		m.Channel = "shell"
	}
	var err error
	if m.Header, err = object(f, "header", lj.Header, false); err != nil {
		return Message{}, err
	}
	if m.ParentHeader, err = object(f, "parent_header", lj.ParentHeader, true); err != nil {
		return Message{}, err
	}
	if m.Metadata, err = object(f, "metadata", lj.Metadata, true); err != nil {
		return Message{}, err
	}
	if m.Content, err = object(f, "content", lj.Content, true); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DecodeLegacyBinary parses a binary message of the legacy framing: a u32
// big-endian count n, n u32 BE offsets (from the start of the message),
// then n parts: the JSON message, then its buffers.
func DecodeLegacyBinary(b []byte) (Message, error) {
	const f = FramingLegacy
	if len(b) < 4 {
		return Message{}, frameErr(f, "%d bytes: shorter than the 4-byte count", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if n < 1 || n > 1+MaxBuffers {
		return Message{}, frameErr(f, "%d parts: want 1 (the JSON message) to %d (with buffers)", n, 1+MaxBuffers)
	}
	table := 4 * (1 + int(n))
	if len(b) < table {
		return Message{}, frameErr(f, "%d bytes: shorter than its %d-byte offset table", len(b), table)
	}
	offs := make([]int, n+1)
	prev := table
	for i := 0; i < int(n); i++ {
		o := binary.BigEndian.Uint32(b[4*(i+1):])
		if uint64(o) < uint64(prev) || uint64(o) > uint64(len(b)) {
			return Message{}, frameErr(f, "offset %d is %d: outside [%d, %d]", i, o, prev, len(b))
		}
		offs[i] = int(o)
		prev = int(o)
	}
	offs[n] = len(b)
	if offs[0] != table {
		return Message{}, frameErr(f, "the JSON message starts at %d, not right after the offset table (%d)", offs[0], table)
	}
	m, err := DecodeLegacyText(b[offs[0]:offs[1]])
	if err != nil {
		return Message{}, err
	}
	for i := 1; i < int(n); i++ {
		m.Buffers = append(m.Buffers, b[offs[i]:offs[i+1]])
	}
	return m, nil
}

// EncodeLegacy encodes m in the legacy framing: JSON text, or binary when it
// has buffers. binaryMsg says which.
func EncodeLegacy(m Message) (data []byte, binaryMsg bool) {
	var h Header
	_ = json.Unmarshal(m.Header, &h)
	lj := legacyJSON{Channel: m.Channel, Header: orEmpty(m.Header), ParentHeader: orEmpty(m.ParentHeader),
		Metadata: orEmpty(m.Metadata), Content: orEmpty(m.Content), MsgID: h.MsgID, MsgType: h.MsgType, Buffers: []any{}}
	js, err := json.Marshal(lj)
	if err != nil {
		// NB: the parts are JSON the server built or checked: a bug, not input.
		js = []byte(`{}`)
	}
	if len(m.Buffers) == 0 {
		return js, false
	}
	parts := append([][]byte{js}, m.Buffers...)
	n := len(parts)
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	o := 4 * (1 + n)
	for _, p := range parts {
		out = binary.BigEndian.AppendUint32(out, uint32(o))
		o += len(p)
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, true
}

var emptyObject = json.RawMessage(`{}`)

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return emptyObject
	}
	return b
}

// object checks that b is one JSON object (or, when mayBeEmpty, empty or
// null, read as {}).
func object(framing, name string, b []byte, mayBeEmpty bool) (json.RawMessage, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		if mayBeEmpty {
			return emptyObject, nil
		}
		return nil, frameErr(framing, "no %s", name)
	}
	if t[0] != '{' || !utf8.Valid(t) || !json.Valid(t) {
		return nil, frameErr(framing, "the %s is not a JSON object", name)
	}
	return json.RawMessage(t), nil
}

// ParseHeader reads m's header and checks it names a message: msg_id and
// msg_type set.
func ParseHeader(m Message) (Header, error) {
	var h Header
	if err := json.Unmarshal(m.Header, &h); err != nil {
		return Header{}, fmt.Errorf("read the header: %w", err)
	}
	if h.MsgType == "" {
		return Header{}, errors.New("the header has no msg_type")
	}
	if h.MsgID == "" {
		return Header{}, errors.New("the header has no msg_id")
	}
	return h, nil
}
