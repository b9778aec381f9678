package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
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
//
// In cluster mode the stream has Replicas replicas, and every node
// publishes its own events into it.
func (s *Server) createStream(ctx context.Context, maxBytes int64, maxMsgSize int32) error {
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if maxMsgSize <= 0 {
		maxMsgSize = -1 // NB: unlimited: max_payload still bounds it
	}
	cfg := jetstream.StreamConfig{
		Name: StreamName, Subjects: []string{StreamSubjects}, Storage: jetstream.FileStorage, Replicas: s.Replicas(),
		MaxBytes: maxBytes, MaxMsgSize: maxMsgSize, Discard: jetstream.DiscardOld, Duplicates: 10 * time.Minute,
		Description: "every durable mcp-jupyter event, in log order (header Mcp-Seq)",
	}
	st, err := Ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) { return s.js.CreateOrUpdateStream(ctx, cfg) })
	if err != nil {
		return fmt.Errorf("start nats: create stream %s: %w", StreamName, err)
	}
	if m := st.CachedInfo().Config.MaxMsgSize; m > 0 {
		s.streamMax.Store(int64(m))
	}
	return nil
}

// streamLimits are the events stream's bounds (Options.StreamMaxBytes,
// StreamMaxMsgSize), kept for its creation once the cluster is ready.
type streamLimits struct {
	maxBytes   int64
	maxMsgSize int32
}

// ensureAttempt bounds one attempt of Ensure.
const ensureAttempt = 3 * time.Second

// Ensure runs create (an idempotent create-or-update of a stream, bucket
// or object store) until it answers, each attempt bounded by a few
// seconds, the whole by ctx. NB: in a cluster, when several nodes create
// the same stream at once, the meta leader accepts the equal requests but
// answers only the first; the others wait for ever. Asked again, the
// stream exists and the update answers. A JetStream not ready yet
// (no meta leader), or a young cluster whose peers are not all known to
// the meta leader yet ("no suitable peers for placement"), is retried the
// same way. Every other error returns.
func Ensure[T any](ctx context.Context, create func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		v, err := create(actx)
		cancel()
		retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
			noPeersYet(err)
		if err == nil || !retry || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// jsClusterNoPeers is nats-server's JSClusterNoPeersErrF: the meta leader
// knows too few peers to place the replicas (yet).
const jsClusterNoPeers jetstream.ErrorCode = 10005

func noPeersYet(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsClusterNoPeers
}
