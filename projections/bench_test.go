package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// benchDataVersion keys the cached benchmark log under os.TempDir: bump it
// when the generated mix or the record format changes.
const (
	benchDataVersion = "v2"
	benchEvents      = 1_000_000
	benchKernels     = 10
)

var benchOnce sync.Once

// benchLog returns the directory of a log holding about benchEvents events
// of a realistic mix, generating it once and caching it across runs.
func benchLog(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "mcp-jupyter-bench-replay-"+benchDataVersion)
	marker := filepath.Join(dir, "complete")
	var err error
	benchOnce.Do(func() {
		if _, statErr := os.Stat(marker); statErr == nil {
			return
		}
		err = generate(dir)
		if err == nil {
			err = os.WriteFile(marker, nil, 0o600)
		}
	})
	if err != nil {
		b.Fatalf("generate benchmark log: %v", err)
	}
	return dir
}

// generate writes the mix: a few KernelStarted per kernel (restarts
// included), then per execution ExecutionQueued, ExecutionStarted, four
// IOPub messages on the execution's stream (status busy, a ~100-byte
// stream output, execute_result, status idle) and ExecutionFinished.
func generate(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	l, err := eventlog.Open(dir, eventlog.Options{Node: "bench-node"})
	if err != nil {
		return err
	}
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ids := make([]string, benchKernels)
	var batch []events.Draft
	for k := range ids {
		ids[k] = events.NewID(now)
		batch = append(batch, events.Draft{Stream: events.KernelStream(ids[k]), Kernel: ids[k], Payload: events.KernelStarted{
			KernelID: ids[k], Spec: "python3", Label: fmt.Sprintf("worker-%d", k), Language: "python",
			Process: events.KernelProcess{Pid: 1000 + k, ConnFile: "/data/runtime/kernel-" + ids[k] + ".json"}}})
	}
	total := uint64(len(batch))
	for x := 0; total < benchEvents; x++ {
		k := ids[x%benchKernels]
		if x%50_000 == 49_999 { // now and then a kernel restarts
			batch = append(batch, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelRestarted{
				KernelID: k, Process: events.KernelProcess{Pid: 5000 + x}}})
			total++
		}
		batch = append(batch, benchExecution(k, events.NewID(now))...)
		total += 7
		if len(batch) >= 7000 {
			if _, err := l.Append(ctx, batch...); err != nil {
				l.Close()
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := l.Append(ctx, batch...); err != nil {
			l.Close()
			return err
		}
	}
	return l.Close()
}

func benchExecution(kernel, x string) []events.Draft {
	s := events.ExecutionStream(x)
	req := x + "-req"
	io := func(n int, typ, content string) events.Draft {
		return events.Draft{Stream: s, Kernel: kernel, Payload: events.IOPubMessageReceived{KernelID: kernel, ExecutionID: x,
			MsgID: fmt.Sprintf("%s-%d", x, n), ParentMsgID: req, MsgType: typ, Content: json.RawMessage(content)}}
	}
	return []events.Draft{
		{Stream: s, Kernel: kernel, Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "df = load(path)\nprint(df.describe())\ndf.shape"}},
		{Stream: s, Kernel: kernel, Payload: events.ExecutionStarted{ExecutionID: x, KernelID: kernel, MsgID: req}},
		io(1, "status", `{"execution_state":"busy"}`),
		io(2, "stream", `{"name":"stdout","text":"count    1000.000000\nmean        0.498231\nstd         0.288675\nmin         0.000012\n"}`),
		io(3, "execute_result", `{"execution_count":7,"data":{"text/plain":"(1000, 12)"},"metadata":{}}`),
		io(4, "status", `{"execution_state":"idle"}`),
		{Stream: s, Kernel: kernel, Payload: events.ExecutionFinished{ExecutionID: x, Status: "ok", ExecutionCount: 7}},
	}
}

func openBenchLog(b *testing.B, dir string) *eventlog.Log {
	b.Helper()
	l, err := eventlog.Open(dir, eventlog.Options{Node: "bench-node"})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// heapPeak samples HeapInuse until stopped and returns the peak.
type heapPeak struct {
	stop chan struct{}
	done chan uint64
}

func sampleHeap() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-t.C:
			case <-h.stop:
				h.done <- peak
				return
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 { close(h.stop); return <-h.done }

// cpuTime is the process's user+system CPU time: under a shared machine's
// load, events per CPU-second is steadier than events per wall second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverModels is the server's real set of read models (cmd/mcp-jupyter
// core.go and assets.go), less procs, which lives in package main.
// The executions model reads truncated outputs from the log only when asked,
// never during a replay: nil stands for its log.
func serverModels() []projections.Projection {
	return []projections.Projection{queue.NewModel(), executions.New(executions.Options{}, nil), kernels.New(),
		metrics.NewProjection(), leases.New(), backlog.New(backlog.Options{MaxMessages: 1000})}
}

func replay(b *testing.B, l projections.Log) *projections.Runner {
	b.Helper()
	r := projections.NewRunner(l, projections.Options{Rebuild: true}, serverModels()...)
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-r.Ready():
	case <-r.Done():
		b.Fatalf("replay failed: %v", r.Wait())
	}
	return r
}

// scan is the bare baseline of a replay: the log's Scan, envelopes
// decoded, no projection. It returns the wall time.
func scan(b *testing.B, l *eventlog.Log, n uint64) time.Duration {
	b.Helper()
	start := time.Now()
	var seen uint64
	if err := l.Scan(context.Background(), 0, 0, func(events.Event) error { seen++; return nil }); err != nil {
		b.Fatal(err)
	}
	if seen != n {
		b.Fatalf("scanned %d events, want %d", seen, n)
	}
	return time.Since(start)
}

// BenchmarkReplay1M rebuilds the server's read models from a
// 1,000,000-event log: the worst case of a start without snapshots. Beside
// it, in the same function, the bare scan of the same log: ratio-vs-scan is
// replay events/s over scan events/s (1 would be a free replay).
func BenchmarkReplay1M(b *testing.B) {
	l := openBenchLog(b, benchLog(b))
	defer l.Close()
	n := l.Last() - l.First() + 1
	scan(b, l, n) // warm the block cache for both, in the same state
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	heap := sampleHeap()
	cpu0 := cpuTime()
	var replayWall, scanWall time.Duration
	for b.Loop() {
		start := time.Now()
		r := replay(b, l)
		replayWall += time.Since(start)
		b.StopTimer()
		if err := r.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		scanWall += scan(b, l, n)
		b.StartTimer()
	}
	cpu := cpuTime() - cpu0
	peak := heap.Stop()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n)*float64(b.N)/replayWall.Seconds(), "events/s")
	b.ReportMetric(float64(n)*float64(b.N)/scanWall.Seconds(), "scan-events/s")
	b.ReportMetric(scanWall.Seconds()/replayWall.Seconds(), "ratio-vs-scan")
	b.ReportMetric(float64(n)*float64(b.N)/(cpu-scanWall).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/float64(b.N), "alloc-B/event")
}

// BenchmarkScan1M is the baseline of BenchmarkReplay1M as a benchmark of
// its own: the log's Scan alone, envelopes decoded, no projection.
func BenchmarkScan1M(b *testing.B) {
	l := openBenchLog(b, benchLog(b))
	defer l.Close()
	n := l.Last() - l.First() + 1
	cpu0 := cpuTime()
	for b.Loop() {
		scan(b, l, n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// upTo is the log as it was at event last: a runner over it replays to
// last and stores its snapshots there, as a server that crashed
// SnapshotEvery events after its last periodic snapshot left them.
type upTo struct {
	*eventlog.Log
	last uint64
}

func (u upTo) Last() uint64 { return u.last }

func (u upTo) FollowRaw(ctx context.Context, _ uint64, _ func(events.Event) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// restartBehind is how far behind the end of the log the snapshots are in
// BenchmarkRestartToReady1M: the server's --snapshot-every default, the
// most a restart after a crash replays.
const restartBehind = 50_000

// BenchmarkRestartToReady1M opens the 1M-event log and starts the server's
// read models from their snapshots until Ready: what a server restart
// costs. The snapshots are restartBehind events old (a crash just before
// the next periodic snapshot; a clean shutdown leaves them at the end).
// Beside it, in the same function, a full replay of the same log:
// ratio-restart-vs-replay is restart time (the median of three, warm) over
// replay time.
func BenchmarkRestartToReady1M(b *testing.B) {
	dir := benchLog(b)
	l := openBenchLog(b, dir)
	start := time.Now()
	r := replay(b, l)
	replayWall := time.Since(start)
	if err := r.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	r = replay(b, upTo{l, l.Last() - restartBehind}) // Close stores the snapshots there
	if err := r.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	restart := func() time.Duration {
		start := time.Now()
		l := openBenchLog(b, dir)
		ctx, cancel := context.WithCancel(context.Background())
		r := projections.NewRunner(l, projections.Options{}, serverModels()...)
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.Ready():
		case <-r.Done():
			b.Fatalf("runner stopped before ready: %v", r.Wait())
		case <-time.After(5 * time.Minute):
			b.Fatal("runner not ready after 5 minutes")
		}
		took := time.Since(start)
		if applied := r.Applied(); applied != l.Last() {
			b.Fatalf("ready at %d, want %d", applied, l.Last())
		}
		// NB: not Close, which would store snapshots at the end of the
		// log: the next round must restart from the same old ones.
		cancel()
		if err := r.Wait(); err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		return took
	}
	restart() // NB: warm, as the replay it is compared with was
	var restartWall time.Duration
	for b.Loop() {
		// The median of three: one restart is short enough for a burst of
		// other work on a shared machine to double it.
		ds := []time.Duration{restart(), restart(), restart()}
		slices.Sort(ds)
		restartWall += ds[1]
	}
	b.ReportMetric(float64(restartWall.Milliseconds())/float64(b.N), "ms/restart")
	b.ReportMetric(float64(replayWall.Milliseconds()), "ms/full-replay")
	b.ReportMetric(restartWall.Seconds()/float64(b.N)/replayWall.Seconds(), "ratio-restart-vs-replay")
}
