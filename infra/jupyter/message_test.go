package jupyter

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sampleMessage() Message {
	return Message{
		Identities: [][]byte{[]byte("id-1")},
		Header:     NewHeader("sess", "user", "execute_request"),
		Parent:     NewHeader("sess", "user", "kernel_info_request"),
		Metadata:   json.RawMessage(`{"a":1}`),
		Content:    json.RawMessage(`{"code":"1+1"}`),
		Buffers:    [][]byte{{0, 1, 2}},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s := NewSigner("secret")
	m := sampleMessage()
	frames, err := s.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 1+6+1 || string(frames[1]) != "<IDS|MSG>" {
		t.Fatalf("frames = %q", frames)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(frames[2]) {
		t.Fatalf("signature %q is not lowercase hex sha256", frames[2])
	}
	got, err := NewSigner("secret").Decode(frames)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header != m.Header || got.Parent != m.Parent || !bytes.Equal(got.Content, m.Content) ||
		!bytes.Equal(got.Metadata, m.Metadata) || !bytes.Equal(got.Buffers[0], m.Buffers[0]) || string(got.Identities[0]) != "id-1" {
		t.Fatalf("round trip: got %+v want %+v", got, m)
	}
}

func TestEncodeEmptyParentAndContent(t *testing.T) {
	frames, err := NewSigner("").Encode(Message{Header: NewHeader("s", "u", "kernel_info_request")})
	if err != nil {
		t.Fatal(err)
	}
	// No identities: delimiter, empty signature, header, {}, {}, {}.
	if len(frames[1]) != 0 || string(frames[3]) != "{}" || string(frames[4]) != "{}" || string(frames[5]) != "{}" {
		t.Fatalf("frames = %q", frames)
	}
	m, err := NewSigner("").Decode(frames)
	if err != nil || !m.Parent.IsZero() {
		t.Fatalf("decode: %v %+v", err, m.Parent)
	}
}

func TestHeaderDateHasMicroseconds(t *testing.T) {
	h := NewHeader("s", "u", "x")
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(h.Date) {
		t.Fatalf("date %q: want RFC 3339 with exactly 6 fractional digits", h.Date)
	}
	if _, err := time.Parse(DateFormat, h.Date); err != nil {
		t.Fatal(err)
	}
	if h.Version != "5.3" {
		t.Fatalf("version %q", h.Version)
	}
}

func TestNewIDUnique(t *testing.T) {
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for range 10000 {
		id := NewID()
		if seen[id] || !re.MatchString(id) {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := NewSigner("k").Encode(sampleMessage())
	if err != nil {
		t.Fatal(err)
	}
	clone := func() [][]byte { return cloneFrames(good) }
	tamperedContent := clone()
	tamperedContent[6] = []byte(`{"code":"rm -rf /"}`)
	tamperedSig := clone()
	tamperedSig[2][0] ^= 1
	upperSig := clone()
	upperSig[2] = bytes.ToUpper(upperSig[2])
	noDelim := clone()
	noDelim[1] = []byte("<IDS|MSX>")
	badJSON := [][]byte{[]byte("<IDS|MSG>"), nil, []byte(`{"msg_id":`), []byte("{}"), []byte("{}"), []byte("{}")}
	nullHeader := [][]byte{[]byte("<IDS|MSG>"), nil, []byte(`null`), []byte("{}"), []byte("{}"), []byte("{}")}
	badContent := [][]byte{[]byte("<IDS|MSG>"), nil, []byte(`{}`), []byte("{}"), []byte("{}"), []byte("{")}
	cases := []struct {
		name   string
		key    string
		frames [][]byte
		want   error
	}{
		{"tampered content", "k", tamperedContent, ErrBadSignature},
		{"tampered signature", "k", tamperedSig, ErrBadSignature},
		{"uppercase signature", "k", upperSig, ErrBadSignature},
		{"wrong key", "other", clone(), ErrBadSignature},
		{"unsigned with key", "k", badJSON, ErrBadSignature},
		{"no delimiter", "k", noDelim, ErrMalformed},
		{"too few frames", "k", clone()[:5], ErrMalformed},
		{"empty", "k", nil, ErrMalformed},
		{"invalid header json", "", badJSON, ErrMalformed},
		{"null header", "", nullHeader, ErrMalformed},
		{"invalid content json", "", badContent, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigner(tc.key).Decode(tc.frames)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts survives an
// Encode/Decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	s := NewSigner("fuzz-key")
	add := func(frames [][]byte) { f.Add(joinFrames(frames)) }
	good, _ := s.Encode(sampleMessage())
	add(good)
	plain, _ := s.Encode(Message{Header: NewHeader("s", "u", "status")})
	add(plain)
	add([][]byte{[]byte("<IDS|MSG>")})
	add([][]byte{[]byte("x"), []byte("<IDS|MSG>"), nil, []byte("{}"), []byte("{}"), []byte("{}"), []byte("{}")})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		for _, key := range []string{"fuzz-key", ""} {
			signer := NewSigner(key)
			m, err := signer.Decode(frames)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
					t.Fatalf("untyped error %v", err)
				}
				continue
			}
			again, err := signer.Encode(m)
			if err != nil {
				t.Fatalf("re-encode accepted message: %v", err)
			}
			m2, err := signer.Decode(again)
			if err != nil {
				t.Fatalf("decode re-encoded message: %v", err)
			}
			if m2.Header != m.Header || m2.Parent != m.Parent || !bytes.Equal(m2.Content, m.Content) ||
				!bytes.Equal(m2.Metadata, m.Metadata) || len(m2.Buffers) != len(m.Buffers) || len(m2.Identities) != len(m.Identities) {
				t.Fatalf("round trip changed message:\n%+v\n%+v", m, m2)
			}
		}
	})
}

// Fuzz inputs are one byte string; frames are separated by 0xFF 0x00 (an
// arbitrary marker, rare in the JSON and hex the seeds contain).
var frameSep = []byte{0xff, 0x00}

func joinFrames(frames [][]byte) []byte { return bytes.Join(frames, frameSep) }

func splitFrames(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	return bytes.Split(data, frameSep)
}

// The committed corpus must exercise the accept path too, not only errors.
func TestFuzzCorpusValidSeedsDecode(t *testing.T) {
	for _, name := range []string{"valid_signed_with_ids_and_buffers", "valid_empty_parent"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecode", name))
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Split(string(raw), "\n")[1]
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := NewSigner("fuzz-key").Decode(splitFrames([]byte(data))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
