package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// scrapeMetrics GETs /metrics and returns every sample by its exposition
// name, e.g. `mcp_jupyter_executions_finished_total{outcome="ok"}`.
func scrapeMetrics(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + pathMetrics)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// caughtUp waits until both projection runners of c have applied the whole
// log, so a scrape reflects every event appended so far.
func caughtUp(t testing.TB, c *core) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last := c.log.Last()
	if err := c.runner.WaitFor(ctx, last); err != nil {
		t.Fatalf("metrics projection at %d: %v", last, err)
	}
	if err := c.live.runner.WaitFor(ctx, last); err != nil {
		t.Fatalf("backlog projection at %d: %v", last, err)
	}
}

// TestMetricsAfterRealWork: a real core with a real kernel, driven over
// MCP and /ws, scraped over HTTP: each figure moves by what the work did.
func TestMetricsAfterRealWork(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	m0 := scrapeMetrics(t, srv.URL)
	if m0["mcp_jupyter_replay_duration_seconds"] <= 0 {
		t.Errorf("replay duration %v after a start", m0["mcp_jupyter_replay_duration_seconds"])
	}
	for _, zero := range []string{"mcp_jupyter_websocket_clients", "mcp_jupyter_iopub_backlog_bytes", "checkpoint_size_bytes_count",
		`mcp_jupyter_executions_finished_total{outcome="ok"}`, `mcp_jupyter_kernels{state="running"}`,
		`mcp_jupyter_kernel_restores_total{outcome="failed"}`, "mcp_jupyter_kernels_culled_total", "mcp_jupyter_auto_checkpoints_saved_total"} {
		if v, ok := m0[zero]; !ok || v != 0 {
			t.Errorf("fresh server: %s = %v (exported %v), want 0", zero, v, ok)
		}
	}

	// A WebSocket subscriber.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?token="+c.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	testkit.WaitUntil(t, 10*time.Second, "mcp_jupyter_websocket_clients = 1", func() (bool, string) {
		v := scrapeMetrics(t, srv.URL)["mcp_jupyter_websocket_clients"]
		return v == 1, fmt.Sprint("it is ", v)
	})

	// A kernel, an execution printing three lines, one raising.
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "for i in range(3): print(i, flush=True)"})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	okID, _ := sc["execution_id"].(string)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1/0"}); sc["status"] != "error" {
		t.Fatalf("execute 1/0: %v %s", sc, text)
	}
	// A checkpoint saved, loaded, and refused once tampered with.
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "metrics", "variables": []any{"i"}}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	var saved events.CheckpointSaved
	if err := c.log.ReadStream(ctx, events.CheckpointStream("metrics"), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.CheckpointSaved); ok {
			saved = p
		}
		return nil
	}); err != nil || saved.Size <= 0 {
		t.Fatalf("CheckpointSaved %+v: %v", saved, err)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "metrics"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load: %s", text)
	}
	path := filepath.Join(c.cfg.DataDir, "checkpoints", saved.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "metrics"}); !strings.HasPrefix(text, "ERROR") {
		t.Fatalf("a tampered checkpoint loaded: %s", text)
	}

	caughtUp(t, c)
	m1 := scrapeMetrics(t, srv.URL)
	d := func(name string) float64 { return m1[name] - m0[name] }
	// What the log says happened since the first scrape: the checkpoint
	// save, load and check run code on the kernel too.
	iopub, finished := 0, map[string]float64{}
	if err := c.log.Read(ctx, m0Seq(m0), c.log.Last(), func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.IOPubMessageReceived:
			iopub++
		case events.ExecutionFinished:
			finished[p.Status]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if finished["ok"] < 2 || finished["error"] != 1 || iopub < 5 {
		t.Fatalf("the log holds %v finished and %d IOPub messages: the work did not happen", finished, iopub)
	}
	for _, w := range []struct {
		name string
		want float64
	}{
		{`mcp_jupyter_kernels{state="running"}`, 1},
		{`mcp_jupyter_executions_finished_total{outcome="ok"}`, finished["ok"]},
		{`mcp_jupyter_executions_finished_total{outcome="error"}`, 1},
		{"mcp_jupyter_execution_duration_seconds_count", finished["ok"] + 1},
		{"mcp_jupyter_iopub_messages_total", float64(iopub)},
		{"mcp_jupyter_checkpoints_saved_total", 1},
		{"checkpoint_save_duration_seconds_count", 1},
		{"checkpoint_load_duration_seconds_count", 2}, // the load and the refused tampered one
		{"checkpoint_size_bytes_count", 1},
		{"checkpoint_size_bytes_sum", float64(saved.Size)},
		{"mcp_jupyter_checkpoints_loaded_total", 1},
		{"mcp_jupyter_checkpoints_rejected_total", 1},
		{"security_signature_failures_total", 1},
		{"mcp_jupyter_websocket_slow_disconnects_total", 0},
		{"mcp_jupyter_iopub_backlog_overflows_total", 0},
	} {
		if got := d(w.name); got != w.want {
			t.Errorf("%s moved by %v, want %v", w.name, got, w.want)
		}
	}
	if held := float64(c.live.backlog.Stats(k).Bytes); m1["mcp_jupyter_iopub_backlog_bytes"] != held || held <= 0 {
		t.Errorf("backlog bytes %v, the kernel's ring holds %v", m1["mcp_jupyter_iopub_backlog_bytes"], held)
	}
	if m1["mcp_jupyter_metrics_last_seq"] != float64(c.log.Last()) || d("mcp_jupyter_log_appends_total") <= 0 || m1["persistence_db_size_bytes"] <= 0 {
		t.Errorf("last seq %v (log %d), appends +%v, db size %v", m1["mcp_jupyter_metrics_last_seq"], c.log.Last(),
			d("mcp_jupyter_log_appends_total"), m1["persistence_db_size_bytes"])
	}
	if v, ok := m1["mcp_jupyter_queue_depth_max"]; okID == "" || !ok || v != 0 {
		t.Errorf("deepest queue = %v (present %v) after the executions of %s finished (execution id %q)", v, ok, k, okID)
	}

	// The subscriber leaves.
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 10*time.Second, "mcp_jupyter_websocket_clients = 0", func() (bool, string) {
		v := scrapeMetrics(t, srv.URL)["mcp_jupyter_websocket_clients"]
		return v == 0, fmt.Sprint("it is ", v)
	})
}

// m0Seq is the log position the first scrape reflected.
func m0Seq(m map[string]float64) uint64 { return uint64(m["mcp_jupyter_metrics_last_seq"]) + 1 }
