package events

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"time"
)

// Record format, version 1 (NB: the stored format; must not change — a new
// layout takes a new format byte and keeps decoding this one):
//
//	[0]     format byte (1)
//	[1:5]   CRC-32C (Castagnoli), little endian, of bytes [5:]
//	varint  sequence
//	varint  time, Unix nanoseconds
//	uvarint len, stream
//	uvarint len, kernel
//	uvarint len, node
//	uvarint len, type
//	uvarint version
//	rest    payload (JSON)
//
// Record format, version 2: the same, with the principal that caused the
// event between the version and the payload. It is written only for events
// that have a principal, so records of events the server causes on its own
// (and every record written before principals existed) stay version 1:
//
//	[0]     format byte (2)
//	[1:5]   CRC-32C (Castagnoli), little endian, of bytes [5:]
//	...     as version 1, up to and including the version
//	uvarint len, principal
//	rest    payload (JSON)
const (
	recordFormatV1 = 1
	recordFormatV2 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode renders an event as a record. The payload is marshalled unless Raw
// is already set.
func Encode(e Event) ([]byte, error) {
	raw := e.Raw
	if raw == nil {
		if e.Payload == nil {
			return nil, fmt.Errorf("encode event %d: no payload", e.Seq)
		}
		var err error
		if raw, err = json.Marshal(e.Payload); err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", e.Type, err)
		}
	}
	return AppendRecord(make([]byte, 0, 64+len(e.Stream)+len(e.Kernel)+len(e.Node)+len(e.Type)+len(e.Principal)+len(raw)), e, raw), nil
}

// AppendRecord appends the record for e with the given encoded payload to dst.
func AppendRecord(dst []byte, e Event, payload []byte) []byte {
	start := len(dst)
	format := byte(recordFormatV1)
	if e.Principal != "" {
		format = recordFormatV2
	}
	dst = append(dst, format, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, e.Seq)
	dst = binary.AppendVarint(dst, e.Time.UnixNano())
	dst = appendString(dst, e.Stream)
	dst = appendString(dst, e.Kernel)
	dst = appendString(dst, e.Node)
	dst = appendString(dst, e.Type)
	dst = binary.AppendUvarint(dst, uint64(e.Version))
	if format == recordFormatV2 {
		dst = appendString(dst, e.Principal)
	}
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+1:start+5], crc32.Checksum(dst[start+5:], castagnoli))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeEnvelope reads a record's envelope and verifies its checksum, leaving
// the payload undecoded in Raw (aliasing rec). seq is the sequence the record
// was stored under; a record claiming another one is corrupt.
func DecodeEnvelope(seq uint64, rec []byte) (Event, error) {
	return decodeEnvelope(seq, rec, nil)
}

// DecodeEnvelopeInterned is DecodeEnvelope sharing the envelope's strings
// (stream, kernel, node, type, principal) with earlier records decoded through the same
// Interner: a replay of a million events then allocates a few thousand
// strings instead of four million. The record format is the same.
func DecodeEnvelopeInterned(seq uint64, rec []byte, in *Interner) (Event, error) {
	return decodeEnvelope(seq, rec, in)
}

// Interner remembers recently decoded envelope strings. The zero value is
// ready to use. It is not safe for concurrent use: give each reader its own.
type Interner struct {
	// recent holds, per field (stream, kernel, node, type, principal), the
	// last few distinct values: a replay cycles through a handful of types,
	// kernels and principals, and checking 8 short strings is cheaper than
	// hashing.
	recent [5][8]string
	next   [5]uint8
	m      map[string]string
}

// maxInterned bounds an Interner's memory: past it the table starts over.
// Kernels, nodes and types are few; streams (one per execution) churn, and
// consecutive events of one stream hit the recent values anyway.
const maxInterned = 4096

func (in *Interner) intern(field int, b []byte) string {
	for _, s := range &in.recent[field] {
		if len(s) == len(b) && s == string(b) {
			return s
		}
	}
	s, ok := in.m[string(b)]
	if !ok {
		if in.m == nil {
			in.m = make(map[string]string, 64)
		} else if len(in.m) >= maxInterned {
			clear(in.m)
		}
		s = string(b)
		in.m[s] = s
	}
	in.recent[field][in.next[field]&7] = s
	in.next[field]++
	return s
}

func decodeEnvelope(seq uint64, rec []byte, in *Interner) (Event, error) {
	corrupt := func(what string) (Event, error) {
		return Event{}, &DecodeError{Seq: seq, Err: fmt.Errorf("%w: %s", ErrCorrupt, what)}
	}
	if len(rec) < 5 {
		return corrupt("record shorter than its header")
	}
	format := rec[0]
	if format != recordFormatV1 && format != recordFormatV2 {
		if format > recordFormatV2 {
			return Event{}, &DecodeError{Seq: seq, Err: fmt.Errorf("%w: record format %d", ErrNewerVersion, rec[0])}
		}
		return corrupt(fmt.Sprintf("unknown record format %d", rec[0]))
	}
	if got, want := crc32.Checksum(rec[5:], castagnoli), binary.LittleEndian.Uint32(rec[1:5]); got != want {
		return corrupt(fmt.Sprintf("checksum mismatch (stored %08x, computed %08x)", want, got))
	}
	r := reader{b: rec[5:], in: in}
	var e Event
	e.Seq = r.uvarint()
	nanos := r.varint()
	e.Stream = r.string(0)
	e.Kernel = r.string(1)
	e.Node = r.string(2)
	e.Type = r.string(3)
	version := r.uvarint()
	if format == recordFormatV2 {
		e.Principal = r.string(4)
		if e.Principal == "" {
			r.bad = true // NB: v2 is written only with a principal
		}
	}
	if r.bad || version > 0xffff {
		return corrupt("truncated or malformed envelope")
	}
	if e.Seq != seq {
		return corrupt(fmt.Sprintf("record says sequence %d", e.Seq))
	}
	e.Time = time.Unix(0, nanos).UTC()
	e.Version = uint16(version)
	e.Raw = r.b
	return e, nil
}

// Decode reads a whole record: envelope and payload. Unknown types and
// versions are *DecodeError.
func Decode(seq uint64, rec []byte) (Event, error) {
	e, err := DecodeEnvelope(seq, rec)
	if err != nil {
		return Event{}, err
	}
	if err := e.DecodePayload(); err != nil {
		return Event{}, err
	}
	return e, nil
}

type reader struct {
	b   []byte
	bad bool
	in  *Interner
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string(field int) string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	var s string
	switch {
	case n == 0:
	case r.in != nil:
		s = r.in.intern(field, r.b[:n])
	default:
		s = string(r.b[:n])
	}
	r.b = r.b[n:]
	return s
}
