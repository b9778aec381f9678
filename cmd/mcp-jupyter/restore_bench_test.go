package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// restoreBenchState is the kernel's ~50 MB of state (a numpy array).
const restoreBenchState = "import numpy as np\nbig = np.arange(50 * 1024 * 1024 // 8, dtype=np.int64)"

// restoreBenchCheck answers only with the state back.
const restoreBenchCheck = "print('sum', int(big[-1]))"

// BenchmarkRestoreAfterReplacement: a pod replacement as the server sees
// it. A first server (the real binary) holds a kernel of ~50 MB and is
// stopped with SIGTERM (its shutdown saves the auto-checkpoint); the
// kernel dies with the pod. Measured (restore-ms): from starting the next
// server process on that data dir to the answer of the first execution
// on the restored kernel (it waits for the restore). Baseline in the same
// run (load-alone-ms): load_environment of that same checkpoint into a
// fresh running kernel on the same server. restore-vs-load-x is the
// ratio (target ≤ 2); a miss is reported, never failed. Beside it, the
// same run's start_kernel (start-kernel-ms) and restore-vs-start-and-load-x
// (a relaunch starts a kernel process: what the server adds to that), and
// from the server's log when it was ready, had relaunched the kernel and
// had restored it (ready-at-ms, relaunched-at-ms, restored-at-ms).
func BenchmarkRestoreAfterReplacement(b *testing.B) {
	bin := buildBinary(b)
	specDir := testkit.KernelSpecDir(b)
	var restores, loads, starts []float64
	phases := map[string][]float64{} // ms from the start of the process to each step of its log
	for range b.N {
		b.StopTimer()
		dataDir := testkit.TempDataDir(b)
		b.Cleanup(func() { testkit.KillKernels(b, dataDir) })
		env := []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + specDir}
		tok := func() string {
			t, err := os.ReadFile(filepath.Join(dataDir, mcpserver.TokenFile))
			if err != nil {
				b.Fatal(err)
			}
			return strings.TrimSpace(string(t))
		}

		first := startServer(b, bin, env)
		waitReady(b, first.addr, 2*time.Minute)
		cl := httpMCPClient(b, "http://"+first.addr, tok())
		k := startKernelTool(b, cl)
		if sc, text := callTool(b, cl, "execute", map[string]any{"kernel": k, "code": restoreBenchState}); sc["status"] != "ok" {
			b.Fatalf("state: %s", text)
		}
		_ = cl.Close()
		if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		if err := first.wait(b, 2*time.Minute); err != nil {
			b.Fatalf("SIGTERM: %v\n%s", err, first.Logs())
		}
		podEnd(b, dataDir)

		b.StartTimer()
		began := time.Now()
		second := startServer(b, bin, env)
		waitReady(b, second.addr, 2*time.Minute)
		cl = httpMCPClient(b, "http://"+second.addr, tok())
		sc, text := executeToEnd(b, cl, map[string]any{"kernel": k, "code": restoreBenchCheck, "timeout_s": 120})
		restore := time.Since(began)
		b.StopTimer()
		if sc["status"] != "ok" || !strings.Contains(text, "sum 6553599") || sc["restore_notice"] == nil {
			b.Fatalf("the first execution on the restored kernel: %v\n%s\nserver log:\n%s", sc, text, second.Logs())
		}

		t0 := time.Now()
		k2 := startKernelTool(b, cl)
		starts = append(starts, ms(time.Since(t0)))
		t0 = time.Now()
		sc, text = callTool(b, cl, "load_environment", map[string]any{"kernel": k2, "name": autoCheckpointName(k)})
		load := time.Since(t0)
		if sc == nil {
			b.Fatalf("load_environment of the auto-checkpoint into a fresh kernel: %s", text)
		}
		restores, loads = append(restores, ms(restore)), append(loads, ms(load))
		for _, step := range []struct{ msg, metric string }{{"ready", "ready"}, {"kernel started", "relaunched"}, {"kernel restored", "restored"}} {
			if at, ok := logTime(second.Logs(), step.msg); ok {
				phases[step.metric] = append(phases[step.metric], ms(at.Sub(began)))
			}
		}
		_ = cl.Close()
		_ = second.cmd.Process.Signal(syscall.SIGTERM)
		_ = second.wait(b, 2*time.Minute)
		podEnd(b, dataDir)
	}
	r, l := medianMs(restores), medianMs(loads)
	b.ReportMetric(r, "restore-ms")
	b.ReportMetric(l, "load-alone-ms")
	b.ReportMetric(r/l, "restore-vs-load-x")
	// The relaunch must start a kernel process, which the load alone does
	// not: the same run's start_kernel plus the load is what a restore
	// cannot go below.
	st := medianMs(starts)
	b.ReportMetric(st, "start-kernel-ms")
	b.ReportMetric(r/(st+l), "restore-vs-start-and-load-x")
	// Where the time goes: when the server was ready, had relaunched the
	// kernel, had restored it (from the start of its process).
	for _, p := range []string{"ready", "relaunched", "restored"} {
		if len(phases[p]) > 0 {
			b.ReportMetric(medianMs(phases[p]), p+"-at-ms")
		}
	}
}

// logTime is the time of the first JSON log line whose msg is msg.
func logTime(logs, msg string) (time.Time, bool) {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

func medianMs(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
