package checkpoint

import (
	"context"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// heapPeak samples the Go heap until stop is closed and returns the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// cpuTime is the user+system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timingRunner adds up the wall time of each kernel.py function it runs
// (save, check, load, ...), so the benchmark shows where a load's time goes.
type timingRunner struct {
	Runner
	mu   sync.Mutex
	took map[string]time.Duration
}

func (r *timingRunner) Run(ctx context.Context, k, code string) (string, error) {
	t0 := time.Now()
	out, err := r.Runner.Run(ctx, k, code)
	d := time.Since(t0)
	fn := "other"
	for _, f := range []string{"raw_dump", "save", "check", "install", "load"} {
		if strings.Contains(code, `\n`+f+`(json.loads(`) {
			fn = f
			break
		}
	}
	r.mu.Lock()
	r.took[fn] += d
	// kernel.py says how long the pickling or unpickling itself took.
	if m := secondsRe.FindStringSubmatch(out); m != nil {
		s, _ := strconv.ParseFloat(m[1], 64)
		r.took[fn+"-work"] += time.Duration(s * float64(time.Second))
	}
	r.mu.Unlock()
	return out, err
}

var secondsRe = regexp.MustCompile(`"seconds": ([0-9.eE+-]+)`)

// BenchmarkSaveLoad250MB: save and load ~250 MB of kernel state (a
// DataFrame, an array, a dict) beside a raw dill.dump / dill.load of the
// same objects to the same disk, timed in the kernel, in the same run.
// Reports ratio-save, ratio-load, the Go heap peak during a save, the
// wall time of each kernel call (kernel-save-s, kernel-load-s: what is
// left of save-s and load-s is the server's own work and the fsync) and
// mac-GBps, the chunk MAC's throughput here.
// NB: it never fails on a missed target; it reports.
func BenchmarkSaveLoad250MB(b *testing.B) {
	st := testkit.StartStack(b, "")
	timed := &timingRunner{Runner: st, took: map[string]time.Duration{}}
	r := newRigWith(b, st, rigConfig{runner: timed})
	k := r.kernel()
	r.run(k, `import numpy as np, pandas as pd
big = pd.DataFrame(np.random.default_rng(1).standard_normal((2_500_000, 10)), columns=[f"c{i}" for i in range(10)])
arr = np.arange(6_250_000, dtype=np.float64)
meta = {"rows": len(big), "names": [f"n{i}" for i in range(10_000)]}`)
	vars := []string{"big", "arr", "meta"}
	if err := os.MkdirAll(r.kernelDir(k), 0o700); err != nil {
		b.Fatal(err)
	}
	var save, load, rawDump, rawLoad, saveCPU, loadCPU time.Duration
	var peak, size uint64
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	for i := 0; i < b.N; i++ {
		var raw struct {
			Dump float64 `json:"dump_s"`
			Load float64 `json:"load_s"`
		}
		if err := callKernel(ctx2m(b), r.st, k, "raw_dump", map[string]any{"variables": vars, "path": r.kernelDir(k) + "/raw.dill"}, &raw); err != nil {
			b.Fatal(err)
		}
		rawDump += time.Duration(raw.Dump * float64(time.Second))
		rawLoad += time.Duration(raw.Load * float64(time.Second))
		stop := make(chan struct{})
		peakc := heapPeak(stop)
		c0 := cpuTime()
		t0 := time.Now()
		m, err := r.svc.Save(ctx2m(b), SaveRequest{Name: "big", KernelID: k, Variables: vars, Overwrite: true})
		save += time.Since(t0)
		saveCPU += cpuTime() - c0
		close(stop)
		peak = max(peak, <-peakc)
		if err != nil {
			b.Fatal(err)
		}
		size = uint64(m.FileBytes)
		c0 = cpuTime()
		t0 = time.Now()
		if _, err := r.svc.Load(ctx2m(b), LoadRequest{Name: "big", KernelID: k}); err != nil {
			b.Fatal(err)
		}
		load += time.Since(t0)
		loadCPU += cpuTime() - c0
	}
	n := float64(b.N)
	for fn, d := range timed.took {
		b.ReportMetric(d.Seconds()/n, "kernel-"+fn+"-s")
	}
	b.ReportMetric(float64(size)/1e6, "MB")
	b.ReportMetric(save.Seconds()/n, "save-s")
	b.ReportMetric(load.Seconds()/n, "load-s")
	b.ReportMetric(rawDump.Seconds()/n, "raw-dump-s")
	b.ReportMetric(rawLoad.Seconds()/n, "raw-load-s")
	b.ReportMetric(save.Seconds()/rawDump.Seconds(), "ratio-save")
	b.ReportMetric(load.Seconds()/rawLoad.Seconds(), "ratio-load")
	b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/1e6, "heap-growth-MB")
	// What the server spent (user+system CPU of this process, the actor
	// system included): on a machine with a free core it overlaps the
	// kernel's work; on a busy one it adds to it.
	b.ReportMetric(saveCPU.Seconds()/n, "server-cpu-save-s")
	b.ReportMetric(loadCPU.Seconds()/n, "server-cpu-load-s")
	// The floor under both ratios: how fast this machine tags chunks.
	b.ReportMetric(checkpointfile.ChunkMACRate(256<<20), "mac-GBps")
}
