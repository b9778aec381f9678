package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// BenchmarkSchedulerRecover: what a scheduler's (re)start costs on a kernel
// whose executions printed 100,000 messages (the recovery reads the
// kernel's index and decodes and folds only its lifecycle events), beside
// a full read (every payload decoded) of the same index in the same run,
// which is what it cost before.
func BenchmarkSchedulerRecover(b *testing.B) {
	l, err := eventlog.Open(filepath.Join(b.TempDir(), "events"), eventlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	content := json.RawMessage(`{"name":"stdout","text":"a line of output\n"}`)
	for x := 0; x < 100; x++ {
		id := fmt.Sprint("x", x)
		drafts := []events.Draft{queued(id), startedEv(id)}
		for i := 0; i < 1000; i++ {
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(id), Kernel: "k", Payload: events.IOPubMessageReceived{
				KernelID: "k", ExecutionID: id, MsgID: fmt.Sprint(id, "-", i), MsgType: "stream", Content: content}})
		}
		if _, err := l.Append(ctx, append(drafts, finished(id))...); err != nil {
			b.Fatal(err)
		}
	}
	// NB: warm the block cache first, so neither side pays the cold read.
	if err := l.ReadKernel(ctx, "k", 0, func(events.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	var fold, bare time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		a := &Actor{id: "k", deps: Deps{Log: l}}
		a.recover()
		fold += time.Since(start)
		if a.state.Active != nil || len(a.state.Pending) != 0 {
			b.Fatalf("recovered %+v", a.state)
		}
		start = time.Now()
		n := 0
		if err := l.ReadKernel(ctx, "k", 0, func(events.Event) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
	}
	b.ReportMetric(float64(fold.Milliseconds())/float64(b.N), "recover-ms")
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "read-decoded-ms")
	b.ReportMetric(float64(fold)/float64(bare), "ratio-recover-vs-decoded")
}
