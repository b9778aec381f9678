package jupyter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// poolLauncher is a Launcher on a temporary runtime dir whose kernelspecs
// are the test python3 plus extra ones (name -> argv).
func poolLauncher(t *testing.T, extra map[string][]string) *jupyter.Launcher {
	t.Helper()
	specDir := testkit.KernelSpecDir(t)
	for name, argv := range extra {
		dir := filepath.Join(specDir, "kernels", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"argv": argv, "display_name": name, "language": "python"})
		if err := os.WriteFile(filepath.Join(dir, "kernel.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// NB: short: the kernel's directory must fit a unix socket path.
	base, err := os.MkdirTemp("", "pool")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	return &jupyter.Launcher{SearchPath: jupyter.SearchPath{Dirs: []string{specDir}}, RuntimeDir: filepath.Join(base, "runtime"), DieWithServer: true}
}

// openPool starts a pool of l's kernels, closed at cleanup.
func openPool(t *testing.T, l *jupyter.Launcher, opts jupyter.PoolOptions) *jupyter.Pool {
	t.Helper()
	p, err := jupyter.NewPool(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.Pool = p
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	return p
}

func stats(p *jupyter.Pool, spec string) jupyter.PoolStats {
	for _, s := range p.Stats() {
		if s.Spec == spec {
			return s
		}
	}
	return jupyter.PoolStats{}
}

// waitReady waits until spec's pool holds n ready kernels and returns
// their pids.
func waitPoolReady(t *testing.T, p *jupyter.Pool, spec string, n int) []int {
	t.Helper()
	testkit.WaitUntil(t, 90*time.Second, "pool "+spec+" full", func() (bool, string) {
		s := stats(p, spec)
		return s.Ready == n && !s.Starting, fmt.Sprintf("%+v", s)
	})
	return stats(p, spec).IdlePids
}

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

func markers(t *testing.T, runtime string) []jupyter.PoolMarker {
	t.Helper()
	m, err := jupyter.ReadPoolMarkers(runtime)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPoolHandsOverItsKernelUnderItsOwnID: Launch with the id Claim gave
// hands over the pooled process at once, with the paths a fresh kernel of
// that id has; the kernel answers; the pool starts a replacement.
func TestPoolHandsOverItsKernelUnderItsOwnID(t *testing.T) {
	l := poolLauncher(t, nil)
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 1}})
	pids := waitPoolReady(t, p, "python3", 1)

	id, ok := p.Claim("python3")
	if !ok {
		t.Fatal("claim found no ready kernel")
	}
	start := time.Now()
	conn, launched, err := l.Launch(context.Background(), id, "python3")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, _ = conn.Shutdown(ctx)
		_ = conn.Close()
	}()
	if launched.Process.Pid != pids[0] {
		t.Fatalf("Launch started pid %d; the pool's ready kernel was %d", launched.Process.Pid, pids[0])
	}
	if took > time.Second {
		t.Fatalf("handing over a ready kernel took %s", took)
	}
	if want := jupyter.ConnectionFilePath(l.RuntimeDir, id); launched.Process.ConnFile != want {
		t.Fatalf("conn file %s, want %s", launched.Process.ConnFile, want)
	}
	if want := filepath.Join(l.RuntimeDir, "kernel-"+id+".log"); launched.Process.LogFile != want {
		t.Fatalf("log file %s, want %s", launched.Process.LogFile, want)
	}
	if launched.Language != "python" || launched.Process.Session == "" {
		t.Fatalf("launched = %+v", launched)
	}
	// The kernel runs code on the connection handed over.
	msgID := events.NewID(time.Now())
	if err := conn.Send(events.ChannelShell, "execute_request", msgID, map[string]any{"code": "print(6*7)", "silent": false,
		"store_history": true, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": false}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for found := false; !found; {
		select {
		case m := <-conn.Messages():
			found = m.ParentMsgID == msgID && m.MsgType == "stream" && strings.Contains(string(m.Content), "42")
		case <-deadline:
			t.Fatal("no output of print(6*7) from the handed-over kernel")
		}
	}
	// Its marker stays until the start is recorded.
	if m := markers(t, l.RuntimeDir); !hasMarker(m, id) {
		t.Fatalf("marker of the handed-over kernel gone before Recorded: %+v", m)
	}
	p.Recorded(id)
	if m := markers(t, l.RuntimeDir); hasMarker(m, id) {
		t.Fatalf("marker of %s still there after Recorded", id)
	}
	// Refilled with another process.
	again := waitPoolReady(t, p, "python3", 1)
	if again[0] == pids[0] {
		t.Fatalf("refilled with the handed-over pid %d", again[0])
	}
	if s := stats(p, "python3"); s.Handouts != 1 || s.IdleRSSBytes <= 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func hasMarker(ms []jupyter.PoolMarker, id string) bool {
	for _, m := range ms {
		if m.KernelID == id {
			return true
		}
	}
	return false
}

// TestPoolUnknownKernelSpec: a kernelspec that does not exist is refused
// when the pool is made, naming what exists.
func TestPoolUnknownKernelSpec(t *testing.T) {
	l := poolLauncher(t, nil)
	_, err := jupyter.NewPool(l, jupyter.PoolOptions{Sizes: map[string]int{"pythn3": 2}})
	var unknown *jupyter.UnknownKernelSpecError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "pythn3") || !strings.Contains(err.Error(), "python3") {
		t.Fatalf("NewPool with an unknown kernelspec: %v", err)
	}
}

// TestPoolBacksOffAFailingKernelSpec: a kernelspec whose process exits at
// once is retried with a doubling wait, never in a tight loop, and its
// failure (with the kernel's stderr) is reported in Stats.
func TestPoolBacksOffAFailingKernelSpec(t *testing.T) {
	l := poolLauncher(t, map[string][]string{"broken": {"/bin/sh", "-c", "echo broken kernelspec on purpose >&2; exit 3", "{connection_file}"}})
	const minBackoff = 100 * time.Millisecond
	start := time.Now()
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"broken": 1}, MinBackoff: minBackoff, MaxBackoff: 400 * time.Millisecond})
	testkit.WaitUntil(t, 60*time.Second, "three failed pre-starts", func() (bool, string) {
		s := stats(p, "broken")
		return s.Failures >= 3, fmt.Sprintf("%+v", s)
	})
	elapsed := time.Since(start)
	s := stats(p, "broken")
	// Failures 1, 2, 3 are separated by at least 100 ms and 200 ms.
	if elapsed < 3*minBackoff {
		t.Fatalf("3 failures within %s: the pool does not back off", elapsed)
	}
	if s.Ready != 0 || s.ConsecutiveFailures < 3 || s.RetryAt.IsZero() || !strings.Contains(s.LastError, "broken kernelspec on purpose") {
		t.Fatalf("stats of a failing kernelspec = %+v", s)
	}
	if ms := markers(t, l.RuntimeDir); len(ms) != 0 {
		t.Fatalf("failed pre-starts left markers: %+v", ms)
	}
	if logs, _ := filepath.Glob(filepath.Join(l.RuntimeDir, "kernel-*.log")); len(logs) != 0 {
		t.Fatalf("failed pre-starts left logs: %v", logs)
	}
}

// TestPoolReplacesAKernelThatDiesIdle: a pooled kernel killed while it
// waits is removed, counted as a failure, and replaced.
func TestPoolReplacesAKernelThatDiesIdle(t *testing.T) {
	l := poolLauncher(t, nil)
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 1}, MinBackoff: 10 * time.Millisecond})
	pids := waitPoolReady(t, p, "python3", 1)
	if err := syscall.Kill(-pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 90*time.Second, "a replacement", func() (bool, string) {
		s := stats(p, "python3")
		return s.Ready == 1 && s.IdlePids[0] != pids[0], fmt.Sprintf("%+v", s)
	})
	if s := stats(p, "python3"); s.Failures != 1 || !strings.Contains(s.LastError, "exited while waiting in the pool") {
		t.Fatalf("stats = %+v", s)
	}
}

// TestPoolUnclaimKeepsTheKernel: a claim given back (the start was
// refused) returns the same process to the pool; nothing is handed out.
func TestPoolUnclaimKeepsTheKernel(t *testing.T) {
	l := poolLauncher(t, nil)
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 1}})
	pids := waitPoolReady(t, p, "python3", 1)
	id, ok := p.Claim("python3")
	if !ok {
		t.Fatal("no claim")
	}
	if _, ok := p.Claim("python3"); ok {
		t.Fatal("a second claim got the same single kernel")
	}
	p.Unclaim(id)
	again := waitPoolReady(t, p, "python3", 1)
	if again[0] != pids[0] || !alive(pids[0]) {
		t.Fatalf("after Unclaim the pool holds %v, want the same pid %d alive", again, pids[0])
	}
	if s := stats(p, "python3"); s.Handouts != 0 || s.Misses != 1 {
		t.Fatalf("stats = %+v", s)
	}
	id2, ok := p.Claim("python3")
	if !ok || id2 != id {
		t.Fatalf("claim after Unclaim = %q %v, want %q", id2, ok, id)
	}
	p.Unclaim(id2)
}

// TestPoolUnclaimDuringARefillKeepsTheTarget: a claim makes the pool start
// a replacement; the claimed kernel comes back (Unclaim) before that start
// ends. The pool must end with its target of one kernel, the one that came
// back, and the replacement stopped.
func TestPoolUnclaimDuringARefillKeepsTheTarget(t *testing.T) {
	l := poolLauncher(t, nil)
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 1}})
	pids := waitPoolReady(t, p, "python3", 1)
	id, ok := p.Claim("python3")
	if !ok {
		t.Fatal("no claim")
	}
	testkit.WaitUntil(t, 30*time.Second, "the pool starts a replacement", func() (bool, string) {
		s := stats(p, "python3")
		return s.Starting, fmt.Sprintf("%+v", s)
	})
	p.Unclaim(id)
	testkit.WaitUntil(t, 90*time.Second, "the replacement's start ends", func() (bool, string) {
		s := stats(p, "python3")
		return !s.Starting, fmt.Sprintf("%+v", s)
	})
	s := stats(p, "python3")
	if s.Ready != 1 || len(s.IdlePids) != 1 || s.IdlePids[0] != pids[0] {
		t.Fatalf("after an Unclaim during a refill the pool holds %d kernels %v, want its target 1: pid %d", s.Ready, s.IdlePids, pids[0])
	}
	testkit.WaitUntil(t, 30*time.Second, "the replacement's marker is gone", func() (bool, string) {
		ms := markers(t, l.RuntimeDir)
		return len(ms) == 1 && ms[0].KernelID == id, fmt.Sprintf("%+v", ms)
	})
}

// TestPoolAbandonStopsTheClaimedKernel: a claim whose start failed stops
// the kernel and removes its directory, log and marker.
func TestPoolAbandonStopsTheClaimedKernel(t *testing.T) {
	l := poolLauncher(t, nil)
	p := openPool(t, l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 1}})
	pids := waitPoolReady(t, p, "python3", 1)
	id, ok := p.Claim("python3")
	if !ok {
		t.Fatal("no claim")
	}
	p.Abandon(id)
	if alive(pids[0]) {
		t.Fatalf("abandoned kernel pid %d still runs", pids[0])
	}
	if _, err := os.Stat(jupyter.KernelDir(l.RuntimeDir, id)); !os.IsNotExist(err) {
		t.Fatalf("abandoned kernel's dir: %v", err)
	}
	if hasMarker(markers(t, l.RuntimeDir), id) {
		t.Fatal("abandoned kernel's marker left")
	}
}

// TestPoolCloseKillsIdleKernels: closing the pool stops the kernels it
// holds and leaves no marker, directory or log behind.
func TestPoolCloseKillsIdleKernels(t *testing.T) {
	l := poolLauncher(t, nil)
	p, err := jupyter.NewPool(l, jupyter.PoolOptions{Sizes: map[string]int{"python3": 2}})
	if err != nil {
		t.Fatal(err)
	}
	l.Pool = p
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pids := waitPoolReady(t, p, "python3", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Fatalf("pool kernel pid %d runs after Close", pid)
		}
	}
	if ms := markers(t, l.RuntimeDir); len(ms) != 0 {
		t.Fatalf("markers after Close: %+v", ms)
	}
	if dirs, _ := os.ReadDir(filepath.Join(l.RuntimeDir, "kernels")); len(dirs) != 0 {
		t.Fatalf("kernel dirs after Close: %v", dirs)
	}
	if _, ok := p.Claim("python3"); ok {
		t.Fatal("claim after Close")
	}
}

// TestReapPoolKillsWhatACrashLeft: markers a killed server left are
// settled at the next start: a kernel whose start was recorded keeps
// running, any other is killed — by pid and start time, or, for a marker
// written before its process ran, by its connection file on the command
// line — and its files go.
func TestReapPoolKillsWhatACrashLeft(t *testing.T) {
	base, err := os.MkdirTemp("", "reap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	runtime := filepath.Join(base, "runtime")
	spawn := func(id string) *exec.Cmd {
		if err := os.MkdirAll(jupyter.KernelDir(runtime, id), 0o700); err != nil {
			t.Fatal(err)
		}
		// NB: the connection file on the command line, as a kernel has it,
		// in one process that never forks: a shell loop's child has the
		// shell's command line until it execs sleep, and would be found
		// (and counted) as a second leftover.
		cmd := exec.Command("tail", "-F", "-s", "1", jupyter.ConnectionFilePath(runtime, id))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		return cmd
	}
	write := func(m jupyter.PoolMarker) {
		b, _ := json.Marshal(m)
		if err := os.MkdirAll(filepath.Join(runtime, "pool"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(runtime, "pool", m.KernelID+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	idle, early, recorded, retried := jupyter.NewID(), jupyter.NewID(), jupyter.NewID(), jupyter.NewID()
	// retried: the marker names the first process of a start that was
	// retried; that one is gone, the retry's process holds the kernel.
	first := spawn(retried)
	procs := map[string]*exec.Cmd{idle: spawn(idle), early: spawn(early), recorded: spawn(recorded), retried: first}
	for id, cmd := range procs {
		m := jupyter.PoolMarker{KernelID: id, Spec: "python3"}
		if id != early {
			st, err := jupyter.ProcessStartTime(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			m.Pid, m.StartTime = cmd.Process.Pid, st
		}
		write(m)
	}
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	_ = first.Wait()
	procs[retried] = spawn(retried)
	exited := map[string]chan struct{}{}
	for id, cmd := range procs {
		ch := make(chan struct{})
		exited[id] = ch
		go func() { _, _ = cmd.Process.Wait(); close(ch) }()
	}
	n, err := jupyter.ReapPool(runtime, []string{recorded}, nil)
	if err != nil || n != 3 {
		t.Fatalf("ReapPool = %d, %v; want 3 killed", n, err)
	}
	for _, id := range []string{idle, early, retried} {
		select {
		case <-exited[id]:
		case <-time.After(10 * time.Second):
			t.Fatalf("the leftover pool kernel %s was not killed", id)
		}
		if _, err := os.Stat(jupyter.KernelDir(runtime, id)); !os.IsNotExist(err) {
			t.Fatalf("leftover kernel dir of %s: %v", id, err)
		}
	}
	select {
	case <-exited[recorded]:
		t.Fatal("ReapPool killed a kernel whose start was recorded")
	default:
	}
	if ms := markers(t, runtime); len(ms) != 0 {
		t.Fatalf("markers after ReapPool: %+v", ms)
	}
}

// TestPoolSizeIsBounded: a pool may not hold more than MaxPoolSize idle
// kernels of one kernelspec.
func TestPoolSizeIsBounded(t *testing.T) {
	l := poolLauncher(t, nil)
	_, err := jupyter.NewPool(l, jupyter.PoolOptions{Sizes: map[string]int{"python3": jupyter.MaxPoolSize + 1}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("give 0 to %d", jupyter.MaxPoolSize)) {
		t.Fatalf("NewPool past the bound: %v", err)
	}
}
