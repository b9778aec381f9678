package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// healthLatencies GETs /health n times (or until stop closes, at least n)
// and returns the latencies. With a bare URL too, it GETs that one right
// beside each /health (in turns, first or second) and returns its latencies
// as the second slice.
func healthLatencies(b testing.TB, url, bare string, n int, stop <-chan struct{}) (health, baseline []time.Duration) {
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	get := func(u string) time.Duration {
		start := time.Now()
		resp, err := cl.Get(u)
		if err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", u, resp.StatusCode)
		}
		return d
	}
	for i := 0; ; i++ {
		if i >= n {
			if stop == nil {
				break
			}
			select {
			case <-stop:
				return health, baseline
			default:
			}
		}
		// NB: in turns, first one then the other: the first request after
		// the pause pays for waking the process's threads.
		switch {
		case bare == "":
			health = append(health, get(url))
		case i%2 == 0:
			health = append(health, get(url))
			baseline = append(baseline, get(bare))
		default:
			baseline = append(baseline, get(bare))
			health = append(health, get(url))
		}
		time.Sleep(2 * time.Millisecond) // a probe's pace, not a flood
	}
	return health, baseline
}

func p99(lat []time.Duration) time.Duration { return quantile(lat, 0.99) }

// quantile returns the q-quantile of lat (nearest rank).
func quantile(lat []time.Duration, q float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

// bareServer is the floor of a probe in this process: a bare net/http
// server whose handler writes the same body and touches nothing, on its
// own listener. Under load, what separates /health from it is the server's
// doing; what they share is the machine's (the cores the kernels and other
// processes take, the Go scheduler).
func bareServer(b testing.TB) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	}))
	b.Cleanup(ts.Close)
	return ts.URL + pathHealth
}

// healthIdleSamples is how many /health requests measure the idle p99: at
// 1,000 samples the p99 is the 10th slowest, not one outlier. Under load a
// bare server (bareServer) is asked right after each /health: bare-p99-ms
// is the floor the machine sets.
const healthIdleSamples = 1000

// BenchmarkHealthWhileStreaming: /health p99 while 64 executions stream
// output (each prints 2,000 lines over about 2 s) through real kernels,
// beside the same server's /health p99 when idle. Figure: p99 ≤ 5 ms.
// /health goes through the server's whole handler (Host check, body limit)
// as a probe does; a probe every 2 ms gives thousands of samples while the
// executions run (samples), and the idle p99 comes from
// healthIdleSamples. It reports figures only: a miss is NOT MET in the
// report, not a failed run.
// The kernels default to 8 (8 executions queued on each, so 8 stream at a
// time) to fit a shared 2-core machine; MCP_BENCH_KERNELS=64 runs all 64 at
// once.
func BenchmarkHealthWhileStreaming(b *testing.B) {
	kernels := 8
	if v, err := strconv.Atoi(os.Getenv("MCP_BENCH_KERNELS")); err == nil && v > 0 {
		kernels = v
	}
	const executions = 64
	cfg := testConfig(b, testkit.TempDataDir(b))
	c, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.close(context.Background()) })
	b.Cleanup(func() { testkit.KillKernels(b, cfg.DataDir) })
	ts := httptest.NewServer(c.httpHandler())
	b.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	ids := make([]string, kernels)
	// NB: one at a time: concurrent starts can pick the same free ports.
	for i := range ids {
		st, err := c.sys.StartKernel(ctx, "python3", fmt.Sprintf("bench-%d", i), "", "admin")
		if err != nil {
			b.Fatalf("start kernel: %v", err)
		}
		ids[i] = st.ID
	}
	code := "import time\nfor i in range(200):\n    print('\\n'.join(f'line {i}.{j} ' + 'x'*60 for j in range(10)), flush=True)\n    time.sleep(0.01)"
	bare := bareServer(b)
	var idle, busy, busyBare []time.Duration
	b.ResetTimer()
	for n := range b.N {
		i, _ := healthLatencies(b, ts.URL+pathHealth, "", healthIdleSamples, nil)
		idle = append(idle, i...)
		for x := range executions {
			if _, err := c.sys.Submit(ctx, ids[x%kernels], scheduler.Submit{ExecutionID: fmt.Sprintf("s%d-%d", n, x), Code: code}); err != nil {
				b.Fatal(err)
			}
		}
		stop := make(chan struct{})
		go func() {
			defer close(stop)
			for {
				changed := c.queue.Changed()
				if c.unfinished() == 0 {
					return
				}
				select {
				case <-changed:
				case <-ctx.Done():
					return
				}
			}
		}()
		h, f := healthLatencies(b, ts.URL+pathHealth, bare, 300, stop)
		busy, busyBare = append(busy, h...), append(busyBare, f...)
		<-stop
	}
	b.StopTimer()
	for x := range executions {
		if v, ok := c.queue.Get(fmt.Sprintf("s0-%d", x)); !ok || v.Status != "ok" {
			b.Fatalf("execution %d: %+v", x, v)
		}
	}
	pBusy, pIdle := p99(busy), p99(idle)
	b.ReportMetric(float64(pBusy.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(pIdle.Microseconds())/1000, "idle-p99-ms")
	b.ReportMetric(float64(quantile(busy, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99(busyBare).Microseconds())/1000, "bare-p99-ms")
	b.ReportMetric(float64(pBusy)/float64(max(p99(busyBare), 1)), "ratio-vs-bare")
	b.ReportMetric(float64(len(busy)), "samples")
	b.ReportMetric(float64(len(idle)), "idle-samples")
	b.ReportMetric(float64(kernels), "kernels")
	b.ReportMetric(float64(pBusy)/float64(5*time.Millisecond), "ratio-target")
	b.ReportMetric(float64(pBusy)/float64(max(pIdle, 1)), "ratio-idle")
}
