package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// Issue 19's figure: tools/call execute("1+1") p50 on MCP 2026-07-28 vs
// 2025-11-25, in the same run, with mcp-go's client (pinned to 2025-11-25,
// and as it comes: 2026-07-28). The two clients alternate call by call, so
// load on the machine falls on both alike. Target: ratio ≤ 1.0 (the new
// revision is no slower); reported, never failed.

// revisionExecuteLoop alternates execute("1+1") on the legacy and the
// modern client (each on its own kernel) and reports both p50s and their
// ratio.
func revisionExecuteLoop(b *testing.B, legacy, modern *client.Client) {
	b.Helper()
	clients := []*client.Client{legacy, modern}
	kernels := make([]string, 2)
	for i, cl := range clients {
		kernels[i] = startKernelTool(b, cl)
		if sc, text := callTool(b, cl, "execute", map[string]any{"kernel": kernels[i], "code": "1+1"}); sc["status"] != "ok" || !strings.Contains(text, "2") {
			b.Fatalf("warm-up execute: %v\n%s", sc, text)
		}
	}
	lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ResetTimer()
	for n := range b.N {
		// NB: which revision goes first alternates too.
		for j := range 2 {
			i := (n + j) % 2
			var req mcp.CallToolRequest
			req.Params.Name, req.Params.Arguments = "execute", map[string]any{"kernel": kernels[i], "code": "1+1"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			res, err := clients[i].CallTool(asAdmin(ctx), req)
			lat[i] = append(lat[i], time.Since(start))
			cancel()
			if err != nil || res.IsError {
				b.Fatalf("execute on %s: %v %+v", clients[i].ProtocolVersion(), err, res)
			}
		}
	}
	b.StopTimer()
	legacyP50, modernP50 := testkit.P50(lat[0])/1000, testkit.P50(lat[1])/1000
	b.ReportMetric(legacyP50, "legacy-p50-ms")
	b.ReportMetric(modernP50, "modern-p50-ms")
	b.ReportMetric(modernP50/legacyP50, "ratio-p50-modern-vs-legacy")
}

// assertRevisions fails the setup (not the figure) when a client did not
// get the revision it stands for.
func assertRevisions(b *testing.B, legacy, modern *client.Client) {
	b.Helper()
	if legacy.ProtocolVersion() != mcp.ProtocolVersion20251125 || modern.ProtocolVersion() != mcp.ProtocolVersion20260728 {
		b.Fatalf("negotiated %q and %q, want %s and %s", legacy.ProtocolVersion(), modern.ProtocolVersion(), mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728)
	}
}

// BenchmarkExecuteRevisionHTTP: both clients over Streamable HTTP to one
// server (the real handler on a real listener, bearer token, one core).
func BenchmarkExecuteRevisionHTTP(b *testing.B) {
	dataDir := testkit.TempDataDir(b)
	cfg := testConfig(b, dataDir)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.close(context.Background()) })
	b.Cleanup(func() { testkit.KillKernels(b, dataDir) })
	url := "http://127.0.0.1:" + serveOn(b, c) + pathMCP
	open := func(legacy bool) *client.Client {
		tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + c.token}))
		if err != nil {
			b.Fatal(err)
		}
		return goClient(b, tr, legacy)
	}
	legacy, modern := open(true), open(false)
	assertRevisions(b, legacy, modern)
	revisionExecuteLoop(b, legacy, modern)
}

// BenchmarkExecuteRevisionStdio: each client spawns the real binary over
// stdio, as a desktop agent does (a stdio connection has one revision, so
// two servers, each on its own data dir with its own kernel).
func BenchmarkExecuteRevisionStdio(b *testing.B) {
	bin := buildBinary(b)
	specDir := testkit.KernelSpecDir(b)
	open := func(legacy bool) *client.Client {
		dataDir := testkit.TempDataDir(b)
		b.Cleanup(func() { testkit.KillKernels(b, dataDir) })
		tr := transport.NewStdio(bin, append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir), "stdio")
		return goClient(b, tr, legacy)
	}
	legacy, modern := open(true), open(false)
	assertRevisions(b, legacy, modern)
	revisionExecuteLoop(b, legacy, modern)
}
