package events_test

import (
	"reflect"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

func TestInternedEnvelopeEqualsPlain(t *testing.T) {
	var in events.Interner
	for round := range 2 { // the second round hits the table
		for i, p := range samples() {
			e := sampleEvent(i, p)
			if i%3 == 0 {
				e.Kernel, e.Stream = "", "server/host-1"
			}
			rec, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := events.DecodeEnvelope(e.Seq, rec)
			if err != nil {
				t.Fatal(err)
			}
			interned, err := events.DecodeEnvelopeInterned(e.Seq, rec, &in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plain, interned) {
				t.Fatalf("round %d %s: interned %+v, plain %+v", round, e.Type, interned, plain)
			}
		}
	}
	if _, err := events.DecodeEnvelopeInterned(1, []byte{1, 0, 0, 0, 0, 1}, &in); err == nil {
		t.Fatal("corrupt record decoded")
	}
}
