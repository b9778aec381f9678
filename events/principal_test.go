package events_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// v1Record was written by the encoder before principals existed (record
// format 1). Every later binary must read it and, for an event without a
// principal, still write exactly these bytes.
const v1Record = "018afc95170780a89addf1c7f2eb310c657865637574696f6e2f7831026b3106686f73742d310f457865637574696f6e517565756564017b22657865637574696f6e5f6964223a227831222c226b65726e656c5f6964223a226b31222c22636f6465223a22312b31227d"

func v1Event() events.Event {
	return events.Event{Seq: 7, Time: time.Date(2026, 11, 27, 12, 0, 0, 123456000, time.UTC), Stream: "execution/x1",
		Kernel: "k1", Node: "host-1", Type: events.TypeExecutionQueued, Version: 1,
		Payload: events.ExecutionQueued{ExecutionID: "x1", KernelID: "k1", Code: "1+1"}}
}

func TestRecordWithoutPrincipalStaysFormat1(t *testing.T) {
	want, _ := hex.DecodeString(v1Record)
	got, err := events.Encode(v1Event())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("an event without a principal no longer encodes as record format 1:\n got %x\nwant %x", got, want)
	}
	e, err := events.Decode(7, want)
	if err != nil {
		t.Fatalf("a format 1 record does not decode: %v", err)
	}
	if e.Principal != "" || !reflect.DeepEqual(e.Payload, v1Event().Payload) {
		t.Fatalf("format 1 record decoded as %+v", e)
	}
}

func TestRecordWithPrincipalIsFormat2AndRoundTrips(t *testing.T) {
	e := v1Event()
	e.Principal = "alice"
	rec, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != 2 {
		t.Fatalf("record with a principal has format %d, want 2", rec[0])
	}
	got, err := events.Decode(7, rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Principal != "alice" || got.Kernel != "k1" || got.Stream != "execution/x1" || !reflect.DeepEqual(got.Payload, e.Payload) {
		t.Fatalf("format 2 round trip: %+v", got)
	}
	var in events.Interner
	for range 2 {
		interned, err := events.DecodeEnvelopeInterned(7, rec, &in)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := events.DecodeEnvelope(7, rec)
		if !reflect.DeepEqual(interned, plain) || interned.Principal != "alice" {
			t.Fatalf("interned %+v, plain %+v", interned, plain)
		}
	}

	// The checksum covers the principal: "alice" turned into "alicf" is corrupt.
	at := bytes.Index(rec, []byte("alice"))
	forged := append([]byte(nil), rec...)
	forged[at+4]++
	if _, err := events.Decode(7, forged); !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("a changed principal must fail the checksum, got %v", err)
	}
	for n := 0; n < len(rec); n++ {
		if _, err := events.Decode(7, rec[:n]); err == nil {
			t.Fatalf("truncated format 2 record (%d of %d bytes) decoded", n, len(rec))
		}
	}
}

func TestFormat2RecordWithEmptyPrincipalIsCorrupt(t *testing.T) {
	// Build a format 2 record by hand from a format 1 one: the envelope,
	// then a zero-length principal, then the payload.
	e := v1Event()
	e.Principal = "x"
	rec, _ := events.Encode(e)
	at := bytes.Index(rec, []byte{1, 'x', '{'}) // "x" after its length, before the payload
	bad := append(append(append([]byte(nil), rec[:at]...), 0), rec[at+2:]...)
	fixCRC(bad)
	if _, err := events.Decode(7, bad); !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("format 2 with an empty principal: got %v", err)
	}
}

func TestJSONFormCarriesPrincipal(t *testing.T) {
	e := v1Event()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"principal"`) {
		t.Fatalf("an event without a principal prints one: %s", b)
	}
	e.Principal = "oidc:1234"
	if b, err = json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"principal":"oidc:1234"`) {
		t.Fatalf("JSON form lacks the principal: %s", b)
	}
	var back events.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Principal != "oidc:1234" {
		t.Fatalf("principal lost reading the JSON form back: %+v", back)
	}
}

// fixCRC rewrites a record's checksum after a test edited its body.
func fixCRC(rec []byte) {
	binary.LittleEndian.PutUint32(rec[1:5], crc32.Checksum(rec[5:], crc32.MakeTable(crc32.Castagnoli)))
}
