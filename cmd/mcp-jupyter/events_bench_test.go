package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const benchEvents = 1_000_000

var benchDirOnce sync.Once

// benchDataDir is a stopped server's data dir holding 1M realistic events,
// generated once and cached under os.TempDir across runs.
func benchDataDir(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "mcp-jupyter-bench-events-v1")
	marker := filepath.Join(dir, "complete")
	benchDirOnce.Do(func() {
		if _, err := os.Stat(marker); err == nil {
			return
		}
		_ = os.RemoveAll(dir)
		l, err := eventlog.Open(filepath.Join(dir, "events"), eventlog.Options{Node: "bench-node"})
		if err != nil {
			b.Fatal(err)
		}
		testkit.AppendAll(b, l, testkit.RealisticDrafts(benchEvents))
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			b.Fatal(err)
		}
	})
	return dir
}

// rawScan is the baseline: the log's own Scan over the same range, doing
// nothing with the events.
func rawScan(b *testing.B, dataDir string, to uint64) time.Duration {
	b.Helper()
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	n := 0
	if err := l.Scan(context.Background(), 0, to, func(events.Event) error { n++; return nil }); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func benchEventsTail(b *testing.B, format string) {
	dir := benchDataDir(b)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	args := []string{"tail", "--data-dir", dir}
	if format == "json" {
		args = append(args, "--json")
	}
	var ours, raw time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := runEvents(context.Background(), args, eventsIO{stdout: devnull, stderr: devnull}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.StopTimer()
		raw += rawScan(b, dir, 0)
		b.StartTimer()
	}
	b.StopTimer()
	rate, rawRate := float64(benchEvents*b.N)/ours.Seconds(), float64(benchEvents*b.N)/raw.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rawRate, "raw-scan-events/s")
	b.ReportMetric(rate/rawRate, "ratio-throughput")
}

// BenchmarkEventsTail1M: `events tail --json` over 1M events to /dev/null,
// beside a bare eventlog Scan of the same log. Target ≥ 500,000 events/s.
func BenchmarkEventsTail1M(b *testing.B) { benchEventsTail(b, "json") }

// BenchmarkEventsTailText1M: the one-line form for people (payloads decoded
// for the summaries).
func BenchmarkEventsTailText1M(b *testing.B) { benchEventsTail(b, "text") }

// BenchmarkEventsReplayMiddle1M: `events replay --until 500000` of a 1M
// log, beside a bare Scan to the same point. Target ≤ 2 s.
func BenchmarkEventsReplayMiddle1M(b *testing.B) {
	dir := benchDataDir(b)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	mid := fmt.Sprint(benchEvents / 2)
	var ours, raw time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := runEvents(context.Background(), []string{"replay", "--until", mid, "--data-dir", dir}, eventsIO{stdout: devnull, stderr: devnull}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.StopTimer()
		raw += rawScan(b, dir, benchEvents/2)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ours.Seconds()*1000/float64(b.N), "ms/replay")
	b.ReportMetric(raw.Seconds()*1000/float64(b.N), "raw-scan-ms")
	b.ReportMetric(ours.Seconds()/raw.Seconds(), "ratio-time")
}
