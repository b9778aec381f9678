package main

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// countingBackend is the real backend, counting Execution calls per
// execution: follow calls it once, then once per wake-up.
type countingBackend struct {
	*backend
	mu    sync.Mutex
	calls map[string]int
}

func (cb *countingBackend) Execution(ctx context.Context, id string, since uint64) (mcpserver.ExecutionView, error) {
	cb.mu.Lock()
	cb.calls[id]++
	cb.mu.Unlock()
	return cb.backend.Execution(ctx, id, since)
}

func (cb *countingBackend) count(id string) int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.calls[id]
}

// waitFile is Python that blocks until path exists, then prints done.
func waitFile(path string) string {
	return fmt.Sprintf("import os, time\nwhile not os.path.exists(%q):\n    time.sleep(0.01)\nprint('done', flush=True)", path)
}

func release(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGetExecutionSinceReturnsExactlyTheNew: through the tool, since=<a
// cursor> gives exactly the lines printed after it, and since=<the last
// cursor> gives none.
func TestGetExecutionSinceReturnsExactlyTheNew(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	// Read your writes: once Submit returned, the read model holds it.
	x, err := c.back.Submit(asAdmin(context.Background()), mcpserver.SubmitRequest{KernelID: k, Code: "1"})
	if err != nil || x.LastSeq == 0 {
		t.Fatalf("submit: %+v %v (LastSeq must be the append's seq)", x, err)
	}
	if got, ok := c.execs.Get(x.ID); !ok || got.LastSeq < x.LastSeq {
		t.Fatalf("the execution model does not hold %s right after Submit (%+v)", x.ID, got)
	}
	id, end := finishedExecution(t, cl, k, "for i in range(300):\n    print(f'L{i}', flush=True)")
	v, err := c.execs.Read(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []uint64 // the seq of each printed line
	for _, o := range v.Outputs {
		if o.MsgType == "stream" {
			lines = append(lines, o.Seq)
		}
	}
	if len(lines) != 300 {
		t.Fatalf("%d stream outputs, want 300", len(lines))
	}
	since := lines[199] // after L199
	sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "since": since})
	if sc["status"] != "ok" || uint64(sc["cursor"].(float64)) != end {
		t.Fatalf("since %d: %v", since, sc)
	}
	if strings.Contains(text, "L199\n") || !strings.Contains(text, "L200\n") || !strings.Contains(text, "L299") {
		t.Fatalf("since %d (after L199) got:\n%.400s", since, text)
	}
	if n := strings.Count(text, "\nL") + strings.Count(text, " L"); n < 99 {
		t.Fatalf("since %d: %d lines, want 100:\n%s", since, n, text)
	}
	_, text = callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "since": end})
	if strings.Contains(text, "L2") || strings.Contains(text, "L0") {
		t.Fatalf("since the last cursor got output:\n%s", text)
	}
}

// TestWaitWakesOnlyOnItsOwnExecution: get_execution with wait_s on a
// running execution is not woken by another kernel's output (counted), and
// is woken by its own.
func TestWaitWakesOnlyOnItsOwnExecution(t *testing.T) {
	c, connect := inProcess(t)
	cb := &countingBackend{backend: c.back, calls: map[string]int{}}
	srv := mcpserver.New(cb, mcpserver.Options{Version: version, OutputBudget: c.cfg.OutputBudget, ImageBudget: c.cfg.ImageBudget,
		AssetDir: filepath.Join(c.cfg.DataDir, "assets"), Logger: slog.New(slog.DiscardHandler)})
	inproc, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		t.Fatal(err)
	}
	counted := mcpClient(t, inproc)
	t.Cleanup(func() { _ = counted.Close() })
	cl := connect()
	a, b := startKernelTool(t, cl), startKernelTool(t, cl)
	gate := filepath.Join(t.TempDir(), "go")
	sc, _ := callTool(t, cl, "execute", map[string]any{"kernel": a, "code": waitFile(gate), "timeout_s": 0.2})
	if sc["status"] != "running" {
		t.Fatalf("execute on a: %v", sc)
	}
	id, cursor := sc["execution_id"].(string), uint64(sc["cursor"].(float64))

	type reply struct {
		sc   map[string]any
		text string
	}
	done := make(chan reply, 1)
	go func() {
		sc, text := callToolNoFatal(counted, "get_execution", map[string]any{"execution_id": id, "since": cursor, "wait_s": 30})
		done <- reply{sc, text}
	}()
	// The waiter took its change channel once it has called Execution.
	for deadline := time.Now().Add(30 * time.Second); cb.count(id) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never read its execution")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Kernel b prints 200 lines and finishes while a's waiter waits.
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": b, "code": printLines(200), "timeout_s": 60}); sc["status"] != "ok" {
		t.Fatalf("execute on b: %v %s", sc, text)
	}
	if n := cb.count(id); n != 1 {
		t.Fatalf("a's waiter read its execution %d times while only kernel b printed: woken by another kernel", n)
	}
	select {
	case r := <-done:
		t.Fatalf("a's waiter returned before its execution changed: %v %s", r.sc, r.text)
	default:
	}
	release(t, gate)
	select {
	case r := <-done:
		if r.sc["status"] != "ok" || !strings.Contains(r.text, "done") {
			t.Fatalf("a's waiter got %v\n%s", r.sc, r.text)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a's waiter not woken by its own execution finishing")
	}
	if n := cb.count(id); n < 2 {
		t.Fatalf("a's waiter read %d times, want a wake-up for its own change", n)
	}
}

// callToolNoFatal is callTool for a goroutine other than the test's (which
// must not call t.Fatal): failures come back as an "ERROR: " text.
func callToolNoFatal(cl *client.Client, name string, args map[string]any) (map[string]any, string) {
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := cl.CallTool(asAdmin(ctx), req)
	if err != nil {
		return nil, "ERROR: " + err.Error()
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		return nil, "ERROR: " + strings.Join(text, "\n")
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, strings.Join(text, "\n")
}

// TestRestartAnswersOldExecution: after a restart the read model comes back
// from its snapshot and pages the old execution's outputs from the log.
func TestRestartAnswersOldExecution(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	k := startKernelTool(t, cl)
	id, end := finishedExecution(t, cl, k, "for i in range(500):\n    print(f'old{i}', flush=True)")
	_ = cl.Close()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}

	c2, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	if seq, _, ok, err := c2.log.LoadSnapshot(executions.Name); err != nil || !ok || seq < end {
		t.Fatalf("executions snapshot at %d (ok %v, %v), the execution ended at %d", seq, ok, err, end)
	}
	if st := c2.execs.Stats(); st.Outputs != 0 {
		t.Fatalf("%d outputs in memory after a restart: the snapshot should hold statuses only", st.Outputs)
	}
	inproc2, err := client.NewInProcessClient(c2.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl2 := mcpClient(t, inproc2)
	t.Cleanup(func() { _ = cl2.Close() })
	sc, text := callTool(t, cl2, "get_execution", map[string]any{"execution_id": id})
	if sc["status"] != "ok" || uint64(sc["cursor"].(float64)) != end || !strings.Contains(text, "old0\n") || !strings.Contains(text, "old499") {
		t.Fatalf("after restart: %v\n%.300s", sc, text)
	}
	v, err := c2.execs.Read(context.Background(), id, 0)
	if err != nil || len(v.Outputs) < 500 {
		t.Fatalf("paged %d outputs (%v)", len(v.Outputs), err)
	}
	mid := v.Outputs[len(v.Outputs)/2].Seq
	w, err := c2.execs.Read(context.Background(), id, mid)
	if err != nil || len(w.Outputs) != len(v.Outputs)-len(v.Outputs)/2-1 || w.Outputs[0].Seq <= mid {
		t.Fatalf("since %d: %d outputs (%v)", mid, len(w.Outputs), err)
	}
}

// TestListKernelsFromReadModels: list_kernels shows the running execution
// and the queue depth, from the kernels and queue read models.
func TestListKernelsFromReadModels(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	gate := filepath.Join(t.TempDir(), "go")
	sc, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": waitFile(gate), "timeout_s": 0.2})
	running, _ := sc["execution_id"].(string)
	for range 2 {
		if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1", "timeout_s": 0.1}); sc["status"] != "queued" {
			t.Fatalf("second execute: %v %s", sc, text)
		}
	}
	_, text := callTool(t, cl, "list_kernels", nil)
	for _, want := range []string{`"queue_depth": 2`, `"running_execution": "` + running + `"`, `"execution_state": "busy"`, `"state": "running"`, k} {
		if !strings.Contains(text, want) {
			t.Fatalf("list_kernels lacks %s:\n%s", want, text)
		}
	}
	release(t, gate)
	if sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": running, "wait_s": 30}); sc["status"] != "ok" {
		t.Fatalf("release: %v %s", sc, text)
	}
	_, text = callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": k})
	if strings.HasPrefix(text, "ERROR") {
		t.Fatal(text)
	}
	if _, text = callTool(t, cl, "list_kernels", nil); strings.Contains(text, k) {
		t.Fatalf("a shut down kernel is listed:\n%s", text)
	}
}

// TestBackendReadsNoLog: the MCP edge's adapter answers from read models;
// it never imports the log package.
func TestBackendReadsNoLog(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "backend.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p := strings.Trim(imp.Path.Value, `"`); strings.HasSuffix(p, "/infra/eventlog") {
			t.Fatalf("backend.go imports %s: edges read read models (projections/*), not the log", p)
		}
	}
}
