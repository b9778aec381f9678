package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestParsePrewarm(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]int
		err  string
	}{
		{in: "0"},
		{in: ""},
		{in: "2", want: map[string]int{"python3": 2}},
		{in: "python3=2,Julia=1", want: map[string]int{"python3": 2, "julia": 1}},
		{in: "1, r=3", want: map[string]int{"python3": 1, "r": 3}},
		{in: "python3=0,r=1", want: map[string]int{"r": 1}},
		{in: "two", err: `"two" is not a whole number`},
		{in: "python3=-1", err: "not a whole number"},
		{in: "=2", err: "name is empty"},
		{in: "python3=1,python3=2", err: "named twice"},
		{in: "65", err: "more than 64"},
	} {
		got, err := parsePrewarm(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "--prewarm") {
				t.Errorf("parsePrewarm(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("parsePrewarm(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("parsePrewarm(%q) = %v; want %v", c.in, got, c.want)
			}
		}
	}
}

// TestPrewarmUnknownKernelSpecIsAStartupError: MCP_PREWARM naming a
// kernelspec that is not installed stops the start with an error that names
// it, what exists and what to do; nothing is left running.
func TestPrewarmUnknownKernelSpecIsAStartupError(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	t.Setenv("MCP_PREWARM", "python3=1,pyhton3=2")
	cfg := testConfig(t, dataDir)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	c, err := openCore(context.Background(), cfg, discard())
	if err == nil {
		_ = c.close(context.Background())
		t.Fatal("the server started with --prewarm naming a kernelspec that does not exist")
	}
	for _, want := range []string{"--prewarm", `"pyhton3"`, "available: python3", "fix the name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("startup error %q does not say %q", err, want)
		}
	}
	if ms, _ := jupyter.ReadPoolMarkers(filepath.Join(dataDir, "runtime")); len(ms) != 0 {
		t.Fatalf("a refused start pre-started kernels: %+v", ms)
	}
}

// poolOf returns c's pool stats of the default kernelspec.
func poolOf(c *core) jupyter.PoolStats {
	for _, s := range c.pool.Stats() {
		if s.Spec == defaultKernelSpec {
			return s
		}
	}
	return jupyter.PoolStats{}
}

// waitPool waits until c's pool holds n ready kernels and nothing starts.
func waitPool(t testing.TB, c *core, n int) []int {
	t.Helper()
	testkit.WaitUntil(t, 120*time.Second, fmt.Sprintf("%d pre-started kernels ready", n), func() (bool, string) {
		s := poolOf(c)
		return s.Ready == n && !s.Starting, fmt.Sprintf("%+v", s)
	})
	return poolOf(c).IdlePids
}

func pidOf(t testing.TB, sc map[string]any) int {
	t.Helper()
	pid, ok := sc["pid"].(float64)
	if !ok {
		t.Fatalf("no pid in %v", sc)
	}
	return int(pid)
}

// TestPrewarmedKernelIsIndistinguishable: start_kernel hands over the
// pre-started process, under the id it was started with; the kernel runs
// code, its namespace is what a fresh kernel's is, it sees only its own id
// (argv, connection file) and cannot reach the pool's markers; the log
// holds its own KernelStarted with the caller as owner; the pool refills.
func TestPrewarmedKernelIsIndistinguishable(t *testing.T) {
	c, connect := inProcessWith(t, func(cfg *config) { cfg.Prewarm = map[string]int{"python3": 1} })
	cl := connect()
	pids := waitPool(t, c, 1)

	sc, text := callTool(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "label": "pooled"})
	if sc == nil {
		t.Fatalf("start_kernel: %s", text)
	}
	k := sc["kernel_id"].(string)
	if pid := pidOf(t, sc); pid != pids[0] {
		t.Fatalf("start_kernel started pid %d; the pool held %d", pid, pids[0])
	}
	if sc["owner"] != "admin" || sc["state"] != "running" {
		t.Fatalf("start_kernel = %v", sc)
	}
	// A fresh kernel to compare with (the system's own start: no pool).
	fresh, err := c.sys.StartKernel(asAdmin(context.Background()), "python3", "fresh", "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.back.sync(context.Background(), fresh.LastSeq); err != nil {
		t.Fatal(err)
	}
	probe := `import sys, os, ipykernel.connect
print(sorted(k for k in globals() if not k.startswith('_')), get_ipython().execution_count, len(get_ipython().history_manager.input_hist_raw))`
	run := func(kernel string) string {
		sc, text := callTool(t, cl, "execute", map[string]any{"kernel": kernel, "code": probe})
		if sc["status"] != "ok" {
			t.Fatalf("execute on %s: %v %s", kernel, sc, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "['") {
				return line
			}
		}
		t.Fatalf("no namespace printed by %s: %s", kernel, text)
		return ""
	}
	pooledNS, freshNS := run(k), run(fresh.ID)
	if pooledNS != freshNS {
		t.Fatalf("the pooled kernel's namespace differs from a fresh kernel's:\npooled: %s\nfresh:  %s", pooledNS, freshNS)
	}
	// What the kernel sees of itself names its own id, and nothing of the pool.
	runtime := filepath.Join(c.cfg.DataDir, "runtime")
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": `import sys, os, ipykernel.connect
print(ipykernel.connect.get_connection_file())
print(' '.join(sys.argv))
try:
    print('POOL DIR', os.listdir(` + fmt.Sprintf("%q", filepath.Join(runtime, "pool")) + `))
except OSError as e:
    print('pool dir hidden:', type(e).__name__)`})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	if !strings.Contains(text, jupyter.ConnectionFilePath(runtime, k)) || strings.Count(text, k) < 2 {
		t.Fatalf("the kernel does not see its own id in its connection file and argv:\n%s", text)
	}
	if strings.Contains(text, "POOL DIR") || !strings.Contains(text, "pool dir hidden") {
		t.Fatalf("the kernel can see the pool's markers:\n%s", text)
	}
	// Its own events: KernelStarted first, for this id, owned by the caller.
	var first events.Event
	n := 0
	if err := c.log.ReadStream(context.Background(), events.KernelStream(k), 0, func(e events.Event) error {
		if n == 0 {
			first = e
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := events.As[events.KernelStarted](&first)
	if err != nil || p.KernelID != k || p.Owner != "admin" || p.Process.Pid != pids[0] || p.Label != "pooled" ||
		p.Process.ConnFile != jupyter.ConnectionFilePath(runtime, k) || first.Principal != "admin" {
		t.Fatalf("first event of kernel/%s = %s %+v (%v)", k, first.Type, p, err)
	}
	if ms, _ := jupyter.ReadPoolMarkers(runtime); slices.ContainsFunc(ms, func(m jupyter.PoolMarker) bool { return m.KernelID == k }) {
		t.Fatal("the handed-out kernel's marker stays after its start was recorded")
	}
	// The pool refills with another process.
	again := waitPool(t, c, 1)
	if again[0] == pids[0] {
		t.Fatalf("refilled with the handed-out pid %d", pids[0])
	}
	if v := gauge(t, c, "mcp_jupyter_pool_handouts_total"); v != 1 {
		t.Fatalf("mcp_jupyter_pool_handouts_total = %v", v)
	}
	if v := gauge(t, c, "mcp_jupyter_pool_idle_rss_bytes"); v <= 0 {
		t.Fatalf("mcp_jupyter_pool_idle_rss_bytes = %v", v)
	}
}

// TestPrewarmConcurrentStartsGetDifferentKernels: two start_kernel calls
// at once each get a pre-started kernel of their own, with its own
// namespace.
func TestPrewarmConcurrentStartsGetDifferentKernels(t *testing.T) {
	c, connect := inProcessWith(t, func(cfg *config) { cfg.Prewarm = map[string]int{"python3": 2} })
	cls := []*client.Client{connect(), connect()}
	pids := waitPool(t, c, 2)
	var wg sync.WaitGroup
	got := make([]map[string]any, 2)
	texts := make([]string, 2)
	for i := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], texts[i] = callAs(cls[i], agent(fmt.Sprintf("agent%d", i), 0), "start_kernel", map[string]any{"kernelspec": "python3"})
		}()
	}
	wg.Wait()
	if got[0] == nil || got[1] == nil {
		t.Fatalf("start_kernel: %q", texts)
	}
	ids := []string{got[0]["kernel_id"].(string), got[1]["kernel_id"].(string)}
	p0, p1 := pidOf(t, got[0]), pidOf(t, got[1])
	if ids[0] == ids[1] || p0 == p1 {
		t.Fatalf("two starts got the same kernel: %v %v", got[0], got[1])
	}
	if !slices.Contains(pids, p0) || !slices.Contains(pids, p1) {
		t.Fatalf("starts got pids %d, %d; the pool held %v", p0, p1, pids)
	}
	for i := range cls {
		if got[i]["owner"] != fmt.Sprintf("agent%d", i) {
			t.Fatalf("kernel %s owner = %v", ids[i], got[i]["owner"])
		}
	}
	if sc, text := callAs(cls[0], agent("agent0", 0), "execute", map[string]any{"kernel": ids[0], "code": "mine = 1"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	if sc, text := callAs(cls[1], agent("agent1", 0), "execute", map[string]any{"kernel": ids[1], "code": "print('mine' in globals())"}); sc["status"] != "ok" || !strings.Contains(text, "False") {
		t.Fatalf("the second kernel sees the first one's variable: %s", text)
	}
}

// TestPrewarmQuotaRefusalKeepsThePooledKernel: a start_kernel refused by
// the principal's kernel quota leaves the pool's kernel where it was.
func TestPrewarmQuotaRefusalKeepsThePooledKernel(t *testing.T) {
	c, connect := inProcessWith(t, func(cfg *config) {
		cfg.Prewarm = map[string]int{"python3": 1}
		cfg.MaxKernels = 1
	})
	cl := connect()
	alice := agent("alice", 0)
	waitPool(t, c, 1)
	if sc, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"}); sc == nil {
		t.Fatalf("first start_kernel: %s", text)
	}
	pids := waitPool(t, c, 1)
	before := poolOf(c)
	_, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	if !strings.Contains(text, "kernel quota reached") {
		t.Fatalf("second start_kernel past --max-kernels 1: %s", text)
	}
	after := poolOf(c)
	if after.Ready != 1 || after.IdlePids[0] != pids[0] || after.Handouts != before.Handouts || !pidAlive(pids[0]) {
		t.Fatalf("a quota refusal consumed the pooled kernel: before %+v, after %+v", before, after)
	}
	// The kernel given back is handed out to the next start that may have it.
	sc, text := callAs(cl, agent("bob", 0), "start_kernel", map[string]any{"kernelspec": "python3"})
	if sc == nil || pidOf(t, sc) != pids[0] {
		t.Fatalf("bob's start_kernel = %v %s; want the pooled pid %d", sc, text, pids[0])
	}
}

func pidAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

// TestPrewarmedKernelSurvivesRestart: a kernel handed out by the pool
// outlives the server like any kernel (re-attached with its variables);
// the kernels still in the pool stop with the server and leave nothing.
func TestPrewarmedKernelSurvivesRestart(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	cfg.Prewarm = map[string]int{"python3": 1}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	c, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	waitPool(t, c, 1)
	cl := mcpClient(t, inProcessClient(t, c))
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "kept = 42"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	idle := waitPool(t, c, 1)
	_ = cl.Close()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range idle {
		if pidAlive(pid) {
			t.Fatalf("the pool's idle kernel pid %d runs after the server stopped", pid)
		}
	}
	if ms, _ := jupyter.ReadPoolMarkers(filepath.Join(dataDir, "runtime")); len(ms) != 0 {
		t.Fatalf("markers after a clean stop: %+v", ms)
	}

	cfg.Prewarm = nil
	c2, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	cl2 := mcpClient(t, inProcessClient(t, c2))
	defer cl2.Close()
	sc, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "print(kept)"})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("the handed-out kernel after a restart: %v %s", sc, text)
	}
}

func inProcessClient(t testing.TB, c *core) *client.Client {
	t.Helper()
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	return inproc
}

// TestKill9LeavesNoPoolOrphan runs the real binary with --prewarm 2 and
// kills it with SIGKILL while its pool holds two idle kernels and an agent
// holds a third it was handed: the idle ones are nobody's, so the next
// start kills them (doctor names them meanwhile); the handed-out one is
// re-attached with its variables.
func TestKill9LeavesNoPoolOrphan(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir, "MCP_LOG_FORMAT=json")
	runtime := filepath.Join(dataDir, "runtime")

	first, cl, lines := startStdioServerLines(t, bin, append(env, "MCP_PREWARM=2"))
	waitLine(t, lines, `"ready":2,"target":2`)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "friday = 5"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	waitLine(t, lines, `"ready":2,"target":2`) // refilled
	ms, err := jupyter.ReadPoolMarkers(runtime)
	if err != nil || len(ms) != 2 {
		t.Fatalf("markers of a full pool of 2: %+v %v", ms, err)
	}
	var idle []int
	for _, m := range ms {
		if m.KernelID == k || m.Pid == 0 || !pidAlive(m.Pid) {
			t.Fatalf("marker %+v: want an idle kernel's, with a live pid (handed out: %s)", m, k)
		}
		idle = append(idle, m.Pid)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	for _, pid := range idle {
		if !pidAlive(pid) {
			t.Fatalf("pool kernel pid %d died with the server: the test would prove nothing", pid)
		}
	}
	out, _ := exec.Command(bin, "doctor", "--data-dir", dataDir).CombinedOutput()
	if !strings.Contains(string(out), "2 pre-started kernel(s) a killed server left in its pool") {
		t.Fatalf("doctor does not name the pool's leftovers:\n%s", out)
	}

	_, cl2 := startStdioServer(t, bin, env)
	defer cl2.Close()
	sc, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "print(friday)"})
	if sc["status"] != "ok" || !strings.Contains(text, "5") {
		t.Fatalf("the handed-out kernel after kill -9: %v %s", sc, text)
	}
	for _, pid := range idle {
		testkit.WaitUntil(t, 10*time.Second, fmt.Sprintf("the pool's orphan pid %d killed", pid), func() (bool, string) {
			return !pidAlive(pid), "alive"
		})
	}
	if ms, _ := jupyter.ReadPoolMarkers(runtime); len(ms) != 0 {
		t.Fatalf("markers after the next start: %+v", ms)
	}
	for _, m := range ms {
		if _, err := os.Stat(jupyter.KernelDir(runtime, m.KernelID)); !os.IsNotExist(err) {
			t.Fatalf("the orphan's kernel dir stays: %v", err)
		}
	}
	// Nothing of the pool's kernels reached the agents: only the one handed out.
	sc, text = callTool(t, cl2, "list_kernels", nil)
	if ks, _ := sc["kernels"].([]any); len(ks) != 1 || !strings.Contains(text, k) {
		t.Fatalf("list_kernels after the restart: %s", text)
	}
}

// startStdioServerLines runs the binary's stdio server with an MCP client
// on its pipes; lines receives each stderr line (the reader ends with the
// server; a full channel drops lines rather than block the server).
func startStdioServerLines(t *testing.T, bin string, env []string) (*exec.Cmd, *client.Client, <-chan string) {
	t.Helper()
	cmd := exec.Command(bin, "stdio")
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines, done := make(chan string, 1024), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(errs)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = cmd.Wait() })
	tr := transport.NewIO(out, in, io.NopCloser(strings.NewReader("")))
	return cmd, mcpClient(t, client.NewClient(tr)), lines
}

// waitLine waits for a stderr line containing want.
func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(120 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no server log line with %s", want)
		}
	}
}

// TestPrewarmFailingKernelSpecBacksOffAndShows: a kernelspec in --prewarm
// whose kernel cannot start does not stop the server; each failure is
// logged with the kernel's stderr, the pool waits longer each time
// (mcp_jupyter_pool_backing_off), failures and misses are counted, and
// start_kernel of that kernelspec reports the fresh start's own error.
func TestPrewarmFailingKernelSpecBacksOffAndShows(t *testing.T) {
	var logs syncBuffer
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	dir := filepath.Join(os.Getenv("JUPYTER_PATH"), "kernels", "broken")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := `{"argv": ["/bin/sh", "-c", "echo this kernelspec is broken on purpose >&2; exit 3", "{connection_file}"], "display_name": "broken", "language": "python"}`
	if err := os.WriteFile(filepath.Join(dir, "kernel.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Prewarm = map[string]int{"broken": 1}
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	c, err := openCore(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	testkit.WaitUntil(t, 60*time.Second, "two failed pre-starts counted", func() (bool, string) {
		v := gauge(t, c, "mcp_jupyter_pool_start_failures_total")
		return v >= 2, fmt.Sprint(v)
	})
	if v := gauge(t, c, "mcp_jupyter_pool_backing_off"); v != 1 {
		t.Fatalf("mcp_jupyter_pool_backing_off = %v while the kernelspec fails", v)
	}
	if v := gauge(t, c, "mcp_jupyter_pool_ready_kernels"); v != 0 {
		t.Fatalf("mcp_jupyter_pool_ready_kernels = %v", v)
	}
	text := logs.String()
	if !strings.Contains(text, "pre-starting a kernel failed") || !strings.Contains(text, "broken on purpose") || !strings.Contains(text, `"retry_in":"2s"`) {
		t.Fatalf("the failures are not logged with the kernel's stderr and a growing wait:\n%s", text)
	}
	cl := mcpClient(t, inProcessClient(t, c))
	defer cl.Close()
	_, out := callTool(t, cl, "start_kernel", map[string]any{"kernelspec": "broken"})
	if !strings.HasPrefix(out, "ERROR") || !strings.Contains(out, "broken on purpose") {
		t.Fatalf("start_kernel of the failing kernelspec: %s", out)
	}
	if v := gauge(t, c, "mcp_jupyter_pool_misses_total"); v != 1 {
		t.Fatalf("mcp_jupyter_pool_misses_total = %v", v)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDoctorReapsWhatAPoolLeft: a pool marker of a process the log never
// recorded (a killed server's idle pool kernel) is named by doctor and
// killed by doctor --reap; a marker of a kernel the log holds is not.
func TestDoctorReapsWhatAPoolLeft(t *testing.T) {
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	left, p := sleeper(t)
	kept, q := sleeper(t)
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, filepath.Join(dir, "events"))
	testkit.AppendAll(t, l, []events.Draft{{Stream: events.KernelStream("k-kept"), Kernel: "k-kept",
		Payload: events.KernelStarted{KernelID: "k-kept", Spec: "python3", Process: q}}})
	l.Close()
	runtime := filepath.Join(dir, "runtime")
	for id, pr := range map[string]events.KernelProcess{"k-left": p, "k-kept": q} {
		if err := os.MkdirAll(filepath.Join(runtime, "pool"), 0o700); err != nil {
			t.Fatal(err)
		}
		m := fmt.Sprintf(`{"kernel_id":%q,"spec":"python3","pid":%d,"start_time":%d}`, id, pr.Pid, pr.StartTime)
		if err := os.WriteFile(filepath.Join(runtime, "pool", id+".json"), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lines, _ := doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t))
	if l := lineFor(t, lines, "pool"); !strings.HasPrefix(l, "WARN") || !strings.Contains(l, fmt.Sprintf("k-left (pid %d)", p.Pid)) || strings.Contains(l, "k-kept") {
		t.Fatalf("pool line: %s", l)
	}
	lines, _ = doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t), "--reap")
	if l := lineFor(t, lines, "pool"); !strings.Contains(l, "killed 1 pre-started kernel") {
		t.Fatalf("pool line with --reap: %s", l)
	}
	if !exited(left, 10*time.Second) {
		t.Fatal("the pool's leftover still runs after doctor --reap")
	}
	if exited(kept, 300*time.Millisecond) {
		t.Fatal("doctor --reap killed a kernel the log holds")
	}
}
