package natsbus_test

import (
	"context"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// TestPublisherCursorIsAFloor: retention keeps the events after the saved
// cursor (where a restart resumes), not only those after what was published.
func TestPublisherCursorIsAFloor(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{})
	pub := natsbus.NewPublisher(l, bus, natsbus.PublisherOptions{Cursor: "natsbus", CursorEvery: 4})
	if floor, held := pub.LogFloor(); !held || floor != 0 {
		t.Fatalf("floor before Start = %d, %v; want 0 (the cursor is not loaded yet)", floor, held)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	var last uint64
	for _, d := range kernelDrafts("k1", 10) { // one at a time: each is confirmed before the next
		evs, err := l.Append(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		last = evs[0].Seq
		waitConfirmed(t, pub, last)
	}
	// Saved every 4 events: the cursor lags what was published.
	if floor, held := pub.LogFloor(); !held || floor > last-1 || floor < last-4 {
		t.Fatalf("floor = %d, %v after publishing up to %d with a cursor saved every 4; want the saved cursor + 1", floor, held, last)
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if floor, _ := pub.LogFloor(); floor != last+1 {
		t.Fatalf("floor after Close (cursor saved at %d) = %d, want %d", last, floor, last+1)
	}
}
