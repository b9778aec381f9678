package jupyter

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"
)

// ProtocolVersion is the Jupyter messaging protocol version this package speaks.
const ProtocolVersion = "5.3"

// DateFormat is how header dates are written: RFC 3339 with microseconds.
// NB: Python's parser rejects Go's nanosecond precision; keep six digits.
const DateFormat = "2006-01-02T15:04:05.000000Z07:00"

// delimiter separates routing identities from the signed message parts.
var delimiter = []byte("<IDS|MSG>")

var (
	// ErrBadSignature means a message's HMAC did not match; it is dropped.
	ErrBadSignature = errors.New("jupyter: bad message signature")
	// ErrMalformed means the frames are not a Jupyter message (no delimiter,
	// too few frames or invalid JSON).
	ErrMalformed = errors.New("jupyter: malformed message")
)

// Header is a Jupyter message header (also used for parent_header).
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// IsZero reports whether h is the empty header (an absent parent is "{}").
func (h Header) IsZero() bool { return h == Header{} }

// NewHeader returns a header with a fresh msg_id and the current time.
func NewHeader(session, username, msgType string) Header {
	return Header{
		MsgID:    NewID(),
		Session:  session,
		Username: username,
		Date:     time.Now().UTC().Format(DateFormat),
		MsgType:  msgType,
		Version:  ProtocolVersion,
	}
}

// NewID returns a random UUID4 in canonical hex form. Every message needs a
// unique msg_id: the kernel rejects a repeated signature.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on Linux >= 3.17 (getrandom); a failure
		// here means the system is unusable.
		panic(fmt.Sprintf("jupyter: read random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// Message is one Jupyter message as it travels on a socket.
type Message struct {
	// Identities are the ZeroMQ routing prefix (empty on DEALER/SUB sockets
	// for replies; IOPub messages carry the topic here).
	Identities [][]byte
	Header     Header
	Parent     Header // zero when the message has no parent
	Metadata   json.RawMessage
	Content    json.RawMessage
	Buffers    [][]byte
}

// Signer signs and verifies messages with HMAC-SHA256. A Signer with an empty
// key neither signs nor verifies, as Jupyter specifies. A Signer is not safe
// for concurrent use; NewSigner is cheap, so give each goroutine its own.
type Signer struct {
	mac hash.Hash // nil when the key is empty
}

// NewSigner returns a Signer for key (the connection file's "key" string,
// used as raw bytes).
func NewSigner(key string) *Signer {
	if key == "" {
		return &Signer{}
	}
	return &Signer{mac: hmac.New(sha256.New, []byte(key))}
}

func (s *Signer) sign(parts ...[]byte) []byte {
	if s.mac == nil {
		return nil
	}
	s.mac.Reset()
	for _, p := range parts {
		s.mac.Write(p)
	}
	sum := s.mac.Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

var emptyObject = []byte("{}")

// Encode returns the ZeroMQ frames of m: identities, "<IDS|MSG>", signature,
// header, parent_header, metadata, content, buffers. Nil metadata or content
// is sent as {}.
func (s *Signer) Encode(m Message) ([][]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	parent := emptyObject
	if !m.Parent.IsZero() {
		if parent, err = json.Marshal(m.Parent); err != nil {
			return nil, fmt.Errorf("encode parent header: %w", err)
		}
	}
	metadata := []byte(m.Metadata)
	if len(metadata) == 0 {
		metadata = emptyObject
	}
	content := []byte(m.Content)
	if len(content) == 0 {
		content = emptyObject
	}
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, delimiter, s.sign(header, parent, metadata, content))
	frames = append(frames, header, parent, metadata, content)
	frames = append(frames, m.Buffers...)
	return frames, nil
}

// Decode parses the frames of one message and verifies its signature in
// constant time. It returns an error wrapping ErrMalformed or
// ErrBadSignature for bad input and never panics.
func (s *Signer) Decode(frames [][]byte) (Message, error) {
	d := -1
	for i, f := range frames {
		if bytes.Equal(f, delimiter) {
			d = i
			break
		}
	}
	if d < 0 {
		return Message{}, fmt.Errorf("%w: no %s delimiter in %d frames", ErrMalformed, delimiter, len(frames))
	}
	rest := frames[d+1:]
	if len(rest) < 5 {
		return Message{}, fmt.Errorf("%w: %d frames after delimiter, want at least 5", ErrMalformed, len(rest))
	}
	sig, header, parent, metadata, content := rest[0], rest[1], rest[2], rest[3], rest[4]
	if s.mac != nil {
		if !hmac.Equal(s.sign(header, parent, metadata, content), sig) {
			return Message{}, ErrBadSignature
		}
	}
	var m Message
	if err := decodeHeader(header, &m.Header); err != nil {
		return Message{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if err := decodeHeader(parent, &m.Parent); err != nil {
		return Message{}, fmt.Errorf("%w: parent header: %w", ErrMalformed, err)
	}
	if !json.Valid(metadata) {
		return Message{}, fmt.Errorf("%w: metadata is not valid JSON", ErrMalformed)
	}
	if !json.Valid(content) {
		return Message{}, fmt.Errorf("%w: content is not valid JSON", ErrMalformed)
	}
	m.Metadata = json.RawMessage(bytes.Clone(metadata))
	m.Content = json.RawMessage(bytes.Clone(content))
	if d > 0 {
		m.Identities = cloneFrames(frames[:d])
	}
	if len(rest) > 5 {
		m.Buffers = cloneFrames(rest[5:])
	}
	return m, nil
}

// decodeHeader requires a JSON object: null or a scalar is not a header.
func decodeHeader(data []byte, h *Header) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, h)
}

func cloneFrames(frames [][]byte) [][]byte {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		out[i] = bytes.Clone(f)
	}
	return out
}
