package testkit

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// jupyterServerFrame is what jupyter_server 1.23's serialize_msg_to_ws_v1
// makes of channel "shell" and the parts below (a buffer included).
const jupyterServerFrame = "0700000000000000400000000000000045000000000000005300000000000000550000000000000057000000000000006500000000000000670000000000000073" +
	"68656c6c7b226d73675f6964223a2261227d7b7d7b7d7b22636f6465223a22312b31227d0001"

var jupyterServerParts = [][]byte{[]byte(`{"msg_id":"a"}`), []byte(`{}`), []byte(`{}`), []byte(`{"code":"1+1"}`), {0, 1}}

// TestJupyterV1MatchesJupyterServer: the client's codec writes the bytes
// jupyter_server writes and reads them back, so the channels benchmarks
// speak the real v1 framing to both servers.
func TestJupyterV1MatchesJupyterServer(t *testing.T) {
	want, _ := hex.DecodeString(jupyterServerFrame)
	if got := EncodeJupyterV1("shell", jupyterServerParts); !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%x\nwant (jupyter_server)\n%x", got, want)
	}
	ch, parts, err := DecodeJupyterV1(want)
	if err != nil || ch != "shell" || len(parts) != len(jupyterServerParts) {
		t.Fatalf("decoded %q %q, %v", ch, parts, err)
	}
	for i := range parts {
		if !bytes.Equal(parts[i], jupyterServerParts[i]) {
			t.Fatalf("part %d: %q, want %q", i, parts[i], jupyterServerParts[i])
		}
	}
}

// TestJupyterV1RefusesBadOffsets: a frame whose offsets point outside it or
// go backwards is an error, not a panic or a wrong split.
func TestJupyterV1RefusesBadOffsets(t *testing.T) {
	good, _ := hex.DecodeString(jupyterServerFrame)
	for name, frame := range map[string][]byte{
		"empty":             nil,
		"count only":        good[:8],
		"count beyond":      append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, good[8:]...),
		"truncated body":    good[:len(good)-1],
		"offsets backwards": func() []byte { b := bytes.Clone(good); b[16] = 0x60; return b }(),
	} {
		if _, _, err := DecodeJupyterV1(frame); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
