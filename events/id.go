package events

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a globally unique, time-ordered id (a ULID in lower-case
// Crockford base32): 48 bits of milliseconds, 80 random bits. Ids never come
// from per-process counters, so several servers can share a bus.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on Linux (Go ≥1.24 panics instead)
	return crockford128(binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16]))
}

// ValidID reports whether s is shaped like an id this package makes or a
// client-supplied one we accept: 1 to 128 characters of [A-Za-z0-9_-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
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

// IDTime returns the time NewID was called with for an id it made (to the
// millisecond); ok is false for an id of another shape.
func IDTime(id string) (time.Time, bool) {
	if len(id) != 26 {
		return time.Time{}, false
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		v := strings.IndexByte(crockford, id[i])
		if v < 0 {
			return time.Time{}, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	ms := hi >> 16 // the top 48 of 128 bits
	return time.UnixMilli(int64(ms)).UTC(), true
}

// UUIDForm shows a 26-character id of NewID's shape as the UUID of the same
// 128 bits (8-4-4-4-12 lower-case hex), the only id shape Jupyter frontends
// and jupyter_server route; ok is false for an id of another shape.
func UUIDForm(id string) (string, bool) {
	if len(id) != 26 {
		return "", false
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		v := strings.IndexByte(crockford, id[i])
		if v < 0 {
			return "", false
		}
		if i == 0 && v > 7 {
			return "", false // more than 128 bits
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], hi)
	binary.BigEndian.PutUint64(b[8:16], lo)
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(out), true
}

// FromUUIDForm reads an id shown by UUIDForm back into NewID's shape (any
// case, with or without dashes); ok is false for anything else.
func FromUUIDForm(s string) (string, bool) {
	var hex []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && (i == 8 || i == 13 || i == 18 || i == 23) && len(s) == 36:
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex = append(hex, c|0x20)
		default:
			return "", false
		}
	}
	if len(hex) != 32 || (len(s) != 32 && len(s) != 36) {
		return "", false
	}
	var hi, lo uint64
	for i, c := range hex {
		v := uint64(strings.IndexByte("0123456789abcdef", c))
		if i < 16 {
			hi = hi<<4 | v
		} else {
			lo = lo<<4 | v
		}
	}
	return crockford128(hi, lo), true
}

// CanonicalID is the id a client named, in NewID's shape when it was given
// in UUID form, unchanged otherwise: every edge accepts both forms.
func CanonicalID(s string) string {
	if id, ok := FromUUIDForm(s); ok {
		return id
	}
	return s
}

// crockford128 writes 128 bits (hi, lo) as 26 base32 digits, most
// significant first.
func crockford128(hi, lo uint64) string {
	var sb strings.Builder
	sb.Grow(26)
	for i := 25; i >= 0; i-- {
		shift := uint(i * 5)
		var v uint64
		switch {
		case shift >= 64:
			v = hi >> (shift - 64)
		case shift == 0:
			v = lo
		default:
			v = lo>>shift | hi<<(64-shift)
		}
		sb.WriteByte(crockford[v&31])
	}
	return sb.String()
}
