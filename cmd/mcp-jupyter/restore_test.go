package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// fridayState is what the agent builds on Friday: variables of several
// kinds, a numpy array, and a socket (which no checkpoint can hold).
const fridayState = `
import numpy as np, socket
arr = np.arange(1_000_000, dtype=np.int64)
results = {"acc": 0.93, "runs": [1, 2, 3]}
class Model:
    def __init__(self): self.coef = [1.5, 2.5]
    def predict(self, x): return sum(c * x for c in self.coef)
model = Model()
conn = socket.socket()
`

// mondayCheck prints what Friday's state gives on Monday.
const mondayCheck = `print("monday", int(arr.sum()), results["runs"], model.predict(2))`

// mondayWant is what mondayCheck prints with Friday's state back.
const mondayWant = "monday 499999500000 [1, 2, 3] 8.0"

// podEnd kills, as the end of a pod does, every process the servers on
// dataDir left: the kernels (and their process groups) and any process
// whose command line names the data dir (a kernel's guard).
func podEnd(t testing.TB, dataDir string) {
	t.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dataDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	testkit.KillKernels(t, dataDir)
}

// friday is the first server of a Friday→Monday test: alice's kernel with
// Friday's state, its auto-checkpoint taken while idle, one execution
// running (a long sleep), one the server sent to the kernel behind it
// (pipelined: it may run there once the sleep ends, so it can never be
// run again elsewhere) and one queued in the server, which appends a line
// to counter each time it runs.
type friday struct {
	e         opsEnv
	alice     string // her token
	kernel    string
	running   string
	pipelined string
	queued    string
	counter   string
}

// runFriday plays Friday on a server started with args and stops it with
// SIGTERM, then ends the pod (podEnd).
func runFriday(t *testing.T, args ...string) friday {
	t.Helper()
	f := friday{e: newOpsEnv(t)}
	out, err := principalCLI(t, f.e.dataDir, "add", "alice", "--scopes", "read,execute")
	if err != nil {
		t.Fatal(err)
	}
	f.alice = printedToken(t, out)
	f.counter = filepath.Join(t.TempDir(), "queued-runs")
	// NB: a short grace: the drain must not wait for the sleep. A short
	// idle delay: the idle kernel's auto-checkpoint is taken before the
	// long execution makes it busy (a busy kernel is skipped at shutdown).
	s := startServer(t, f.e.bin, f.e.env, append([]string{"--shutdown-grace", "8s", "--auto-checkpoint-idle", "1s"}, args...)...)
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCPClient(t, "http://"+s.addr, f.alice)
	f.kernel = startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": fridayState}); sc["status"] != "ok" {
		t.Fatalf("friday state: %s", text)
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": mondayCheck}); sc["status"] != "ok" || !strings.Contains(text, mondayWant) {
		t.Fatalf("friday check: %s", text)
	}
	testkit.WaitUntil(t, 2*time.Minute, "alice's auto-checkpoint of the idle kernel", func() (bool, string) {
		_, text := callTool(t, cl, "list_checkpoints", nil)
		return strings.Contains(text, autoCheckpointName(f.kernel)), text
	})
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": "import time\nprint('sleeping', flush=True)\ntime.sleep(600)", "timeout_s": 2})
	if sc["status"] != "running" {
		t.Fatalf("the long execution: %s", text)
	}
	f.running = sc["execution_id"].(string)
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": "print('behind the sleep')", "timeout_s": 1})
	if sc["status"] != "queued" {
		t.Fatalf("the pipelined execution: %s", text)
	}
	f.pipelined = sc["execution_id"].(string)
	code := fmt.Sprintf("with open(%q, 'a') as fh:\n    fh.write('ran\\n')\nprint('queued ran', int(arr.sum()))", f.counter)
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": code, "timeout_s": 1})
	if sc["status"] != "queued" {
		t.Fatalf("the queued execution: %s", text)
	}
	f.queued = sc["execution_id"].(string)

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, 60*time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, s.Logs())
	}
	podEnd(t, f.e.dataDir)
	return f
}

// monday starts the second server on Friday's data dir, with alice's
// client.
func (f friday) monday(t *testing.T, args ...string) (*server, *client.Client) {
	t.Helper()
	s := startServer(t, f.e.bin, f.e.env, args...)
	waitReady(t, s.addr, 2*time.Minute)
	return s, httpMCPClient(t, "http://"+s.addr, f.alice)
}

// kernelRow is the kernel's row of list_kernels.
func kernelRow(t testing.TB, cl *client.Client, id string) map[string]any {
	t.Helper()
	sc, text := callTool(t, cl, "list_kernels", nil)
	ks, _ := sc["kernels"].([]any)
	for _, k := range ks {
		if m, ok := k.(map[string]any); ok && m["kernel_id"] == id {
			return m
		}
	}
	t.Fatalf("kernel %s not listed: %s", id, text)
	return nil
}

func (f friday) queuedRuns(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(f.counter)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "ran\n")
}

// TestFridayMondayWithoutTheAgent is the pod replacement, with no
// agent action in between: Friday's server is stopped with SIGTERM while
// one execution runs and one waits, the pod's kernels die with it, and
// Monday's server on the same data dir relaunches the kernel under its id,
// restores its auto-checkpoint, runs the queued execution once (after the
// restore: it uses a restored variable), records the running one lost with
// a reason, and tells alice on her next calls what came back and what did
// not.
func TestFridayMondayWithoutTheAgent(t *testing.T) {
	f := runFriday(t)
	s, cl := f.monday(t)

	testkit.WaitUntil(t, 3*time.Minute, "the kernel's restore told in list_kernels", func() (bool, string) {
		row := kernelRow(t, cl, f.kernel)
		n, _ := row["restore_notice"].(string)
		return n != "", fmt.Sprint(row)
	})
	row := kernelRow(t, cl, f.kernel)
	notice := row["restore_notice"].(string)
	if row["state"] != "running" || row["owner"] != "alice" {
		t.Fatalf("the restored kernel: %v", row)
	}
	for _, want := range []string{"restored from its auto-checkpoint of", "restored arr, results, Model, model;",
		"conn (socket: reconnect after loading)", "np (module: re-import it after loading)",
		"executions " + f.running + ", " + f.pipelined + " were running (or sent to the kernel behind it) when the server stopped and are lost"} {
		if !strings.Contains(notice, want) {
			t.Fatalf("list_kernels notice lacks %q: %s\nserver log:\n%s", want, notice, s.Logs())
		}
	}

	// The queued execution ran once, after the restore (it read arr).
	sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": f.queued, "wait_s": 50})
	if sc["status"] != "ok" || !strings.Contains(text, "queued ran 499999500000") {
		t.Fatalf("the queued execution on Monday: %v\n%s\nserver log:\n%s", sc, text, s.Logs())
	}
	if sc["restore_notice"] != notice || !strings.Contains(text, "notice: "+notice) {
		t.Fatalf("the queued execution's reply does not carry the notice: %v\n%s", sc, text)
	}
	// The running one, and the one sent behind it, are lost with their
	// reason, never run again.
	for _, id := range []string{f.running, f.pipelined} {
		sc, text = callTool(t, cl, "get_execution", map[string]any{"execution_id": id})
		if sc["status"] != "lost" || !strings.Contains(text, "reason: ") || !strings.Contains(text, "process was gone when the server started") ||
			sc["restore_notice"] != notice {
			t.Fatalf("execution %s on Monday: %v\n%s", id, sc, text)
		}
	}

	// The agent's next execute: Friday's variables, and the notice.
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": mondayCheck})
	if sc["status"] != "ok" || !strings.Contains(text, mondayWant) {
		t.Fatalf("Monday's state: %v\n%s", sc, text)
	}
	if sc["restore_notice"] != notice {
		t.Fatalf("the first execution after the restore carries no notice: %v\n%s", sc, text)
	}
	// Only that first one: the next reply is plain.
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": "print(type(conn))"})
	if sc["status"] != "error" || sc["restore_notice"] != nil || !strings.Contains(text, "NameError") {
		t.Fatalf("the second execution after the restore: %v\n%s", sc, text)
	}
	if n := f.queuedRuns(t); n != 1 {
		t.Fatalf("the queued execution ran %d times, want once", n)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, 60*time.Second); err != nil {
		t.Fatalf("Monday's SIGTERM: %v", err)
	}
	// The log tells the same: the restore recorded once, with what the
	// notice said.
	var restored []map[string]any
	for _, e := range readLog(t, f.e.dataDir) {
		if e.Type == "KernelRestored" {
			var m map[string]any
			if err := json.Unmarshal(e.Raw, &m); err != nil {
				t.Fatal(err)
			}
			restored = append(restored, m)
		}
	}
	if len(restored) != 1 || restored[0]["checkpoint"] != autoCheckpointName(f.kernel) || restored[0]["error"] != nil {
		t.Fatalf("KernelRestored in the log: %v", restored)
	}
}

// TestFridayMondayAutoRestoreOff: with --auto-restore=false Monday's server
// records the gone kernel lost, as before: no relaunch, no restore, no
// notice, and the queued execution never runs.
func TestFridayMondayAutoRestoreOff(t *testing.T) {
	f := runFriday(t)
	s, cl := f.monday(t, "--auto-restore=false")
	testkit.WaitUntil(t, 2*time.Minute, "the gone kernel recorded lost", func() (bool, string) {
		row := kernelRow(t, cl, f.kernel)
		return row["state"] == "lost", fmt.Sprint(row)
	})
	if row := kernelRow(t, cl, f.kernel); row["restore_notice"] != nil {
		t.Fatalf("a lost kernel with a restore notice: %v", row)
	}
	sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": f.running, "wait_s": 30})
	if sc["status"] != "lost" || sc["restore_notice"] != nil {
		t.Fatalf("the running execution: %v\n%s\nserver log:\n%s", sc, text, s.Logs())
	}
	if n := f.queuedRuns(t); n != 0 {
		t.Fatalf("the queued execution ran %d times on a lost kernel", n)
	}
}

// TestRestoreWithoutAutoCheckpointTellsWhy: a kernel gone at start whose
// server never saved an auto-checkpoint (--auto-checkpoint=false) is
// relaunched under its id, empty; list_kernels and the next execute (through
// mcp-go's client) say it was not restored, why, and what to do.
func TestRestoreWithoutAutoCheckpointTellsWhy(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	cfg.AutoCheckpoint = false
	c1, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	cl := mcpClient(t, inProcessClient(t, c1))
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "friday = 5"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	_ = cl.Close()
	if err := c1.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	podEnd(t, dataDir)

	c2, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	cl = mcpClient(t, inProcessClient(t, c2))
	t.Cleanup(func() { _ = cl.Close() })
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(friday)", "timeout_s": 120})
	notice, _ := sc["restore_notice"].(string)
	if sc["status"] != "error" || !strings.Contains(text, "NameError") {
		t.Fatalf("execute on the relaunched kernel: %v\n%s", sc, text)
	}
	for _, want := range []string{"kernel " + k + " was started afresh by the server", "not restored: no auto-checkpoint of kernel " + k,
		"run your setup code again"} {
		if !strings.Contains(notice, want) {
			t.Fatalf("the notice lacks %q: %q", want, notice)
		}
	}
	if row := kernelRow(t, cl, k); row["state"] != "running" || row["restore_notice"] != notice {
		t.Fatalf("list_kernels: %v", row)
	}
}

// TestRestoreOfATamperedAutoCheckpointIsRefused: the auto-checkpoint on
// the volume was changed while no server ran (one byte of its payload).
// Monday's restore refuses it before anything reaches the kernel, finishes
// the restore anyway (the kernel runs, empty, under its id; what was
// queued runs), and the agent is told it was refused and what to do.
func TestRestoreOfATamperedAutoCheckpointIsRefused(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	c1, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	cl := mcpClient(t, inProcessClient(t, c1))
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "friday = list(range(100000))"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c1.autoCheckpoint(ctx, k); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close()
	if err := c1.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	podEnd(t, dataDir)
	files, _ := filepath.Glob(filepath.Join(dataDir, "checkpoints", "*"+autoCheckpointName(k)+"*.ckpt"))
	if len(files) != 1 {
		t.Fatalf("auto-checkpoint files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	c2, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	cl = mcpClient(t, inProcessClient(t, c2))
	t.Cleanup(func() { _ = cl.Close() })
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('friday' in globals())", "timeout_s": 120})
	if sc["status"] != "ok" || !strings.Contains(text, "False") {
		t.Fatalf("execute on the relaunched kernel: %v\n%s", sc, text)
	}
	notice, _ := sc["restore_notice"].(string)
	for _, want := range []string{"not restored: auto-checkpoint " + autoCheckpointName(k) + " was refused by verification",
		"nothing of it reached the kernel", "run your setup code again"} {
		if !strings.Contains(notice, want) {
			t.Fatalf("the notice lacks %q: %q", want, notice)
		}
	}
}

// TestRestoreIsBounded: a restore whose load takes longer than its bound
// (an object whose unpickling sleeps) is finished at the bound with the
// reason, so the kernel's queue does not wait for it; the load goes on in
// the kernel, and the agent's execution runs after it, with the notice.
func TestRestoreIsBounded(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	c1, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	cl := mcpClient(t, inProcessClient(t, c1))
	k := startKernelTool(t, cl)
	slow := "import time\nclass Slow:\n    def __reduce__(self): return (time.sleep, (8,))\nslow = Slow()\nfriday = 5"
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": slow}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c1.autoCheckpoint(ctx, k); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close()
	if err := c1.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	podEnd(t, dataDir)

	c2 := newCore(cfg, discard())
	c2.restoreTimeout = time.Second
	if err := c2.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	cl = mcpClient(t, inProcessClient(t, c2))
	t.Cleanup(func() { _ = cl.Close() })
	testkit.WaitUntil(t, 2*time.Minute, "the restore finished at its bound", func() (bool, string) {
		row := kernelRow(t, cl, k)
		n, _ := row["restore_notice"].(string)
		return n != "", fmt.Sprint(row)
	})
	notice := kernelRow(t, cl, k)["restore_notice"].(string)
	if !strings.Contains(notice, "did not finish within 1s") {
		t.Fatalf("notice of a restore cut at its bound: %q", notice)
	}
	// The load went on in the kernel: the next execution runs after it.
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(friday)", "timeout_s": 50})
	if sc["status"] != "ok" || !strings.Contains(text, "5") || sc["restore_notice"] != notice {
		t.Fatalf("execute after the bounded restore: %v\n%s", sc, text)
	}
}

// TestFridayMondayIdleSaveKeepsTheNotice: on Monday the queued execution
// runs after the restore (a change), so --auto-checkpoint-idle's timer
// queues the server's own save of the kernel. That save is an execution
// too, but not the agent's: alice, coming back after it, still gets the
// notice on her next execute.
func TestFridayMondayIdleSaveKeepsTheNotice(t *testing.T) {
	f := runFriday(t)
	fridaySave := ""
	for _, e := range readLog(t, f.e.dataDir) {
		if e.Type != "CheckpointSaved" {
			continue
		}
		var p struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		}
		if err := json.Unmarshal(e.Raw, &p); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p.Name, autoCheckpointName(f.kernel)) {
			fridaySave = p.SHA256
		}
	}
	if fridaySave == "" {
		t.Fatal("Friday recorded no auto-checkpoint")
	}
	s, cl := f.monday(t, "--auto-checkpoint-idle", "1s")

	sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": f.queued, "wait_s": 50})
	if sc["status"] != "ok" || !strings.Contains(text, "queued ran 499999500000") {
		t.Fatalf("the queued execution on Monday: %v\n%s\nserver log:\n%s", sc, text, s.Logs())
	}
	testkit.WaitUntil(t, 2*time.Minute, "the server's idle save of the restored kernel", func() (bool, string) {
		sc, text := callTool(t, cl, "list_checkpoints", nil)
		cs, _ := sc["checkpoints"].([]any)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			if m["kernel_id"] == f.kernel && strings.HasSuffix(fmt.Sprint(m["name"]), autoCheckpointName(f.kernel)) {
				return m["sha256"] != fridaySave, text
			}
		}
		return false, text
	})

	notice, _ := kernelRow(t, cl, f.kernel)["restore_notice"].(string)
	if notice == "" {
		t.Fatal("list_kernels tells no restore")
	}
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": f.kernel, "code": mondayCheck})
	if sc["status"] != "ok" || !strings.Contains(text, mondayWant) {
		t.Fatalf("Monday's state: %v\n%s", sc, text)
	}
	if sc["restore_notice"] != notice {
		t.Fatalf("the agent's first execute after the idle save carries no notice: %v\n%s", sc, text)
	}
}
