package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// finishedExecution runs code through the execute tool until it finishes
// and returns its id and final cursor.
func finishedExecution(tb testing.TB, cl *client.Client, kernel, code string) (string, uint64) {
	tb.Helper()
	sc, text := callTool(tb, cl, "execute", map[string]any{"kernel": kernel, "code": code, "timeout_s": 300})
	if sc["status"] != "ok" {
		tb.Fatalf("execute %q: %v\n%.500s", code, sc, text)
	}
	id, _ := sc["execution_id"].(string)
	cursor, _ := sc["cursor"].(float64)
	return id, uint64(cursor)
}

// printLines prints n lines, one IOPub stream message each (flush).
func printLines(n int) string {
	return fmt.Sprintf("for i in range(%d):\n    print(i, flush=True)", n)
}

// BenchmarkGetExecutionSinceEnd: get_execution(since=<its last cursor>,
// wait_s=0) on an execution that printed 20,000 lines, beside the same call
// on one that printed 10, through mcp-go's in-process client against the
// real core and a real kernel. A reply that carries nothing new must not
// cost more for a long execution. Each iteration takes `samples` of each,
// alternating. Target: ratio-p50 ≤ 1.5.
func BenchmarkGetExecutionSinceEnd(b *testing.B) {
	const samples = 200
	c, connect := inProcess(b)
	cl := connect()
	k := startKernelTool(b, cl)
	big, bigEnd := finishedExecution(b, cl, k, printLines(20_000))
	small, smallEnd := finishedExecution(b, cl, k, printLines(10))
	outputs := 0
	for since, more := uint64(0), true; more; { // NB: one read returns at most 1 MiB
		v, err := c.execs.Read(context.Background(), big, since)
		if err != nil {
			b.Fatal(err)
		}
		outputs += len(v.Outputs)
		since, more = v.Cursor, v.More
	}
	if outputs < 20_000 {
		b.Fatalf("the long execution has %d outputs, want 20,000", outputs)
	}
	call := func(id string, since uint64) time.Duration {
		var req mcp.CallToolRequest
		req.Params.Name = "get_execution"
		req.Params.Arguments = map[string]any{"execution_id": id, "since": since, "wait_s": 0}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		res, err := cl.CallTool(asAdmin(ctx), req)
		d := time.Since(start)
		if err != nil || res.IsError {
			b.Fatalf("get_execution %s: %v %+v", id, err, res)
		}
		if sc, _ := res.StructuredContent.(map[string]any); sc["status"] != "ok" || uint64(sc["cursor"].(float64)) != since {
			b.Fatalf("get_execution %s since %d: %v", id, since, sc)
		}
		return d
	}
	for range 20 { // warm up
		call(big, bigEnd)
		call(small, smallEnd)
	}
	var bigLat, smallLat []time.Duration
	b.ResetTimer()
	for range b.N {
		for range samples {
			bigLat = append(bigLat, call(big, bigEnd))
			smallLat = append(smallLat, call(small, smallEnd))
		}
	}
	b.StopTimer()
	p50, base := testkit.P50(bigLat), testkit.P50(smallLat)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(base, "10-outputs-p50-µs")
	b.ReportMetric(p50/base, "ratio-p50")
	b.ReportMetric(float64(outputs), "outputs")
}
