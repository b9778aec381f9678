package eventlog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestReadStreams: every event of the streams under a prefix, in sequence
// order, and nothing else; after skips what a snapshot holds.
func TestReadStreams(t *testing.T) {
	l := testkit.OpenLog(t, t.TempDir())
	var ds []events.Draft
	var want []uint64 // seqs of the asset events
	for i := range 300 {
		sum := fmt.Sprintf("%064x", i%7) // seven assets, interleaved with other streams
		ds = append(ds,
			events.Draft{Stream: events.AssetStream(sum), Payload: events.LeaseRenewed{SHA256: sum, Holder: "read"}},
			events.Draft{Stream: events.KernelStream("k"), Kernel: "k", Payload: events.KernelDied{KernelID: "k"}},
			events.Draft{Stream: events.CheckpointStream("c"), Payload: events.CheckpointDeleted{Name: "c"}})
		want = append(want, uint64(3*i+1))
	}
	testkit.AppendAll(t, l, ds)
	read := func(after uint64) []uint64 {
		t.Helper()
		var got []uint64
		err := l.ReadStreams(context.Background(), "asset/", after, func(e events.Event) error {
			if events.StreamKind(e.Stream) != "asset" || e.Payload == nil {
				t.Fatalf("seq %d: stream %s, payload %v", e.Seq, e.Stream, e.Payload)
			}
			got = append(got, e.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("asset events %v, want %v", got, want)
	}
	if got := read(want[200] - 1); fmt.Sprint(got) != fmt.Sprint(want[200:]) {
		t.Fatalf("tail after %d: %v, want %v", want[200]-1, got, want[200:])
	}
	if got := read(l.Last()); len(got) != 0 {
		t.Fatalf("after the end: %v", got)
	}
	n := 0
	if err := l.ReadStreams(context.Background(), "checkpoint/", 0, func(events.Event) error { n++; return nil }); err != nil || n != 300 {
		t.Fatalf("checkpoint events %d, %v", n, err)
	}
}
