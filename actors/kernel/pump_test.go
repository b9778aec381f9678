package kernel

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// chanConn is the part of a Conn the pump uses: its messages, fed by the
// test.
type chanConn struct {
	Conn
	msgs chan Incoming
	dead chan struct{}
}

func (c chanConn) Messages() <-chan Incoming { return c.msgs }
func (c chanConn) Dead() <-chan struct{}     { return c.dead }

// TestPumpBatchesAreBoundedInBytes: with many large messages queued, each
// batch the pump hands to the actor carries at most maxPumpBatchBytes of
// content (a larger message alone), and every message arrives once, in
// order.
func TestPumpBatchesAreBoundedInBytes(t *testing.T) {
	const n, size = 64, 300 << 10
	c := chanConn{msgs: make(chan Incoming, n), dead: make(chan struct{})}
	for i := range n {
		sz := size
		if i == 10 {
			sz = 2 * maxPumpBatchBytes
		}
		c.msgs <- Incoming{Channel: ChannelIOPub, MsgID: string(rune('a' + i%26)), Content: json.RawMessage(`"` + strings.Repeat("x", sz) + `"`)}
	}
	got := make(chan pumpBatch, n)
	ctx, cancel := context.WithCancel(context.Background())
	p := startPump(ctx, c, func(m any) {
		if b, ok := m.(pumpBatch); ok {
			got <- b
			close(b.ack)
		}
	})
	t.Cleanup(func() { cancel(); <-p.done })
	for seen := 0; seen < n; {
		select {
		case b := <-got:
			bytes := 0
			for _, m := range b.msgs {
				bytes += len(m.Content)
			}
			if len(b.msgs) > 1 && bytes > maxPumpBatchBytes {
				t.Fatalf("a batch of %d messages carries %d bytes, bound %d", len(b.msgs), bytes, maxPumpBatchBytes)
			}
			seen += len(b.msgs)
		case <-time.After(30 * time.Second):
			t.Fatalf("pump stalled after %d of %d messages", seen, n)
		}
	}
}
