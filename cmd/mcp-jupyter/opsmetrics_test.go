package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAutoCheckpointCountedOnMetrics: a real kernel whose variables changed
// is auto-checkpointed by the server (as before a cull, or in the
// shutdown's pass); /metrics counts it as an auto-checkpoint and as a
// checkpoint, and an agent's own save moves only the latter. The counter is
// a fold of CheckpointSaved by name: this proves the names the server
// gives auto-checkpoints are the ones the fold recognises.
func TestAutoCheckpointCountedOnMetrics(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "rows = list(range(1000))"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	caughtUp(t, c)
	m0 := scrapeMetrics(t, srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.autoCheckpoint(ctx, k); err != nil {
		t.Fatalf("auto-checkpoint of a changed idle kernel: %v", err)
	}
	caughtUp(t, c)
	m1 := scrapeMetrics(t, srv.URL)
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "mine"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	caughtUp(t, c)
	m2 := scrapeMetrics(t, srv.URL)
	for _, w := range []struct {
		name        string
		auto, agent float64
	}{
		{"mcp_jupyter_auto_checkpoints_saved_total", 1, 0},
		{"mcp_jupyter_checkpoints_saved_total", 1, 1},
		{"checkpoint_size_bytes_count", 1, 1},
	} {
		if got := m1[w.name] - m0[w.name]; got != w.auto {
			t.Errorf("the auto-checkpoint moved %s by %v, want %v", w.name, got, w.auto)
		}
		if got := m2[w.name] - m1[w.name]; got != w.agent {
			t.Errorf("the agent's save moved %s by %v, want %v", w.name, got, w.agent)
		}
	}
}
