package notebook_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkReadNotebook20MB: ReadFile (read, sha256, parse) of a 1,000-cell,
// 20 MB notebook beside the baseline of plain json.Unmarshal of the same
// bytes into any, in the same run. Target: ≤ 100 ms per read.
func BenchmarkReadNotebook20MB(b *testing.B) {
	path := writeTemp(b, "big.ipynb", bigNotebook(b, 1000, 20<<10))
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	var ours, base []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		f, err := notebook.ReadFile(path)
		ours = append(ours, time.Since(start))
		if err != nil || len(f.Notebook.Cells) != 1000 {
			b.Fatalf("read: %v", err)
		}
		b.StopTimer()
		start = time.Now()
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			b.Fatal(err)
		}
		base = append(base, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	// NB: medians: the machine is shared, and a mean is one GC pause away
	// from meaningless.
	ms, baseMs := testkit.P50(ours)/1000, testkit.P50(base)/1000
	b.ReportMetric(ms, "p50-read-ms")
	b.ReportMetric(baseMs, "p50-unmarshal-ms")
	b.ReportMetric(ms/baseMs, "ratio-read")
	b.ReportMetric(float64(len(raw))/(1<<20), "MB")
}
