package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// metricsServer serves c's routes over HTTP for scrapes.
func metricsServer(t *testing.T, c *core) string {
	t.Helper()
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRestoreOutcomesOnMetrics: a pod replacement played with real kernels
// and two real servers on one data dir. Friday: four kernels with state —
// one auto-checkpointed whole, one holding a socket (which no checkpoint
// can hold), one whose auto-checkpoint is then tampered with on the
// volume, one never auto-checkpointed. The pod ends (its kernels die).
// Monday's server relaunches and restores all four; /metrics counts one
// restore per outcome (restored, partial, failed, none), the tampered file
// as a signature failure, and the four relaunches as restarts.
func TestRestoreOutcomesOnMetrics(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	c1, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	cl := mcpClient(t, inProcessClient(t, c1))
	code := map[string]string{"whole": "rows = list(range(1000))", "socket": "import socket\nconn = socket.socket()\nrows = [1, 2]",
		"tampered": "rows = list(range(100000))", "never": "rows = [3]"}
	kernel := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, which := range []string{"whole", "socket", "tampered", "never"} {
		kernel[which] = startKernelTool(t, cl)
		if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": kernel[which], "code": code[which]}); sc["status"] != "ok" {
			t.Fatalf("%s: execute: %s", which, text)
		}
		if which != "never" {
			if err := c1.autoCheckpoint(ctx, kernel[which]); err != nil {
				t.Fatalf("%s: auto-checkpoint: %v", which, err)
			}
		}
	}
	_ = cl.Close()
	if err := c1.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	podEnd(t, dataDir)
	files, _ := filepath.Glob(filepath.Join(dataDir, "checkpoints", "*"+autoCheckpointName(kernel["tampered"])+"*.ckpt"))
	if len(files) != 1 {
		t.Fatalf("the tampered kernel's auto-checkpoint files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	c2, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	url := metricsServer(t, c2)
	outcome := func(o string) string { return `mcp_jupyter_kernel_restores_total{outcome="` + o + `"}` }
	var m map[string]float64
	testkit.WaitUntil(t, 3*time.Minute, "four restores finished", func() (bool, string) {
		caughtUp(t, c2)
		m = scrapeMetrics(t, url)
		n := m[outcome("restored")] + m[outcome("partial")] + m[outcome("failed")] + m[outcome("none")]
		return n == 4, fmt.Sprintf("%v finished", n)
	})
	for name, want := range map[string]float64{outcome("restored"): 1, outcome("partial"): 1, outcome("failed"): 1, outcome("none"): 1,
		"security_signature_failures_total": 1, "mcp_jupyter_kernel_restarts_total": 4, `mcp_jupyter_kernels{state="running"}`: 4,
		`mcp_jupyter_kernels{state="lost"}`: 0, "mcp_jupyter_auto_checkpoints_saved_total": 3} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

// TestCullCountedOnMetrics: with a short --cull-idle, a real idle kernel
// with state is auto-checkpointed and culled by the server; /metrics counts
// the cull, the auto-checkpoint and the shutdown.
func TestCullCountedOnMetrics(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const cull = 3 * time.Second
	c, cl, _ := cullCore(t, dataDir, cull)
	url := metricsServer(t, c)
	m0 := scrapeMetrics(t, url)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 41"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	var m map[string]float64
	testkit.WaitUntil(t, cull+time.Minute, "the idle kernel culled", func() (bool, string) {
		caughtUp(t, c)
		m = scrapeMetrics(t, url)
		return m["mcp_jupyter_kernels_culled_total"] > m0["mcp_jupyter_kernels_culled_total"], fmt.Sprint("culled ", m["mcp_jupyter_kernels_culled_total"])
	})
	for name, want := range map[string]float64{"mcp_jupyter_kernels_culled_total": 1, "mcp_jupyter_kernels_shut_down_total": 1,
		"mcp_jupyter_auto_checkpoints_saved_total": 1, `mcp_jupyter_kernels{state="running"}`: 0} {
		if got := m[name] - m0[name]; got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
}

// TestAutoCheckpointCountedOnMetrics: a real kernel whose variables changed
// is auto-checkpointed by the server (as before a cull, or in the
// shutdown's pass); /metrics counts it as an auto-checkpoint and as a
// checkpoint, and an agent's own save moves only the latter. The counter is
// a fold of CheckpointSaved by name: this proves the names the server
// gives auto-checkpoints are the ones the fold recognises.
func TestAutoCheckpointCountedOnMetrics(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	url := metricsServer(t, c)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "rows = list(range(1000))"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	caughtUp(t, c)
	m0 := scrapeMetrics(t, url)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.autoCheckpoint(ctx, k); err != nil {
		t.Fatalf("auto-checkpoint of a changed idle kernel: %v", err)
	}
	caughtUp(t, c)
	m1 := scrapeMetrics(t, url)
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "mine"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	caughtUp(t, c)
	m2 := scrapeMetrics(t, url)
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
