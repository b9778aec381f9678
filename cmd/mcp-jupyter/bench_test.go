package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// fsyncSamplesPerIteration is how many fsync-floor samples each iteration
// of a round-trip benchmark takes, interleaved with its round trips.
const fsyncSamplesPerIteration = 4

// BenchmarkMCPExecuteRoundTrip: execute("1+1") as an agent calls it, through
// mcp-go's in-process client against the real core (actors, durable log,
// real kernel), beside the raw zmq4 round trip to a second kernel and the
// fsync floor of the data dir's file system (a 200-byte write + fdatasync),
// all in the same run, interleaved. Target: ratio-p50 ≤ 1.05. The result's
// acknowledgement must wait for one fsync, so floor-ratio = (raw + fsync) /
// raw is the least ratio-p50 durability allows here: a miss by about that
// much is the disk, not the design.
func BenchmarkMCPExecuteRoundTrip(b *testing.B) {
	c, connect := inProcess(b)
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
	var rawLat, fsyncLat []time.Duration
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
		fsyncLat = append(fsyncLat, testkit.FsyncFloor(b, c.cfg.DataDir, fsyncSamplesPerIteration)...)
		b.StartTimer()
	}
	b.StopTimer()
	p50, rawP50, fsyncP50 := testkit.P50(ours), testkit.P50(rawLat), testkit.P50(fsyncLat)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(rawP50, "raw-p50-µs")
	b.ReportMetric(p50/rawP50, "ratio-p50")
	b.ReportMetric(fsyncP50, "fsync-p50-µs")
	b.ReportMetric((rawP50+fsyncP50)/rawP50, "floor-ratio")
}
