package main

import (
	"slices"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// BenchmarkRoutedExecute is the figure: an execute (`1+1`, real
// kernel, MCP over HTTP) sent to node b for a kernel node a owns, against
// the same execute sent to a itself, interleaved in one run. It reports
// both p50s and overhead-p50-ms, the routing's cost (target ≤ 1 ms). NB:
// both nodes route over one in-process NATS server; a cluster's route adds
// a loopback TCP hop (infra/natsbus BenchmarkRoutedToolCall measures the
// routing across a real route, beside a raw request/reply).
func BenchmarkRoutedExecute(b *testing.B) {
	scopes := map[string]auth.Scope{"alice": auth.ScopeRead | auth.ScopeExecute}
	a, bn := openPrincipalsServer(b, scopes), openPrincipalsServer(b, scopes)
	owners := newRoutedOwnership(b)
	owners.route(a.c, "a")
	owners.route(bn.c, "b")
	k := must(b, a.clients["alice"], "start_kernel", map[string]any{})["kernel_id"].(string)
	owners.claim("a", k)
	args := map[string]any{"kernel": k, "code": "1+1", "timeout_s": 60}
	for range 20 { // warm both paths (connections, the kernel)
		mustExecute(b, a.clients["alice"], k, "1+1")
		mustExecute(b, bn.clients["alice"], k, "1+1")
	}
	var direct, routed []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if sc, text := callTool(b, a.clients["alice"], "execute", args); sc["status"] != "ok" {
			b.Fatal(text)
		}
		direct = append(direct, time.Since(start))
		start = time.Now()
		if sc, text := callTool(b, bn.clients["alice"], "execute", args); sc["status"] != "ok" {
			b.Fatal(text)
		}
		routed = append(routed, time.Since(start))
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1e3
	}
	d, r := p50(direct), p50(routed)
	b.ReportMetric(d, "owner-p50-ms")
	b.ReportMetric(r, "routed-p50-ms")
	b.ReportMetric(r-d, "overhead-p50-ms")
}
