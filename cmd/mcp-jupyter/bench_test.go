package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkMCPExecuteRoundTrip: execute("1+1") as an agent calls it, through
// mcp-go's in-process client against the real core (actors, durable log,
// real kernel), beside the raw zmq4 round trip to a second kernel in the
// same run. Iterations alternate the two. Target: ratio-p50 ≤ 1.15.
func BenchmarkMCPExecuteRoundTrip(b *testing.B) {
	_, connect := inProcess(b)
	cl := connect()
	raw := testkit.StartKernel(b)

	k := startKernelTool(b, cl)
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "execute", map[string]any{"kernel": k, "code": "1+1"}
	execute := func() (*mcp.CallToolResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return cl.CallTool(asAdmin(ctx), req)
	}
	if sc, text := callTool(b, cl, "execute", req.Params.Arguments.(map[string]any)); sc["status"] != "ok" || !strings.Contains(text, "2") {
		b.Fatalf("warm-up execute: %v\n%s", sc, text)
	}
	testkit.RawRoundTrips(b, raw, 0) // warm up

	ours := make([]time.Duration, 0, b.N)
	var rawLat []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		res, err := execute()
		ours = append(ours, time.Since(start))
		if err != nil || res.IsError {
			b.Fatalf("execute: %v %+v", err, res)
		}
		b.StopTimer()
		start = time.Now()
		if r := testkit.RawExecute(b, raw.Client, "1+1", 30*time.Second); r["status"] != "ok" {
			b.Fatalf("raw reply = %v", r)
		}
		rawLat = append(rawLat, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	p50, rawP50 := testkit.P50(ours), testkit.P50(rawLat)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(rawP50, "raw-p50-µs")
	b.ReportMetric(p50/rawP50, "ratio-p50")
}
