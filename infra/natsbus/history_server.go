package natsbus

import (
	"context"
	"errors"
)

// EnsureHistory creates or updates the cluster's history stream
// (EnsureHistoryStream) with the cluster's replicas, for callers outside
// infra. maxBytes 0: DefaultHistoryMaxBytes.
func (s *Server) EnsureHistory(ctx context.Context, maxBytes int64) error {
	if s.js == nil {
		return errors.New("the cluster history needs JetStream, which is off on this server")
	}
	return EnsureHistoryStream(ctx, s.js, s.Replicas(), maxBytes)
}
