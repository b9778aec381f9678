package kernel

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// TestPumpDropsUnknownIOPubTypes: a message type the protocol does not
// define is dropped and counted, never applied; known ones are recorded and
// attributed to the execution that caused them.
func TestPumpDropsUnknownIOPubTypes(t *testing.T) {
	l, err := eventlog.Open(filepath.Join(t.TempDir(), "events"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	p := &pump{kernelID: "k", log: l, logger: slog.New(slog.DiscardHandler), inflight: map[string]*inflight{},
		barriers: map[string]string{}, idleProbes: map[string]string{}, warned: map[string]bool{}}
	p.inflight["m1"] = &inflight{execID: "x1"}
	batch := []Incoming{
		{Channel: ChannelIOPub, MsgID: "a", ParentMsgID: "m1", MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"hi"}`)},
		{Channel: ChannelIOPub, MsgID: "b", ParentMsgID: "m1", MsgType: "teleport", Content: json.RawMessage(`{}`)},
		{Channel: ChannelIOPub, MsgID: "c", ParentMsgID: "other", MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"bg"}`)},
	}
	if _, err := p.persist(context.Background(), batch, nil); err != nil {
		t.Fatal(err)
	}
	if p.dropped != 1 {
		t.Fatalf("dropped %d, want 1", p.dropped)
	}
	var got []string
	_ = l.Read(context.Background(), 0, 0, func(e events.Event) error {
		msg := e.Payload.(events.IOPubMessageReceived)
		got = append(got, e.Stream+":"+msg.MsgID)
		return nil
	})
	if len(got) != 2 || got[0] != "execution/x1:a" || got[1] != "kernel/k:c" {
		t.Fatalf("recorded %v: want a on the execution's stream and c (no parent of ours) on the kernel's", got)
	}
}
