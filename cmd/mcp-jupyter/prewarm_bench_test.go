package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkStartKernelPooled: start_kernel as an agent calls it, through
// mcp-go's in-process client against the real core, with --prewarm 1
// (pooled-p50-ms, target ≤ 50 ms), beside start_kernel of a kernelspec the
// pool does not hold — the same kernel under another name — in the same
// run (fresh-p50-ms), and what each idle pooled kernel holds resident
// (idle-rss-MiB-per-kernel, from /proc). Each start is measured with the
// pool full and nothing else starting; each kernel is shut down
// unmeasured. A missed target is reported, never failed.
func BenchmarkStartKernelPooled(b *testing.B) {
	cfg := testConfig(b, testkit.TempDataDir(b))
	// NB: testConfig set JUPYTER_PATH to a dir holding the python3 spec.
	specDir := os.Getenv("JUPYTER_PATH")
	spec, err := os.ReadFile(filepath.Join(specDir, "kernels", "python3", "kernel.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(specDir, "kernels", "python3-fresh"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(specDir, "kernels", "python3-fresh", "kernel.json"), spec, 0o644); err != nil {
		b.Fatal(err)
	}
	cfg.Prewarm = map[string]int{"python3": 1}
	c, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.close(context.Background()) })
	b.Cleanup(func() { testkit.KillKernels(b, cfg.DataDir) })
	cl := mcpClient(b, inProcessClient(b, c))
	b.Cleanup(func() { _ = cl.Close() })

	start := func(spec string) (string, int, time.Duration) {
		t0 := time.Now()
		sc, text := callTool(b, cl, "start_kernel", map[string]any{"kernelspec": spec})
		took := time.Since(t0)
		if sc == nil {
			b.Fatalf("start_kernel %s: %s", spec, text)
		}
		return sc["kernel_id"].(string), pidOf(b, sc), took
	}
	shutdown := func(id string) {
		if _, text := callTool(b, cl, "shutdown_kernel", map[string]any{"kernel": id}); strings.HasPrefix(text, "ERROR") {
			b.Fatalf("shutdown_kernel: %s", text)
		}
	}
	var pooled, fresh []time.Duration
	var rss float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		pids := waitPool(b, c, 1)
		rss += float64(jupyter.ResidentBytes(pids[0])) / (1 << 20)
		b.StartTimer()
		id, pid, took := start("python3")
		b.StopTimer()
		if pid != pids[0] {
			b.Fatalf("start_kernel got pid %d, not the pooled %d: the pool was not used", pid, pids[0])
		}
		pooled = append(pooled, took)
		shutdown(id)
		waitPool(b, c, 1) // NB: no refill runs beside the fresh start
		b.StartTimer()
		id, _, took = start("python3-fresh")
		b.StopTimer()
		fresh = append(fresh, took)
		shutdown(id)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(testkit.P50(pooled)/1e3, "pooled-p50-ms")
	b.ReportMetric(testkit.P50(fresh)/1e3, "fresh-p50-ms")
	b.ReportMetric(rss/float64(b.N), "idle-rss-MiB-per-kernel")
}
