package natsbus

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// A realistic execute: its tools/call params and the result the owner
// encodes (text output, structured content, _meta), about 2 KB.
var (
	benchArgs   = json.RawMessage(`{"name":"execute","arguments":{"kernel_id":"4f1c2a9e-7d3b-4c1e-9a2f-0b6d8e5f3a21","code":"import math\nx = [math.sqrt(i) for i in range(10)]\nprint(x)","timeout_s":25},"_meta":{"progressToken":7}}`)
	benchResult = json.RawMessage(`{"content":[{"type":"text","text":"execution_id: 9b2e4c1a-3f5d-4e7b-8a6c-1d0f2e3b4a59\nstatus: ok\n[0.0, 1.0, 1.4142135623730951, 1.7320508075688772, 2.0, 2.23606797749979, 2.449489742783178, 2.6457513110645907, 2.8284271247461903, 3.0]\n` +
		strings.Repeat("more output of the cell, as a long print would give it ", 24) + `"}],"structuredContent":{"execution_id":"9b2e4c1a-3f5d-4e7b-8a6c-1d0f2e3b4a59","status":"ok","execution_count":12},"_meta":{"mcp-jupyter/kernel":"4f1c2a9e-7d3b-4c1e-9a2f-0b6d8e5f3a21"}}`)
)

// p50 reports the median of ds in microseconds as the benchmark's
// p50-us metric.
func reportP50(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	if len(ds) > 0 {
		b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1e3, "p50-us")
	}
}

// BenchmarkRoutedToolCall is an execute routed from node b to its owner a
// (CallTool → ServeTools → reply), the handler answering at once: the
// routing's own cost. Compare with BenchmarkRawRequestReply, the same
// bytes as a bare NATS request/reply between the same two nodes: the
// difference is what the routing adds over the transport itself.
func BenchmarkRoutedToolCall(b *testing.B) {
	sa, sb := routedPair(b)
	ra, rb := openRouter(b, sa, "a"), openRouter(b, sb, "b")
	if err := ra.ServeTools(func(context.Context, ToolCall) (ToolReply, error) {
		return ToolReply{Result: benchResult}, nil
	}); err != nil {
		b.Fatal(err)
	}
	waitInterest(b, sb, ToolSubject("a"))
	p := auth.Principal{Name: "alice", Scopes: auth.ScopeRead | auth.ScopeExecute, MaxKernels: 4}
	ds := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rep, err := rb.CallTool(ctx, "a", ToolCall{Principal: p, Tool: "execute", Args: benchArgs, Client: json.RawMessage(`{"can_ask":true}`)})
		if err != nil || len(rep.Result) != len(benchResult) {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	reportP50(b, ds)
}

func BenchmarkRawRequestReply(b *testing.B) {
	sa, sb := routedPair(b)
	na, err := sa.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer na.Close()
	nb, err := sb.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	if _, err := na.Subscribe("bench.raw", func(m *nats.Msg) { _ = m.Respond(benchResult) }); err != nil {
		b.Fatal(err)
	}
	waitInterest(b, sb, "bench.raw")
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rep, err := nb.Request("bench.raw", benchArgs, 10*time.Second)
		if err != nil || len(rep.Data) != len(benchResult) {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	reportP50(b, ds)
}
