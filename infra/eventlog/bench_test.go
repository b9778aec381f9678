package eventlog_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// benchWriters is how many goroutines append at once in the concurrent
// benchmarks: a busy server with many kernels and clients.
const benchWriters = 64

// benchDraft is the small event each benchmark op appends.
func benchDraft() events.Draft {
	return events.Draft{Stream: events.ExecutionStream("01jx0000000000000000000042"), Kernel: "01jk0000000000000000000007",
		Payload: events.ExecutionStarted{ExecutionID: "01jx0000000000000000000042", KernelID: "01jk0000000000000000000007", MsgID: "01jm0000000000000000000099"}}
}

// latencies collects per-op durations from parallel goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	b.Helper()
	slices.Sort(l.all)
	q := func(p float64) float64 {
		if len(l.all) == 0 {
			return 0
		}
		return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// runWriters runs op from benchWriters goroutines, b.N times in all, and
// reports throughput and latency quantiles.
func runWriters(b *testing.B, op func() error) {
	b.Helper()
	b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	warmUp(b, op)
	var lat latencies
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		lat.add(mine)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	lat.report(b, elapsed)
}

// warmUp runs op untimed from benchWriters goroutines, a few rounds, so
// that a short run measures the steady state (WAL file grown, goroutine
// stacks and heap sized) for the log and its raw baseline alike.
func warmUp(b *testing.B, op func() error) {
	b.Helper()
	if _, _, err := parallelOps(8*benchWriters, op); err != nil {
		b.Fatal(err) // NB: a broken setup, not a missed figure
	}
}

// BenchmarkAppend64Writers: 64 goroutines each append one small event per
// op through the log (JSON encoding, group commit, fsync, index keys).
// Compare with BenchmarkRawPebbleApplySync64Writers.
func BenchmarkAppend64Writers(b *testing.B) {
	// NB: with serve's default --min-free-disk, so the free-space check and
	// the sequence mark are on the measured path.
	l := testkit.OpenLogWith(b, testkit.TempDataDir(b), eventlog.Options{Node: "test-node", MinFree: 256 << 20})
	d := benchDraft()
	ctx := context.Background()
	runWriters(b, func() error {
		_, err := l.Append(ctx, d)
		return err
	})
	b.ReportMetric(float64(l.Stats().Appends)/float64(max(l.Stats().Commits, 1)), "appends/sync")
}

// BenchmarkAppendWithPrincipal64Writers is BenchmarkAppend64Writers with
// the principal in every event's envelope (record format 2): what every
// event a caller causes costs now. Compare with BenchmarkAppend64Writers.
func BenchmarkAppendWithPrincipal64Writers(b *testing.B) {
	l := testkit.OpenLogWith(b, testkit.TempDataDir(b), eventlog.Options{Node: "test-node", MinFree: 256 << 20})
	d := benchDraft()
	d.Principal = "oidc:0123456789abcdef"
	ctx := context.Background()
	runWriters(b, func() error {
		_, err := l.Append(ctx, d)
		return err
	})
	b.ReportMetric(float64(l.Stats().Appends)/float64(max(l.Stats().Commits, 1)), "appends/sync")
}

// BenchmarkRawPebbleApplySync64Writers is the baseline: the same 64
// goroutines each apply, with pebble.Sync, a batch of the same three keys and
// value sizes an append of benchDraft writes (record, stream index, kernel
// index), relying on Pebble's own commit pipeline to share syncs.
func BenchmarkRawPebbleApplySync64Writers(b *testing.B) {
	db, err := pebble.Open(testkit.TempDataDir(b), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	d := benchDraft()
	raw, _ := events.Encode(events.Event{Seq: 1 << 20, Time: time.Now(), Stream: d.Stream, Kernel: d.Kernel,
		Node: "test-node", Type: d.Payload.EventType(), Version: 1, Payload: d.Payload})
	var seq atomic.Uint64
	runWriters(b, func() error {
		s := seq.Add(1)
		batch := db.NewBatch()
		defer batch.Close()
		_ = batch.Set(binary.BigEndian.AppendUint64([]byte{'e'}, s), raw, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'s'}, d.Stream...), 0), s), nil, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'k'}, d.Kernel...), 0), s), nil, nil)
		return db.Apply(batch, pebble.Sync)
	})
}

// runSingle runs op b.N times from one goroutine and reports throughput
// and latency quantiles.
func runSingle(b *testing.B, op func() error) {
	b.Helper()
	for range benchWriters {
		if err := op(); err != nil {
			b.Fatal(err) // NB: a broken setup, not a missed figure
		}
	}
	lat := latencies{all: make([]time.Duration, 0, b.N)}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := op(); err != nil {
			b.Fatal(err) // NB: a broken setup, not a missed figure
		}
		lat.all = append(lat.all, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	lat.report(b, elapsed)
}

// BenchmarkAppendSingleWriter: one goroutine appends one small event per op
// and waits for it to be durable: nothing to share a sync with, so each op
// pays one WAL fsync. Beside BenchmarkRawPebbleApplySyncSingleWriter (the
// fsync floor, same run) it shows what the log adds to one durable write.
func BenchmarkAppendSingleWriter(b *testing.B) {
	l := testkit.OpenLogWith(b, testkit.TempDataDir(b), eventlog.Options{Node: "test-node", MinFree: 256 << 20})
	d := benchDraft()
	ctx := context.Background()
	runSingle(b, func() error {
		_, err := l.Append(ctx, d)
		return err
	})
}

// BenchmarkRawPebbleApplySyncSingleWriter is the floor for
// BenchmarkAppendSingleWriter: one goroutine applies, with pebble.Sync, the
// same three keys per op.
func BenchmarkRawPebbleApplySyncSingleWriter(b *testing.B) {
	db, err := pebble.Open(testkit.TempDataDir(b), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	d := benchDraft()
	raw, _ := events.Encode(events.Event{Seq: 1 << 20, Time: time.Now(), Stream: d.Stream, Kernel: d.Kernel,
		Node: "test-node", Type: d.Payload.EventType(), Version: 1, Payload: d.Payload})
	var seq uint64
	runSingle(b, func() error {
		seq++
		batch := db.NewBatch()
		defer batch.Close()
		_ = batch.Set(binary.BigEndian.AppendUint64([]byte{'e'}, seq), raw, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'s'}, d.Stream...), 0), seq), nil, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'k'}, d.Kernel...), 0), seq), nil, nil)
		return db.Apply(batch, pebble.Sync)
	})
}

// BenchmarkAppendAsync64Writers: the 64 goroutines put each event in the
// write path with AppendAsync and wait for its Pending (what the actors do,
// with their sends in between). Compare with BenchmarkAppend64Writers.
func BenchmarkAppendAsync64Writers(b *testing.B) {
	l := testkit.OpenLogWith(b, testkit.TempDataDir(b), eventlog.Options{Node: "test-node", MinFree: 256 << 20})
	d := benchDraft()
	ctx := context.Background()
	runWriters(b, func() error {
		p, err := l.AppendAsync(ctx, d)
		if err != nil {
			return err
		}
		_, err = p.Wait(ctx)
		return err
	})
	b.ReportMetric(float64(l.Stats().Appends)/float64(max(l.Stats().Commits, 1)), "appends/sync")
}

// parallelOps runs op n times from benchWriters goroutines and returns the
// wall time and each op's latency.
func parallelOps(n int, op func() error) (time.Duration, []time.Duration, error) {
	var next atomic.Int64
	var lat latencies
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range benchWriters {
		wg.Go(func() {
			var mine []time.Duration
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := op(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					break
				}
				mine = append(mine, time.Since(t0))
			}
			lat.add(mine)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return elapsed, nil, err
	}
	slices.Sort(lat.all)
	return elapsed, lat.all, nil
}

// BenchmarkAppendVsRawPebble64Writers measures the ratio of
// BenchmarkAppend64Writers to BenchmarkRawPebbleApplySync64Writers so that
// the machine's load does not decide it: the two run in alternating rounds
// (the order flipped every round) on stores open side by side, and the
// medians of the per-round ratios are reported (ratio-throughput: log
// events/s over raw; ratio-p50: log p50 over raw).
func BenchmarkAppendVsRawPebble64Writers(b *testing.B) {
	l := testkit.OpenLogWith(b, testkit.TempDataDir(b), eventlog.Options{Node: "test-node", MinFree: 256 << 20})
	db, err := pebble.Open(testkit.TempDataDir(b), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	d := benchDraft()
	ctx := context.Background()
	raw, _ := events.Encode(events.Event{Seq: 1 << 20, Time: time.Now(), Stream: d.Stream, Kernel: d.Kernel,
		Node: "test-node", Type: d.Payload.EventType(), Version: 1, Payload: d.Payload})
	var seq atomic.Uint64
	logOp := func() error {
		_, err := l.Append(ctx, d)
		return err
	}
	rawOp := func() error {
		s := seq.Add(1)
		batch := db.NewBatch()
		defer batch.Close()
		_ = batch.Set(binary.BigEndian.AppendUint64([]byte{'e'}, s), raw, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'s'}, d.Stream...), 0), s), nil, nil)
		_ = batch.Set(binary.BigEndian.AppendUint64(append(append([]byte{'k'}, d.Kernel...), 0), s), nil, nil)
		return db.Apply(batch, pebble.Sync)
	}
	const rounds = 12
	// NB: at least 1000 appends a round (16 per writer), whatever b.N:
	// shorter rounds measure start-up more than the steady state.
	per := max(b.N/(2*rounds), 1000)
	var throughput, p50 []float64
	warmUp(b, logOp)
	warmUp(b, rawOp)
	b.ResetTimer()
	for r := range rounds {
		var logT, rawT time.Duration
		var logLat, rawLat []time.Duration
		var err error
		if r%2 == 0 {
			logT, logLat, err = parallelOps(per, logOp)
			if err == nil {
				rawT, rawLat, err = parallelOps(per, rawOp)
			}
		} else {
			rawT, rawLat, err = parallelOps(per, rawOp)
			if err == nil {
				logT, logLat, err = parallelOps(per, logOp)
			}
		}
		if err != nil {
			b.Fatal(err) // NB: a broken setup, not a missed figure
		}
		throughput = append(throughput, rawT.Seconds()/logT.Seconds())
		p50 = append(p50, float64(logLat[len(logLat)/2])/float64(max(rawLat[len(rawLat)/2], 1)))
	}
	b.StopTimer()
	slices.Sort(throughput)
	slices.Sort(p50)
	b.ReportMetric(throughput[rounds/2], "ratio-throughput")
	b.ReportMetric(p50[rounds/2], "ratio-p50")
}

// quietLogger keeps Pebble's informational lines out of benchmark output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
