package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureHistory creates or updates the cluster's history stream on this
// server's JetStream (EnsureHistoryStream), for callers outside infra.
func (s *Server) EnsureHistory(ctx context.Context, replicas int, maxBytes int64) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return EnsureHistoryStream(ctx, js, replicas, maxBytes)
}
