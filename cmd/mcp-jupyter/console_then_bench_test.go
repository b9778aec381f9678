package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkConsoleAtSeq: GET /ui/api/at on a log of 100,000 events (ten
// kernels running executions with outputs, written through the log's
// append API), near the end vs near the start, and vs a plain full refold
// (replayModels from the log's start to the same seq) — the cost the
// console would pay without its cache of replayed states — all in the same
// run. ns/op is the request near the end, the cache warm; metrics
// at-end/at-start (bounded: the cost does not grow with the log's length)
// and at-end/refold. A missed target is reported, never failed.
func BenchmarkConsoleAtSeq(b *testing.B) {
	const n = 100_000
	l := testkit.LogWithEvents(b, n, testkit.Mix{})
	ctx := context.Background()
	present, err := replayModels(ctx, l, l.Last(), nil)
	if err != nil {
		b.Fatal(err)
	}
	access := edgeAccess{access: access{kernels: present.Kernels}, caughtUp: func(context.Context, uint64) error { return nil }}
	api := console.New(console.Options{Replay: newConsoleReplayer(l, access,
		replayCacheLimits{entries: replayMaxEntries, bytes: replayMaxBytes}, replayEvery)}).API()
	// The kernel with the most events: its timeline is the one looked at.
	var kernel string
	if err := l.Read(ctx, 0, 0, func(e events.Event) error {
		if e.Type == events.TypeKernelStarted {
			kernel = e.Kernel
			return nil
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	adminCtx := auth.WithPrincipal(ctx, auth.Admin())
	get := func(seq uint64) {
		req := httptest.NewRequest("GET", fmt.Sprintf("/ui/api/at?seq=%d&kernel=%s", seq, kernel), nil).WithContext(adminCtx)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /ui/api/at?seq=%d: %d %s", seq, rec.Code, rec.Body.String())
		}
	}
	last := l.Last()
	// Seqs vary per request (within one cache interval) so that a request
	// never answers from a state made for exactly its seq.
	endSeq := func(i int) uint64 { return last - 600 + uint64(i%7)*37 }
	startSeq := func(i int) uint64 { return 1500 + uint64(i%7)*37 }
	// NB: warm: the first requests fold from the log's start, a bounded
	// number of events each (503 "being computed, retry" until done).
	warm := func(seq uint64) {
		for range last/replayEvery + 2 {
			req := httptest.NewRequest("GET", fmt.Sprintf("/ui/api/at?seq=%d&kernel=%s", seq, kernel), nil).WithContext(adminCtx)
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code == http.StatusOK {
				return
			}
			if rec.Code != http.StatusServiceUnavailable {
				b.Fatalf("GET /ui/api/at?seq=%d: %d %s", seq, rec.Code, rec.Body.String())
			}
		}
		b.Fatalf("the state at %d still being computed", seq)
	}
	warm(endSeq(0))
	warm(startSeq(0))
	timeOf := func(rounds int, seq func(int) uint64) time.Duration {
		start := time.Now()
		for i := range rounds {
			get(seq(i))
		}
		return time.Since(start) / time.Duration(rounds)
	}
	b.ResetTimer()
	var end time.Duration
	start := time.Now()
	for i := range b.N {
		get(endSeq(i))
	}
	end = time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	rounds := max(3, min(b.N, 30))
	atStart := timeOf(rounds, startSeq)
	var refold time.Duration
	for i := range 3 {
		t0 := time.Now()
		if _, err := replayModels(ctx, l, endSeq(i), nil); err != nil {
			b.Fatal(err)
		}
		refold += time.Since(t0)
	}
	refold /= 3
	b.ReportMetric(float64(end.Nanoseconds()), "at-end-ns")
	b.ReportMetric(float64(atStart.Nanoseconds()), "at-start-ns")
	b.ReportMetric(float64(refold.Nanoseconds()), "refold-ns")
	b.ReportMetric(float64(end)/float64(atStart), "at-end/at-start")
	b.ReportMetric(float64(end)/float64(refold), "at-end/refold")
}
