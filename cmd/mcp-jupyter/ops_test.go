package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// httpMCP connects an mcp-go client to the server's /mcp with its token.
func httpMCP(t testing.TB, addr, dataDir string) *client.Client {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dataDir, mcpserver.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewStreamableHttpClient("http://"+addr+pathMCP,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}))
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, c)
	t.Cleanup(func() { cl.Close() })
	return cl
}

type opsEnv struct {
	bin, dataDir string
	env          []string
}

func newOpsEnv(t *testing.T) opsEnv {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	return opsEnv{bin: bin, dataDir: dataDir, env: []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(t)}}
}

// readLog opens the stopped server's log read-only and returns every event.
func readLog(t testing.TB, dataDir string) []events.Event {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the log after the server stopped: %v", err)
	}
	defer l.Close()
	var out []events.Event
	if err := l.Read(context.Background(), 0, l.Last(), func(e events.Event) error {
		e.Raw = append([]byte(nil), e.Raw...)
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("the log does not decode after the server stopped: %v", err)
	}
	return out
}

// TestProbesAndMetricsOnARealServer: every endpoint of the real binary.
func TestProbesAndMetricsOnARealServer(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env)
	rd := waitReady(t, s.addr, 90*time.Second)
	for _, check := range []string{"replay", "log", "nats", "kernels"} {
		if rd.Checks[check] != "ok" {
			t.Errorf("ready but check %s = %q", check, rd.Checks[check])
		}
	}
	if code, body := get(t, "http://"+s.addr+pathHealth); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("/health: %d %s", code, body)
	}
	if code, body := get(t, "http://"+s.addr+pathLivez); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/livez: %d %s", code, body)
	}
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('hello')"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	code, body := get(t, "http://"+s.addr+pathMetrics)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`mcp_jupyter_executions{state="queued"} 0`, `mcp_jupyter_executions_finished_total{outcome="ok"} 1`,
		"mcp_jupyter_queue_depth_max 0", "mcp_jupyter_execution_duration_seconds_bucket",
		`mcp_jupyter_kernels{state="running"} 1`, "mcp_jupyter_kernel_restarts_total 0", "mcp_jupyter_kernel_deaths_total 0",
		"mcp_jupyter_iopub_messages_total ", "mcp_jupyter_iopub_backlog_bytes ", "mcp_jupyter_iopub_backlog_overflows_total 0",
		"mcp_jupyter_websocket_clients 0", "mcp_jupyter_websocket_slow_disconnects_total 0", "mcp_jupyter_assets ",
		"mcp_jupyter_asset_bytes ", "asset_lease_expiry_count 0", "mcp_jupyter_gc_deletions_total 0", "persistence_db_size_bytes ",
		"mcp_jupyter_log_commit_duration_seconds_sum ", "mcp_jupyter_replay_duration_seconds ",
		"checkpoint_save_duration_seconds_count 0", "checkpoint_load_duration_seconds_count 0", "checkpoint_size_bytes_count 0",
		"missing_dependencies_count 0", "security_signature_failures_total 0", "zombie_process_cleanup_count 0",
		"process_resident_memory_bytes ", "go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Values, not only names: the execution's output is in the backlog.
	if m := scrapeMetrics(t, "http://"+s.addr); m["mcp_jupyter_iopub_backlog_bytes"] <= 0 || m["mcp_jupyter_iopub_messages_total"] <= 0 {
		t.Errorf("after an execution: backlog %v bytes, %v IOPub messages", m["mcp_jupyter_iopub_backlog_bytes"], m["mcp_jupyter_iopub_messages_total"])
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.Logs())
	}
}

// waitDraining waits until /readyz reports the shutdown began.
func waitDraining(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + pathReadyz)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && strings.Contains(string(b), "shutting down") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("/readyz never said the server is shutting down")
}

// executionIn folds one execution's events from a log read.
func executionIn(evs []events.Event, id string) (queue.Execution, string) {
	var x queue.Execution
	var out strings.Builder
	for _, e := range evs {
		if e.Stream != events.ExecutionStream(id) {
			continue
		}
		if queue.IsExecutionEvent(e.Type) {
			x = queue.ApplyExecution(x, e)
		} else if p, ok := e.Payload.(events.IOPubMessageReceived); ok && p.MsgType == "stream" {
			out.Write(p.Content)
		}
	}
	return x, out.String()
}

const countdown = "import time\nfor i in range(%d):\n    print('tick', i, flush=True)\n    time.sleep(1)\nprint('done')"

// TestSIGTERMLetsARunningExecutionFinish: SIGTERM during an execution
// refuses new work with a clear message, lets the execution finish, records
// its output, closes the log (ServerStopped last) and exits 0 within the
// grace.
func TestSIGTERMLetsARunningExecutionFinish(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--shutdown-grace", "20s")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": fmt.Sprintf(countdown, 4), "timeout_s": 1, "execution_id": "long-one"})
	if sc["status"] != "running" {
		t.Fatalf("execute should still run after 1 s: %v %s", sc, text)
	}
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDraining(t, s.addr)
	_, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1+1", "timeout_s": 5})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "shutting down") || !strings.Contains(text, "retry") {
		t.Fatalf("a new execute during shutdown: %s", text)
	}
	if err := s.wait(t, 25*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.Logs())
	}
	took := time.Since(sent)
	if took > 20*time.Second {
		t.Fatalf("shutdown took %s, more than the 20s grace", took)
	}
	evs := readLog(t, e.dataDir)
	x, out := executionIn(evs, "long-one")
	if x.Status != queue.StatusOK || !strings.Contains(out, "done") {
		t.Fatalf("the running execution did not finish before exit: status %s, output %q\n%s", x.Status, out, s.Logs())
	}
	if last := evs[len(evs)-1]; last.Type != events.TypeServerStopped {
		t.Fatalf("last event %s, want ServerStopped", last.Type)
	}
	t.Logf("SIGTERM to exit: %s (execution needed about 3 s more)", took.Round(time.Millisecond))
}

// TestSIGTERMGraceRunsOutNothingLost: an execution longer than the grace
// (held by a sentinel) is left running in its kernel; the server exits
// within the grace, and the next start re-attaches, re-adopts the
// execution and — released only then — records it ok with its output.
func TestSIGTERMGraceRunsOutNothingLost(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--shutdown-grace", "3s")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	hold := testkit.NewSentinel(t)
	sc, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": hold.Code("print('released')"), "timeout_s": 1, "execution_id": "longer"})
	if sc["status"] != "running" {
		t.Fatalf("execute: %v", sc)
	}
	sent := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.Logs())
	}
	if took := time.Since(sent); took > 4*time.Second {
		t.Fatalf("shutdown took %s with a 3s grace", took)
	}
	x, _ := executionIn(readLog(t, e.dataDir), "longer")
	if x.Status.Done() {
		t.Fatalf("the execution cannot have finished yet: %s", x.Status)
	}
	t.Setenv("JUPYTER_PATH", e.env[1][len("JUPYTER_PATH="):])
	c, err := openCore(context.Background(), testConfig(t, e.dataDir), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for reattached := false; !reattached; {
		changed := c.log.Changed() // NB: before reading, so no commit is missed
		err := c.log.ReadKernel(ctx, k, 0, func(e events.Event) error {
			reattached = reattached || e.Type == events.TypeKernelReattached
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if reattached {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the kernel was never re-attached after the restart")
		}
	}
	hold.Release()
	for {
		changed := c.queue.Changed()
		if x, ok := c.queue.Get("longer"); ok && x.Status.Done() {
			if x.Status != queue.StatusOK {
				t.Fatalf("re-adopted execution ended %s, want ok: %+v", x.Status, x)
			}
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the execution left running at shutdown never got an outcome after the restart")
		}
	}
	var out string
	_ = c.log.ReadStream(ctx, events.ExecutionStream("longer"), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.IOPubMessageReceived); ok {
			out += string(p.Content)
		}
		return nil
	})
	if !strings.Contains(out, "released") {
		t.Fatalf("the re-adopted execution's output after the restart is missing: %s", out)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM during the drain exits at
// once with status 130; the log is consistent (opens and decodes, the
// execution's start is there).
func TestSecondSignalExitsAtOnce(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--shutdown-grace", "25s")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": fmt.Sprintf(countdown, 20), "timeout_s": 1, "execution_id": "cut"})
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waitDraining(t, s.addr)
	sent := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	err := s.wait(t, 5*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("second signal: %v, want exit status 130", err)
	}
	if took := time.Since(sent); took > 2*time.Second {
		t.Fatalf("second signal took %s to exit", took)
	}
	x, _ := executionIn(readLog(t, e.dataDir), "cut")
	if x.Status != queue.StatusRunning {
		t.Fatalf("execution after a forced exit: %q, want running (resumed at the next start)", x.Status)
	}
}

// TestReadinessDuringALongReplay: while the read models replay a large log,
// /readyz answers 503 with the progress in its body; then 200.
func TestReadinessDuringALongReplay(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, filepath.Join(dataDir, "events"))
	var ds []events.Draft
	for i := range 20_000 { // 100,000 events
		id := fmt.Sprintf("x%06d", i)
		st := events.ExecutionStream(id)
		out := events.IOPubMessageReceived{KernelID: "k", ExecutionID: id, MsgID: id + "o", MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"x\n"}`)}
		ds = append(ds, events.Draft{Stream: st, Kernel: "k", Payload: events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "x"}},
			events.Draft{Stream: st, Kernel: "k", Payload: events.ExecutionStarted{ExecutionID: id, KernelID: "k", MsgID: id}},
			events.Draft{Stream: st, Kernel: "k", Payload: out}, events.Draft{Stream: st, Kernel: "k", Payload: out},
			events.Draft{Stream: st, Kernel: "k", Payload: events.ExecutionFinished{ExecutionID: id, Status: "ok"}})
	}
	testkit.AppendAll(t, l, ds)
	l.Close()
	c := newCore(testConfig(t, dataDir), discard())
	mux := http.NewServeMux()
	c.routes(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	if code, body := get(t, ts.URL+pathReadyz); code != 503 || !strings.Contains(body, stageOpening) {
		t.Fatalf("/readyz before the start: %d %s", code, body)
	}
	opened := make(chan error, 1)
	began := time.Now()
	go func() { opened <- c.open(context.Background()) }()
	t.Cleanup(func() { _ = c.close(context.Background()) })
	var replaying string
	for {
		code, body := get(t, ts.URL+pathReadyz)
		if code == 200 {
			break
		}
		if code != 503 {
			t.Fatalf("/readyz during the start: %d %s", code, body)
		}
		if strings.Contains(body, "replaying the event log: ") && replaying == "" {
			replaying = body
		}
		select {
		case err := <-opened:
			if err != nil {
				t.Fatal(err)
			}
			opened <- nil
		default:
		}
		if code, body := get(t, ts.URL+pathMCP); code != 503 && code != 401 {
			t.Fatalf("/mcp during the start: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("ready after %s", time.Since(began))
	if replaying == "" {
		t.Fatal("never saw /readyz report the replay in progress")
	}
	var rd readiness
	if err := json.Unmarshal([]byte(replaying), &rd); err != nil || rd.Status != "not ready" || !strings.HasPrefix(rd.Reason, "replay: replaying the event log") {
		t.Fatalf("/readyz during replay: %s", replaying)
	}
	t.Logf("during replay: %s", strings.TrimSpace(replaying))
}

// TestLogsCarryComponentsAndIDs: JSON log lines name their component (once
// each) and the kernel and execution they concern; the process runs one
// actor system.
func TestLogsCarryComponentsAndIDs(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--log-level", "debug")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "two = 1+1", "execution_id": "logged"})
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	systems := 0
	for _, line := range strings.Split(strings.TrimSpace(s.Logs()), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the token notice
		}
		// NB: checked for the actors' lines (kernel, scheduler, the actor
		// system); other packages still repeat the key their caller set.
		if n := strings.Count(line, `"component":`); n != 1 && ownComponent(line) {
			t.Errorf("a log line has %d component keys, want 1: %s", n, line)
		}
		if strings.Contains(line, `"msg":"actor system started"`) {
			systems++
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		// NB: counted on the raw keys: encoding/json keeps the last of
		// duplicate keys without a word.
		if n := countKey(t, line, componentKey); n != 1 {
			t.Errorf("a log line has %d component keys, want 1: %s", n, line)
		}
		comp, _ := m["component"].(string)
		if comp == "" {
			t.Errorf("a log line has no component: %s", line)
		}
		seen[comp] = true
		// NB: the shutdown's auto-checkpoint of k runs as an execution of
		// its own (issue 18): every ExecutionFinished carries its ids, and
		// the agent's is among them.
		if m["msg"] == events.TypeExecutionFinished && (m["execution_id"] == nil || m["execution_id"] == "" || m["kernel_id"] != k || comp != "scheduler") {
			t.Errorf("ExecutionFinished line lacks its ids: %s", line)
		}
		if m["msg"] == events.TypeKernelStarted && m["kernel_id"] != k {
			t.Errorf("KernelStarted line lacks its kernel id: %s", line)
		}
		if m["msg"] == events.TypeExecutionFinished && m["execution_id"] == "logged" {
			seen["finished"] = true
		}
		if m["msg"] == "auto-checkpoint saved" && m["kernel_id"] == k {
			seen["auto-checkpoint"] = true
		}
	}
	if systems != 1 {
		t.Errorf("%d \"actor system started\" lines, want 1 per process:\n%s", systems, s.Logs())
	}
	for _, c := range []string{"server", "persistence", "kernel", "scheduler", "finished", "checkpoint", "auto-checkpoint"} {
		if !seen[c] {
			t.Errorf("no %s log line:\n%s", c, s.Logs())
		}
	}
}

// countKey counts the top-level keys named key in the JSON object line.
func countKey(t testing.TB, line, key string) int {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("read a key of %q: %v", line, err)
		}
		if tok == key {
			n++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("read the value of %v in %q: %v", tok, line, err)
		}
	}
	return n
}

// TestLogOneComponentPerLine: whatever the wiring and the call say, a line
// carries exactly one component: the line's own if it names one, else the
// logger's; and none is invented where neither names one.
func TestLogOneComponentPerLine(t *testing.T) {
	var buf strings.Builder
	lg := slog.New(withOneComponent(slog.NewJSONHandler(&buf, nil)))
	wired := lg.With("component", "lease", "kernel_id", "k1")
	wired.Info("plain")                                  // the wiring's
	wired.Info("own", "component", "gc")                 // the line's
	wired.With("component", "inner").Info("rewired")     // the innermost With
	wired.WithGroup("g").Info("grouped", "x", 1)         // kept at the top level
	lg.Info("twice", "component", "a", "component", "b") // the last
	lg.Info("none")
	want := []string{"lease", "gc", "inner", "lease", "b", ""}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		n := countKey(t, line, componentKey)
		if got, _ := m["component"].(string); got != want[i] || (want[i] != "" && n != 1) || (want[i] == "" && n != 0) {
			t.Errorf("line %d: component %q (%d keys), want %q once: %s", i, got, n, want[i], line)
		}
		if i < 5 && i != 4 && m["kernel_id"] != "k1" {
			t.Errorf("line %d lost the logger's other attributes: %s", i, line)
		}
	}
}

// TestKernelsDoNotOutliveWhenConfigured: with --kernels-outlive=false a
// SIGTERM shuts every kernel down (recorded KernelShutDown, process gone);
// by default kernels keep running.
func TestKernelsDoNotOutliveWhenConfigured(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--kernels-outlive=false")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.Logs())
	}
	var pid int
	var start uint64
	shut := false
	for _, ev := range readLog(t, e.dataDir) {
		if p, ok := ev.Payload.(events.KernelStarted); ok && p.KernelID == k {
			pid, start = p.Process.Pid, p.Process.StartTime
		}
		if p, ok := ev.Payload.(events.KernelShutDown); ok && p.KernelID == k {
			shut = true
		}
	}
	if !shut {
		t.Fatalf("no KernelShutDown for %s", k)
	}
	if alive(proc{Pid: pid, Start: start}) {
		t.Fatalf("kernel process %d still runs after a shutdown with --kernels-outlive=false", pid)
	}
}

// ownComponent reports whether a raw JSON log line comes from the kernel
// or scheduler actors or the actor system.
func ownComponent(line string) bool {
	for _, c := range []string{"kernel", "scheduler", "actors"} {
		if strings.Contains(line, `"component":"`+c+`"`) {
			return true
		}
	}
	return false
}
