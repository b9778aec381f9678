package events_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestDecodeErrorNamesHowToInspect damages a valid record in every way the
// codec can see — each truncation, each single-bit flip, other formats,
// unknown types and versions, bad payloads, a sequence mismatch — and checks
// that every failure is a *DecodeError for the stored sequence whose message
// says how to inspect it: "events show <seq>".
func TestDecodeErrorNamesHowToInspect(t *testing.T) {
	const seq = 4711
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	base := events.Event{Seq: seq, Time: at, Stream: "execution/x1", Kernel: "k1", Node: "host-1",
		Type: events.TypeExecutionStarted, Version: 1}
	good := events.AppendRecord(nil, base, []byte(`{"execution_id":"x1","kernel_id":"k1","msg_id":"m1"}`))
	if _, err := events.Decode(seq, good); err != nil {
		t.Fatalf("the undamaged record does not decode: %v", err)
	}
	cases := map[string][]byte{}
	for n := range len(good) {
		cases[fmt.Sprintf("truncated to %d bytes", n)] = good[:n:n]
	}
	for i := range good {
		for bit := range 8 {
			b := append([]byte(nil), good...)
			b[i] ^= 1 << bit
			cases[fmt.Sprintf("bit %d of byte %d flipped", bit, i)] = b
		}
	}
	with := func(mod func(*events.Event), payload string) []byte {
		e := base
		mod(&e)
		return events.AppendRecord(nil, e, []byte(payload))
	}
	cases["record format 0"] = append([]byte{0}, good[1:]...)
	cases["record format 2"] = append([]byte{2}, good[1:]...)
	cases["empty"] = []byte{}
	cases["unknown type"] = with(func(e *events.Event) { e.Type = "NoSuchEvent" }, `{}`)
	cases["empty type"] = with(func(e *events.Event) { e.Type = "" }, `{}`)
	cases["newer version"] = with(func(e *events.Event) { e.Version = 2 }, `{}`)
	cases["version 0"] = with(func(e *events.Event) { e.Version = 0 }, `{}`)
	cases["payload not JSON"] = with(func(*events.Event) {}, `{"execution_id":`)
	cases["payload of the wrong shape"] = with(func(*events.Event) {}, `{"execution_id":42}`)
	cases["sequence mismatch"] = with(func(e *events.Event) { e.Seq = seq + 1 }, `{}`)

	want := fmt.Sprintf("events show %d", seq)
	for name, rec := range cases {
		e, err := events.Decode(seq, rec)
		if err == nil {
			// A flip inside a JSON string can leave a valid payload only if
			// the checksum also matches, which it never does here.
			t.Errorf("%s: decoded to %+v", name, e)
			continue
		}
		var de *events.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: %T %v, want *events.DecodeError", name, err, err)
			continue
		}
		if de.Seq != seq {
			t.Errorf("%s: DecodeError names sequence %d, want %d", name, de.Seq, seq)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(de.Hint(), want) {
			t.Errorf("%s: message %q does not say %q", name, err, want)
		}
		if !errors.Is(err, events.ErrCorrupt) && !errors.Is(err, events.ErrUnknownType) &&
			!errors.Is(err, events.ErrNewerVersion) && !errors.Is(err, events.ErrUnknownVersion) && de.Type == "" {
			t.Errorf("%s: %v is neither a known class nor names its type", name, err)
		}
	}
	// The same holds for a record read without its payload and decoded later.
	e, err := events.DecodeEnvelope(seq, cases["unknown type"])
	if err != nil {
		t.Fatalf("envelope of an unknown type: %v", err)
	}
	if err := e.DecodePayload(); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("DecodePayload of an unknown type: %v, want it to say %q", err, want)
	}
}
