package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestRestartKeepsOnlyLiveKernelDirs: a server start removes the kernel
// directories (and older servers' connection files) of kernels the log does
// not hold, keeps those of live kernels, and re-attaches to a live kernel
// through the connection file in its directory.
func TestRestartKeepsOnlyLiveKernelDirs(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	runtime := filepath.Join(cfg.DataDir, "runtime")
	connect := func(c *core) *client.Client {
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, inproc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	k := startKernelTool(t, connect(c))
	finishedExecution(t, connect(c), k, "x = 41")
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ghosts := []string{jupyter.ConnectionFilePath(runtime, "ghost"), filepath.Join(runtime, jupyter.LegacyConnectionFileName("ghost"))}
	for _, g := range ghosts {
		if err := os.MkdirAll(filepath.Dir(g), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(g, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	c2, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	for _, g := range ghosts {
		if _, err := os.Stat(g); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s kept: %v", g, err)
		}
	}
	if _, err := os.Stat(jupyter.ConnectionFilePath(runtime, k)); err != nil {
		t.Fatalf("live kernel's connection file: %v", err)
	}
	sc, text := callTool(t, connect(c2), "execute", map[string]any{"kernel": k, "code": "x + 1", "timeout_s": 120})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("re-attached kernel lost its state: %v\n%s", sc, text)
	}
}
