package notebook

import (
	"bytes"
	"encoding/json"
	"errors"
)

// The fast path of Parse. A 20 MB notebook is mostly output strings
// (base64 images, long logs) that Parse never needs to decode: it only needs
// where each output begins and ends. encoding/json validates and decodes
// every byte (~80 MB/s here); this scanner finds string ends with
// bytes.IndexByte and hands the outputs on as sub-slices of the file. It
// checks structure, not the escapes inside strings: the slow path
// (json.Unmarshal) runs whenever it refuses a file, for the exact error, and
// Marshal re-validates every raw output before a write.

var errScan = errors.New("notebook: malformed JSON")

const maxDepth = 10000

type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// str skips a string starting at s.i and returns its raw bytes (quotes
// included).
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i
	i := s.i + 1
	for {
		j := bytes.IndexByte(s.b[i:], '"')
		if j < 0 {
			return nil, false
		}
		k := i + j
		n := 0
		for m := k - 1; m > start && s.b[m] == '\\'; m-- {
			n++
		}
		if n%2 == 0 {
			s.i = k + 1
			return s.b[start:s.i], true
		}
		i = k + 1
	}
}

// value skips one value and returns its raw bytes.
func (s *scanner) value() ([]byte, bool) {
	c := s.peek()
	start := s.i
	switch {
	case c == '"':
		return s.str()
	case c == '{' || c == '[':
		if s.depth++; s.depth > maxDepth {
			return nil, false
		}
		defer func() { s.depth-- }()
		s.i++
		closing := byte(']')
		if c == '{' {
			closing = '}'
		}
		if s.expect(closing) {
			return s.b[start:s.i], true
		}
		for {
			if c == '{' {
				if _, ok := s.str(); !ok || !s.expect(':') {
					return nil, false
				}
			}
			if _, ok := s.value(); !ok {
				return nil, false
			}
			if s.expect(',') {
				continue
			}
			if s.expect(closing) {
				return s.b[start:s.i], true
			}
			return nil, false
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		s.i++
		for s.i < len(s.b) {
			d := s.b[s.i]
			if d >= '0' && d <= '9' || d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-' {
				s.i++
				continue
			}
			break
		}
		raw := s.b[start:s.i]
		return raw, json.Valid(raw)
	}
	return nil, false
}

func (s *scanner) lit(w string) ([]byte, bool) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return nil, false
	}
	s.i += len(w)
	return s.b[s.i-len(w) : s.i], true
}

// object calls fn for each key of the object at s.i; fn must consume the
// value.
func (s *scanner) object(fn func(key []byte) bool) bool {
	if !s.expect('{') {
		return false
	}
	if s.expect('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.expect(':') {
			return false
		}
		if bytes.IndexByte(k, '\\') >= 0 {
			var key string
			if json.Unmarshal(k, &key) != nil {
				return false
			}
			k = []byte(`"` + key + `"`)
		}
		if !fn(k[1 : len(k)-1]) {
			return false
		}
		if s.expect(',') {
			continue
		}
		return s.expect('}')
	}
}

// array calls fn for each element of the array at s.i; fn must consume it.
func (s *scanner) array(fn func() bool) bool {
	if !s.expect('[') {
		return false
	}
	if s.expect(']') {
		return true
	}
	for {
		if !fn() {
			return false
		}
		if s.expect(',') {
			continue
		}
		return s.expect(']')
	}
}

// scanFile is the fast structural parse into fileNB. Small fields are
// decoded with encoding/json; outputs stay raw sub-slices of b.
func scanFile(b []byte) (*fileNB, error) {
	s := &scanner{b: b}
	var f fileNB
	decode := func(dst any) bool {
		raw, ok := s.value()
		return ok && json.Unmarshal(raw, dst) == nil
	}
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "cells":
			return s.array(func() bool {
				var c fileCell
				ok := s.object(func(key []byte) bool {
					switch string(key) {
					case "id":
						return decode(&c.ID)
					case "cell_type":
						return decode(&c.CellType)
					case "source":
						raw, ok := s.value()
						c.Source = raw
						return ok
					case "metadata":
						raw, ok := s.value()
						c.Metadata = raw
						return ok && len(raw) > 0 && raw[0] == '{'
					case "execution_count":
						return decode(&c.ExecutionCount)
					case "attachments":
						raw, ok := s.value()
						c.Attachments = raw
						return ok
					case "outputs":
						c.Outputs = []json.RawMessage{}
						return s.array(func() bool {
							raw, ok := s.value()
							if ok && raw[0] != '{' {
								return false
							}
							c.Outputs = append(c.Outputs, raw)
							return ok
						})
					}
					_, ok := s.value()
					return ok
				})
				f.Cells = append(f.Cells, c)
				return ok
			})
		case "metadata":
			return decode(&f.Metadata)
		case "nbformat":
			return decode(&f.Format)
		case "nbformat_minor":
			return decode(&f.Minor)
		}
		_, ok := s.value()
		return ok
	})
	s.ws()
	if !ok || s.i != len(b) {
		return nil, errScan
	}
	return &f, nil
}
