package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A flat decoder reads the payloads whose fields are all strings, integers
// and booleans (ExecutionStarted, ExecutionQueued, most of the catalog)
// without encoding/json's reflection walk, which costs about a microsecond
// a payload: replays decode hundreds of thousands of them.
//
// It handles only the JSON our encoder writes: exact field names, plain
// strings (no escapes, valid UTF-8), integers, true, false, null. On
// anything else (an escape, a nested value, a key that matches a field
// only case-insensitively, a float) it says so and the caller falls back to
// json.Unmarshal, so the result is always what json.Unmarshal gives.
type flatDecoder struct {
	fields map[string]flatField
}

type flatField struct {
	index int
	kind  reflect.Kind
}

var errNotFlat = errors.New("events: not a flat payload")

// newFlatDecoder returns a decoder for T, or nil when T has a field of
// another kind (the caller then always uses json.Unmarshal).
func newFlatDecoder(t reflect.Type) *flatDecoder {
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	d := &flatDecoder{fields: map[string]flatField{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || f.Anonymous {
			return nil
		}
		if name == "" {
			name = f.Name
		}
		switch k := f.Type.Kind(); k {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
			if f.Type.PkgPath() != "" && f.Type.Name() != k.String() {
				return nil // NB: a named type may have its own UnmarshalJSON
			}
			d.fields[name] = flatField{index: i, kind: k}
		case reflect.Slice:
			if f.Type != reflect.TypeFor[[]string]() {
				return nil
			}
			d.fields[name] = flatField{index: i, kind: k}
		default:
			return nil
		}
	}
	return d
}

// decode fills dst (a pointer to the struct) from raw, or returns
// errNotFlat having maybe set some fields (the caller starts over).
func (d *flatDecoder) decode(raw []byte, dst reflect.Value) error {
	v := dst.Elem()
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errNotFlat
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return trailing(raw, i+1)
	}
	for {
		key, j, ok := plainString(raw, i)
		if !ok {
			return errNotFlat
		}
		i = skipWS(raw, j)
		if i >= len(raw) || raw[i] != ':' {
			return errNotFlat
		}
		i = skipWS(raw, i+1)
		f, known := d.fields[string(key)]
		if !known {
			return errNotFlat // NB: json matches keys case-insensitively; let it
		}
		if i >= len(raw) {
			return errNotFlat
		}
		switch c := raw[i]; {
		case c == 'n':
			if !hasWord(raw, i, "null") {
				return errNotFlat
			}
			i += 4
		case c == 't' || c == 'f':
			if f.kind != reflect.Bool {
				return errNotFlat
			}
			switch {
			case hasWord(raw, i, "true"):
				v.Field(f.index).SetBool(true)
				i += 4
			case hasWord(raw, i, "false"):
				v.Field(f.index).SetBool(false)
				i += 5
			default:
				return errNotFlat
			}
		case c == '"':
			if f.kind != reflect.String {
				return errNotFlat
			}
			s, j, ok := plainString(raw, i)
			if !ok {
				return errNotFlat
			}
			v.Field(f.index).SetString(string(s))
			i = j
		case c == '[':
			if f.kind != reflect.Slice {
				return errNotFlat
			}
			list := []string{} // NB: as json: [] is empty, not nil
			i = skipWS(raw, i+1)
			if i < len(raw) && raw[i] == ']' {
				i++
			} else {
				for {
					s, j, ok := plainString(raw, i)
					if !ok {
						return errNotFlat
					}
					list = append(list, string(s))
					i = skipWS(raw, j)
					if i >= len(raw) {
						return errNotFlat
					}
					if raw[i] == ']' {
						i++
						break
					}
					if raw[i] != ',' {
						return errNotFlat
					}
					i = skipWS(raw, i+1)
				}
			}
			v.Field(f.index).Set(reflect.ValueOf(list))
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(raw) && raw[j] >= '0' && raw[j] <= '9' {
				j++
			}
			num := raw[i:j]
			switch f.kind {
			case reflect.Int, reflect.Int64, reflect.Int32:
				n, err := strconv.ParseInt(string(num), 10, v.Field(f.index).Type().Bits())
				if err != nil || len(num) > 1 && (num[0] == '0' || num[0] == '-' && num[1] == '0') {
					return errNotFlat
				}
				v.Field(f.index).SetInt(n)
			case reflect.Uint64, reflect.Uint32:
				n, err := strconv.ParseUint(string(num), 10, v.Field(f.index).Type().Bits())
				if err != nil || len(num) > 1 && num[0] == '0' {
					return errNotFlat
				}
				v.Field(f.index).SetUint(n)
			default:
				return errNotFlat
			}
			i = j
		default:
			return errNotFlat
		}
		i = skipWS(raw, i)
		if i >= len(raw) {
			return errNotFlat
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return trailing(raw, i+1)
		default:
			return errNotFlat
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return errNotFlat
	}
	return nil
}

// plainString reads a JSON string at b[i] with no control characters and
// valid UTF-8, returning its contents (unescaped) and the index after it.
// An escape it does not handle exactly as encoding/json (a lone surrogate)
// makes it give up.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii, escaped := true, false
	j := i + 1
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			break
		}
		switch {
		case c == '\\':
			escaped = true
			j++ // NB: skip the escaped byte (it may be a quote)
		case c < 0x20:
			return nil, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	if j >= len(b) {
		return nil, 0, false
	}
	s := b[i+1 : j]
	if !ascii && !utf8.Valid(s) {
		return nil, 0, false
	}
	if escaped {
		var ok bool
		if s, ok = unescape(s); !ok {
			return nil, 0, false
		}
	}
	return s, j + 1, true
}

// unescape resolves a JSON string's escapes. It refuses surrogates (left
// to encoding/json, whose handling of unpaired ones is particular).
func unescape(s []byte) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i >= len(s) {
			return nil, false
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+5 > len(s) {
				return nil, false
			}
			r, err := strconv.ParseUint(string(s[i+1:i+5]), 16, 32)
			if err != nil || r >= 0xD800 && r < 0xE000 {
				return nil, false
			}
			out = utf8.AppendRune(out, rune(r))
			i += 4
		default:
			return nil, false
		}
	}
	return out, true
}

// decodeInto decodes raw into *p: the flat path when d can, json.Unmarshal
// otherwise.
func decodeInto[T any](d *flatDecoder, raw []byte, p *T) error {
	if d != nil {
		if d.decode(raw, reflect.ValueOf(p)) == nil {
			return nil
		}
		*p = *new(T)
	}
	return json.Unmarshal(raw, p)
}
