package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream mirroring the events. NB: public API;
// must not change.
const StreamName = "MCPJUPYTER_EVENTS"

// StreamSubjects is what the stream captures.
const StreamSubjects = "mcpjupyter.ev.>"

// createStream creates or updates the stream. Each event carries
// Nats-Msg-Id = its sequence, so a publisher resuming from its cursor after a
// crash does not store an event twice (within the duplicate window).
//
// maxMsgSize bounds one message (0: the server's max_payload); the stream's
// bound is kept in s.streamMax so that MaxMessage honours it.
func (s *Server) createStream(maxBytes int64, maxMsgSize int32) error {
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("start nats: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if maxMsgSize <= 0 {
		maxMsgSize = -1 // NB: unlimited: max_payload still bounds it
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamName, Subjects: []string{StreamSubjects}, Storage: jetstream.FileStorage,
		MaxBytes: maxBytes, MaxMsgSize: maxMsgSize, Discard: jetstream.DiscardOld, Duplicates: 10 * time.Minute,
		Description: "every durable mcp-jupyter event, in log order (header Mcp-Seq)",
	})
	if err != nil {
		return fmt.Errorf("start nats: create stream %s: %w", StreamName, err)
	}
	if m := st.CachedInfo().Config.MaxMsgSize; m > 0 {
		s.streamMax = int64(m)
	}
	return nil
}
