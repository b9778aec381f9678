package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkReadNotebookTool20MB: read_notebook (first 50 cells, outputs
// summarised) of a 1,000-cell, 20 MB notebook through mcp-go's in-process
// client, beside the baseline of plain json.Unmarshal of the same file in
// the same run. Target: p50 ≤ 100 ms.
func BenchmarkReadNotebookTool20MB(b *testing.B) {
	_, cl, root := notebookCore(b)
	raw := testkit.BigNotebook(b, 1000, 20<<10)
	if err := os.WriteFile(filepath.Join(root, "big.ipynb"), raw, 0o644); err != nil {
		b.Fatal(err)
	}
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "read_notebook", map[string]any{"path": "big.ipynb"}
	read := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cl.CallTool(asAdmin(ctx), req)
		if err != nil || res.IsError {
			b.Fatalf("read_notebook: %v %+v", err, res)
		}
	}
	read() // warm up
	ours := make([]time.Duration, 0, b.N)
	var base []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		read()
		ours = append(ours, time.Since(start))
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
	p50, baseP50 := testkit.P50(ours), testkit.P50(base)
	b.ReportMetric(p50/1000, "p50-ms")
	b.ReportMetric(baseP50/1000, "unmarshal-p50-ms")
	b.ReportMetric(p50/baseP50, "ratio-p50")
	b.ReportMetric(float64(len(raw))/(1<<20), "MB")
}

// BenchmarkRunCellVsExecute: run_cell of a "1+1" cell beside execute("1+1")
// on the same bound kernel, alternating, in the same run. Target:
// ratio-p50 (run_cell / execute) ≤ 1.05.
func BenchmarkRunCellVsExecute(b *testing.B) {
	_, cl, _ := notebookCore(b)
	sc := must(b, cl, "create_notebook", map[string]any{"path": "bench.ipynb"})
	sc = must(b, cl, "insert_cell", map[string]any{"path": "bench.ipynb", "expected_hash": sc["sha256"], "source": "1+1"})
	cell := sc["cell_id"].(string)
	k := must(b, cl, "start_kernel", map[string]any{"kernelspec": "python3", "notebook": "bench.ipynb"})["kernel_id"].(string)
	call := func(name string, args map[string]any) {
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = name, args
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cl.CallTool(asAdmin(ctx), req)
		if err != nil || res.IsError {
			b.Fatalf("%s: %v %+v", name, err, res)
		}
		if sc, _ := res.StructuredContent.(map[string]any); sc["status"] != "ok" {
			b.Fatalf("%s: %v", name, sc)
		}
	}
	runArgs := map[string]any{"path": "bench.ipynb", "cell": cell, "timeout_s": 30}
	execArgs := map[string]any{"kernel": k, "code": "1+1", "timeout_s": 30}
	call("run_cell", runArgs) // warm up
	call("execute", execArgs)
	runs := make([]time.Duration, 0, b.N)
	var execs []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		call("run_cell", runArgs)
		runs = append(runs, time.Since(start))
		b.StopTimer()
		start = time.Now()
		call("execute", execArgs)
		execs = append(execs, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	p50, execP50 := testkit.P50(runs), testkit.P50(execs)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(execP50, "execute-p50-µs")
	b.ReportMetric(p50/execP50, "ratio-p50")
}
