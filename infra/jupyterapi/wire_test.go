package jupyterapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func sampleMessage(buffers ...[]byte) Message {
	return Message{
		Channel:      "shell",
		Header:       json.RawMessage(`{"msg_id":"m1","msg_type":"execute_request","session":"s1","username":"u","date":"2026-12-01T00:00:00.000000Z","version":"5.3"}`),
		ParentHeader: json.RawMessage(`{}`),
		Metadata:     json.RawMessage(`{}`),
		Content:      json.RawMessage(`{"code":"1+1","silent":false}`),
		Buffers:      buffers,
	}
}

func sameMessage(t *testing.T, got, want Message) {
	t.Helper()
	if got.Channel != want.Channel || !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.ParentHeader, want.ParentHeader) ||
		!bytes.Equal(got.Metadata, want.Metadata) || !bytes.Equal(got.Content, want.Content) || len(got.Buffers) != len(want.Buffers) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	for i := range got.Buffers {
		if !bytes.Equal(got.Buffers[i], want.Buffers[i]) {
			t.Fatalf("buffer %d: %q, want %q", i, got.Buffers[i], want.Buffers[i])
		}
	}
}

func TestV1RoundTrip(t *testing.T) {
	for _, m := range []Message{sampleMessage(), sampleMessage([]byte("abc"), nil, []byte{0, 1, 2})} {
		got, err := DecodeV1(EncodeV1(m))
		if err != nil {
			t.Fatal(err)
		}
		if got.Buffers == nil && m.Buffers != nil {
			got.Buffers = [][]byte{}
		}
		sameMessage(t, got, m)
	}
}

// TestV1Layout pins the layout jupyter_server's serialize_msg_to_ws_v1
// writes: count, offsets (first = 8*(count+1)), channel, parts.
func TestV1Layout(t *testing.T) {
	b := EncodeV1(Message{Channel: "iopub", Header: json.RawMessage(`{"a":1}`), ParentHeader: json.RawMessage(`{}`),
		Metadata: json.RawMessage(`{}`), Content: json.RawMessage(`{}`)})
	n := binary.LittleEndian.Uint64(b)
	if n != 6 {
		t.Fatalf("offset count %d, want 6", n)
	}
	want := []uint64{56, 61, 68, 70, 72, 74}
	for i, w := range want {
		if o := binary.LittleEndian.Uint64(b[8*(i+1):]); o != w {
			t.Fatalf("offset %d = %d, want %d", i, o, w)
		}
	}
	if string(b[56:61]) != "iopub" || len(b) != 74 {
		t.Fatalf("layout: %q", b[56:])
	}
}

func TestLegacyRoundTrip(t *testing.T) {
	m := sampleMessage()
	js, bin := EncodeLegacy(m)
	if bin {
		t.Fatal("a message without buffers is text")
	}
	got, err := DecodeLegacyText(js)
	if err != nil {
		t.Fatal(err)
	}
	sameMessage(t, got, m)
	var top map[string]any
	_ = json.Unmarshal(js, &top)
	if top["msg_type"] != "execute_request" || top["channel"] != "shell" {
		t.Fatalf("legacy JSON lacks top-level msg_type/channel: %s", js)
	}

	mb := sampleMessage([]byte("xyz"), []byte{9})
	b, bin := EncodeLegacy(mb)
	if !bin {
		t.Fatal("a message with buffers is binary")
	}
	if binary.BigEndian.Uint32(b) != 3 || binary.BigEndian.Uint32(b[4:]) != 16 {
		t.Fatalf("legacy binary header: % x", b[:16])
	}
	got, err = DecodeLegacyBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	sameMessage(t, got, mb)
}

func TestLegacyNoChannelIsShell(t *testing.T) {
	m, err := DecodeLegacyText([]byte(`{"header":{"msg_id":"a","msg_type":"kernel_info_request"},"content":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != "shell" || string(m.ParentHeader) != "{}" {
		t.Fatalf("%+v", m)
	}
}

// malformedV1 are frames a client could send that are no v1 message; each
// must be refused with a FrameError naming why, never panic.
func malformedV1() map[string][]byte {
	good := EncodeV1(sampleMessage())
	short := binary.LittleEndian.AppendUint64(nil, 6)
	huge := binary.LittleEndian.AppendUint64(nil, 1<<62)
	backwards := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(backwards[16:], 40) // second offset before the first
	past := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(past[48:], 1<<40)
	notJSON := EncodeV1(Message{Channel: "shell", Header: json.RawMessage(`{not json`), Content: json.RawMessage(`{}`)})
	noHeader := EncodeV1(Message{Channel: "shell", Header: json.RawMessage(` `), Content: json.RawMessage(`{}`)})
	noHeader = bytes.Replace(noHeader, []byte("shell {}"), []byte("shell  {"), 1)
	array := EncodeV1(Message{Channel: "shell", Header: json.RawMessage(`[1]`)})
	trailing := append(append([]byte(nil), good...), 'x')
	return map[string][]byte{
		"empty": nil, "short": short, "huge count": huge, "table cut": short[:7],
		"backwards": backwards, "past end": past, "header not JSON": notJSON, "header array": array,
		"trailing bytes": trailing, "text": []byte(`{"channel":"shell"}`),
	}
}

func TestDecodeV1Malformed(t *testing.T) {
	for name, b := range malformedV1() {
		_, err := DecodeV1(b)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err %v, want a FrameError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "malformed "+SubprotocolV1) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeLegacyMalformed(t *testing.T) {
	good, _ := EncodeLegacy(sampleMessage([]byte("b")))
	bad := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(bad[8:], 1<<31)
	for name, b := range map[string][]byte{
		"empty": nil, "not JSON": []byte("hello"), "array": []byte(`[1,2]`), "two values": []byte(`{"header":{"msg_id":"a","msg_type":"b"}} {}`),
		"no header": []byte(`{"content":{}}`), "header string": []byte(`{"header":"x"}`), "content array": []byte(`{"header":{},"content":[]}`),
	} {
		if _, err := DecodeLegacyText(b); err == nil {
			t.Errorf("text %s: decoded", name)
		}
	}
	for name, b := range map[string][]byte{
		"empty": nil, "zero parts": {0, 0, 0, 0}, "many parts": {0xff, 0, 0, 0}, "offset past end": bad, "cut": good[:6],
	} {
		var fe *FrameError
		if _, err := DecodeLegacyBinary(b); !errors.As(err, &fe) {
			t.Errorf("binary %s: %v, want a FrameError", name, err)
		}
	}
}

func TestParseHeader(t *testing.T) {
	if _, err := ParseHeader(Message{Header: json.RawMessage(`{"msg_id":"a"}`)}); err == nil {
		t.Fatal("no msg_type accepted")
	}
	if _, err := ParseHeader(Message{Header: json.RawMessage(`{"msg_type":"a"}`)}); err == nil {
		t.Fatal("no msg_id accepted")
	}
	if _, err := ParseHeader(Message{Header: json.RawMessage(`{"msg_type":1}`)}); err == nil {
		t.Fatal("a number msg_type accepted")
	}
	h, err := ParseHeader(sampleMessage())
	if err != nil || h.MsgID != "m1" || h.Session != "s1" {
		t.Fatalf("%+v %v", h, err)
	}
}

// FuzzDecodeV1: any bytes decode or are refused; what decodes encodes back
// to the same bytes once normalized. The seeds run as a regular test.
func FuzzDecodeV1(f *testing.F) {
	f.Add(EncodeV1(sampleMessage()))
	f.Add(EncodeV1(sampleMessage([]byte("buf"), nil)))
	for _, b := range malformedV1() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeV1(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is no FrameError", err)
			}
			return
		}
		again, err := DecodeV1(EncodeV1(m))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if again.Channel != m.Channel || !bytes.Equal(again.Content, m.Content) || len(again.Buffers) != len(m.Buffers) {
			t.Fatalf("round trip changed the message")
		}
	})
}

func FuzzDecodeLegacy(f *testing.F) {
	js, _ := EncodeLegacy(sampleMessage())
	bin, _ := EncodeLegacy(sampleMessage([]byte("x"), []byte("yz")))
	f.Add(js)
	f.Add(bin)
	f.Add([]byte(`{"header":{"msg_id":"a","msg_type":"b"}}`))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 8, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func([]byte) (Message, error){DecodeLegacyText, DecodeLegacyBinary} {
			m, err := decode(b)
			if err != nil {
				continue
			}
			out, isBin := EncodeLegacy(m)
			var again Message
			if isBin {
				again, err = DecodeLegacyBinary(out)
			} else {
				again, err = DecodeLegacyText(out)
			}
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			if again.Channel != m.Channel || len(again.Buffers) != len(m.Buffers) {
				t.Fatalf("round trip changed the message")
			}
		}
	})
}
