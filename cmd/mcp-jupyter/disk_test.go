package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// lockedBuffer is a log sink tests read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The disk tests' file system and --min-free-disk.
const (
	diskTestFS      = 96 << 20
	diskTestMinFree = 32 << 20
)

// mibOfOutput prints 1 MiB that does not compress (Pebble compresses
// tables: repeated characters would hardly use the disk).
const mibOfOutput = "import os, base64\nprint(base64.b64encode(os.urandom(786432)).decode())"

// TestDiskFullThroughMCP fills a real 96 MiB tmpfs data dir with real
// executions printing 1 MiB each, through the MCP client, as the attack
// did (then the server crashed in Pebble's WAL rotation, or spun at 200%
// CPU logging "no space" while execute hung). Now: execute gets a clear
// "disk full" error, reads still answer, /readyz says disk, the log says it
// a bounded number of times, nothing spins; freed space makes the next
// execute work; and output of an execution that runs into the floor is
// recorded as lost (a gap) while the execution still ends.
func TestDiskFullThroughMCP(t *testing.T) {
	// NB: the margins scale with --min-free-disk (Pebble's memtable is
	// sized from it); on a smaller file system, with a smaller setting,
	// compactions of incompressible output swing free space by more than
	// the reserve between two looks.
	fs := testkit.SmallFS(t, diskTestFS)
	dataDir := filepath.Join(fs, "data")
	// filler is what the operator frees later. NB: at least --min-free-disk,
	// so that freeing it always suffices.
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, make([]byte, diskTestMinFree), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dataDir)
	cfg.MinFreeDisk = diskTestMinFree
	var logs lockedBuffer
	c, err := openCore(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	defer cl.Close()
	k := startKernelTool(t, cl)
	began := time.Now()

	var refused string
	var ok []string
	for range 100 {
		sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": mibOfOutput})
		if strings.HasPrefix(text, "ERROR") {
			refused = text
			break
		}
		if id, _ := sc["execution_id"].(string); id != "" {
			ok = append(ok, id)
		}
	}
	if len(ok) == 0 {
		t.Fatalf("no execution ran before the refusal (%q): the test must fill the disk with real output", refused)
	}
	if !strings.Contains(refused, "disk full") || !strings.Contains(refused, "--min-free-disk") || !strings.Contains(refused, "Free space") {
		t.Fatalf("execute on a full disk: %q; want a clear disk-full error saying what to do", refused)
	}
	t.Logf("%v: %d executions ran, then: %s", time.Since(began), len(ok), refused)
	// NB: Pebble frees space by itself (a compaction ends, a WAL is
	// recycled): hold the disk below the watermark so that the checks below
	// see the state the refusal reported.
	hold := filepath.Join(fs, "hold")
	testkit.FillFS(t, hold, cfg.MinFreeDisk/2)
	if _, text := callTool(t, cl, "start_kernel", map[string]any{"kernelspec": "python3"}); !strings.Contains(text, "disk full") {
		t.Fatalf("start_kernel on a full disk: %q", text)
	}
	// Reads answer.
	if _, text := callTool(t, cl, "list_kernels", map[string]any{}); strings.HasPrefix(text, "ERROR") || !strings.Contains(text, k) {
		t.Fatalf("list_kernels while the disk is full: %s", text)
	}
	if len(ok) > 0 {
		if _, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": ok[0]}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("get_execution while the disk is full: %s", text)
		}
	}
	rd := c.readiness()
	if rd.Status == "ready" || !strings.Contains(rd.Checks["disk"], "disk full") {
		t.Fatalf("/readyz while the disk is full: %+v", rd)
	}
	// Nothing spins: over two seconds the whole process uses little CPU.
	before, start := cpuTime(t), time.Now()
	time.Sleep(2 * time.Second) // NB: measuring idle CPU needs wall time to pass
	if used := cpuTime(t) - before; used > time.Since(start)/4 {
		t.Fatalf("the process used %v of CPU in %v while the disk was full: something spins", used, time.Since(start))
	}
	// Bounded log: the shortage is said once per level change, not per event.
	if n := strings.Count(logs.String(), "disk full"); n == 0 || n > 6 {
		t.Fatalf("%d log lines say disk full; want a few:\n%s", n, logs.String())
	}

	// Space returns: the next execute works, without waiting.
	for _, f := range []string{filler, hold} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('back')"})
	if sc["status"] != "ok" || !strings.Contains(text, "back") {
		t.Fatalf("execute after freeing space: %v %s", sc, text)
	}
	if rd := c.readiness(); rd.Checks["disk"] != "ok" {
		t.Fatalf("/readyz after freeing space: %+v", rd)
	}

	t.Logf("%v: space freed, execute works", time.Since(began))
	// An execution that runs into the floor ends, its further output
	// recorded as lost instead of appended.
	sc, text = executeToEnd(t, cl, map[string]any{"kernel": k, "timeout_s": 60,
		"code": "import sys, os, base64\nfor i in range(400):\n    print(base64.b64encode(os.urandom(75_000)).decode()); sys.stdout.flush()\nprint('done')"})
	if sc == nil || sc["status"] == nil {
		t.Fatalf("execute running into the floor: %v %s", sc, text)
	}
	t.Logf("%v: the execution running into the floor ended: %v", time.Since(began), sc["status"])
	var gap *events.IOPubGapRecorded
	if err := c.log.Read(context.Background(), 0, 0, func(e events.Event) error {
		if g, ok := e.Payload.(events.IOPubGapRecorded); ok && strings.Contains(g.Reason, "disk is full") {
			gap = &g
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if gap == nil || gap.Dropped == 0 {
		t.Logf("space %+v\n%s", c.log.Space(), logs.String())
		out, _ := exec.Command("sh", "-c", "du -ak "+fs+" | sort -n | tail -15").CombinedOutput()
		t.Logf("%s", out)
		t.Fatalf("no disk-full gap recorded for output shed at the floor (execute said %v)", sc["status"])
	}
	if err := c.log.Healthy(); err != nil {
		t.Fatalf("log after the disk filled: %v", err)
	}
}

// TestDiskFullKill9Verifies: a real server (the binary, over stdio) on a
// 20 MiB tmpfs is filled by executions printing 1 MiB until it refuses,
// then killed with SIGKILL while full. The log still verifies (events
// verify, doctor), and once space is freed a restarted server executes.
func TestDiskFullKill9Verifies(t *testing.T) {
	fs := testkit.SmallFS(t, diskTestFS)
	bin := buildBinary(t)
	dataDir := filepath.Join(fs, "data")
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, make([]byte, diskTestMinFree), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+testkit.KernelSpecDir(t), "MCP_MIN_FREE_DISK=32MiB")

	srv, cl := startStdioServer(t, bin, env)
	k := startKernelTool(t, cl)
	refused := ""
	for range 100 {
		if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": mibOfOutput}); strings.HasPrefix(text, "ERROR") {
			refused = text
			break
		}
	}
	if !strings.Contains(refused, "disk full") {
		t.Fatalf("the server never refused for space: %q", refused)
	}
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()

	out, code := runBinary(t, bin, "events", "verify", "--data-dir", dataDir)
	if code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("verify after kill -9 on a full disk: exit %d\n%s", code, out)
	}
	out, _ = runBinary(t, bin, "doctor", "--data-dir", dataDir)
	if !strings.Contains(out, "decode") || strings.Contains(out, "tail was dropped") {
		t.Fatalf("doctor after kill -9 on a full disk:\n%s", out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	_, cl2 := startStdioServer(t, bin, env)
	sc, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "print('after')"})
	if sc["status"] != "ok" || !strings.Contains(text, "after") {
		t.Fatalf("execute after restart with space freed: %v %s", sc, text)
	}
}

// TestMinFreeDiskFlag: the flag takes sizes with units, 0 turns the check
// off, and a bad value is refused naming the flag.
func TestMinFreeDiskFlag(t *testing.T) {
	for v, want := range map[string]uint64{"256MiB": 256 << 20, "1GiB": 1 << 30, "500MB": 500e6, "0": 0, "1048576": 1 << 20} {
		cfg, err := parseConfig("serve", []string{"--min-free-disk", v})
		if err != nil || cfg.MinFreeDisk != want {
			t.Errorf("--min-free-disk %s: %d, %v; want %d", v, cfg.MinFreeDisk, err, want)
		}
	}
	if cfg, err := parseConfig("serve", nil); err != nil || cfg.MinFreeDisk != 256<<20 {
		t.Errorf("default --min-free-disk: %d, %v; want 256 MiB", cfg.MinFreeDisk, err)
	}
	if _, err := parseConfig("serve", []string{"--min-free-disk", "lots"}); err == nil || !strings.Contains(err.Error(), "--min-free-disk") {
		t.Errorf("--min-free-disk lots: %v; want an error naming the flag", err)
	}
}
