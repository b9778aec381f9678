package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// cullCore is an in-process server with --cull-idle cull.
func cullCore(t *testing.T, dataDir string, cull time.Duration) (*core, *client.Client, func()) {
	t.Helper()
	cfg := testConfig(t, dataDir)
	cfg.CullIdle = cull
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once // NB: core.close is not idempotent; a test may stop it first
	stop := func() { once.Do(func() { _ = c.close(context.Background()) }) }
	t.Cleanup(stop)
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl, stop
}

func kernelState(c *core, id string) kernels.State {
	k, _ := c.kernels.Get(id)
	return k.State
}

// TestCullIdleKernel: with a short --cull-idle, an idle kernel is saved and
// culled (its process gone, KernelShutDown{Culled} in the log, an execute
// on it says so and how to get its variables back, and they come back
// with load_environment into a new kernel), while a busy kernel and one a
// Jupyter frontend is connected to are left alone.
func TestCullIdleKernel(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const cull = 3 * time.Second
	c, cl, _ := cullCore(t, dataDir, cull)

	busy := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": busy, "code": "import time; time.sleep(60)", "timeout_s": 0.5}); sc["status"] == "ok" {
		t.Fatalf("the sleep finished: %v %s", sc, text)
	}
	watched := startKernelTool(t, cl)
	uuid, _ := events.UUIDForm(watched)
	f := dialFrontend(t, channelsServer(t, c), uuid, "sess-cull", c.token, true)
	f.until("kernel_info_reply on connect", func(m frontMsg) bool {
		return m.Channel == "shell" && m.h.MsgType == "kernel_info_reply"
	})
	idle := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": idle, "code": "x = 41"}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	k, _ := c.kernels.Get(idle)
	pid := k.Pid

	testkit.WaitUntil(t, cull+30*time.Second, "the idle kernel culled", func() (bool, string) {
		return kernelState(c, idle) == kernels.StateShutDown, string(kernelState(c, idle))
	})
	testkit.WaitUntil(t, 20*time.Second, "the culled kernel's process gone", func() (bool, string) {
		return !procAlive(pid), "pid " + strconv.Itoa(pid) + " alive"
	})
	var culled []events.KernelShutDown
	if err := c.log.ReadStream(context.Background(), events.KernelStream(idle), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.KernelShutDown); ok {
			culled = append(culled, p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	name := autoCheckpointName(idle)
	if len(culled) != 1 || !culled[0].Culled || !strings.Contains(culled[0].Reason, "--cull-idle") || !strings.Contains(culled[0].Reason, name) {
		t.Fatalf("KernelShutDown of the culled kernel: %+v", culled)
	}

	_, text := callTool(t, cl, "execute", map[string]any{"kernel": idle, "code": "x"})
	t.Logf("execute on the culled kernel: %s", text)
	for _, want := range []string{"ERROR", "culled", "--cull-idle", "load_environment " + name} {
		if !strings.Contains(text, want) {
			t.Errorf("execute on the culled kernel lacks %q: %s", want, text)
		}
	}
	fresh := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": name}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load_environment %s: %s", name, text)
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "x + 1"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("the culled kernel's variables in the new kernel: %v %s", sc, text)
	}

	// The busy kernel and the watched one have outlived several culls'
	// idle times; a last look after one more interval.
	time.Sleep(2 * cullInterval(cull)) // NB: let the culler look again; not a synchronisation
	for _, id := range []string{busy, watched} {
		if st := kernelState(c, id); st != kernels.StateRunning {
			k, _ := c.kernels.Get(id)
			t.Errorf("kernel %s (busy %v, watched %v) is %s: %s", id, id == busy, id == watched, st, k.Reason)
		}
	}
	if k, _ := c.kernels.Get(watched); time.Since(k.LastActivity) < cull {
		t.Fatalf("the watched kernel had activity %s ago: the test did not show that a connection alone keeps it", time.Since(k.LastActivity))
	}
}

// TestCulledKernelAfterRestart: a culled kernel stays shut down at the next
// start (it is not restored: nothing is relaunched for it), and a call on it
// there still says it was culled and where its variables are.
func TestCulledKernelAfterRestart(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const cull = 2 * time.Second
	c, cl, stop := cullCore(t, dataDir, cull)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "y = 7"}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	testkit.WaitUntil(t, cull+30*time.Second, "the idle kernel culled", func() (bool, string) {
		return kernelState(c, k) == kernels.StateShutDown, string(kernelState(c, k))
	})
	stop()
	c2, cl2, _ := cullCore(t, dataDir, 0)
	if st := kernelState(c2, k); st != kernels.StateShutDown {
		t.Fatalf("the culled kernel is %s after the restart, want shut down", st)
	}
	if kernels, _ := dataDirProcs(dataDir); len(kernels) != 0 {
		t.Fatalf("kernel processes after the restart: %v (a culled kernel must not be relaunched)", kernels)
	}
	_, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "y"})
	t.Logf("execute on the culled kernel after a restart: %s", text)
	for _, want := range []string{"ERROR", "culled", "load_environment " + autoCheckpointName(k)} {
		if !strings.Contains(text, want) {
			t.Errorf("execute on the culled kernel after a restart lacks %q: %s", want, text)
		}
	}
}

// TestCullRecheckSeesActivitySinceLook: an execution that ran and ended
// between the look that found a kernel idle and the cull (during its
// auto-checkpoint) keeps the kernel: it is idle "now" at the re-check,
// but not idle for --cull-idle. The server's own save does not count: a
// kernel nobody used since the look is culled.
func TestCullRecheckSeesActivitySinceLook(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	c, cl, _ := cullCore(t, dataDir, time.Hour) // NB: the culler's own looks find nothing idle
	id := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": id, "code": "x = 1"}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	ctx := context.Background()
	looked := c.log.Last()
	k, _ := c.kernels.Get(id)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": id, "code": "x = 2"}); sc["status"] != "ok" {
		t.Fatalf("execute after the look: %v %s", sc, text)
	}
	testkit.WaitUntil(t, 30*time.Second, "the kernel idle again", func() (bool, string) {
		_, ok := c.idleFor(id, time.Now())
		return ok, "not idle"
	})
	c.cull(ctx, k, looked)
	if err := c.runner.WaitFor(ctx, c.log.Last()); err != nil { // NB: the read models have all the cull wrote
		t.Fatal(err)
	}
	if st := kernelState(c, id); st != kernels.StateRunning {
		t.Fatalf("kernel used since the look was culled: %s", st)
	}
	k, _ = c.kernels.Get(id)
	c.cull(ctx, k, c.log.Last())
	testkit.WaitUntil(t, 30*time.Second, "the kernel nobody used since the look culled", func() (bool, string) {
		return kernelState(c, id) == kernels.StateShutDown, string(kernelState(c, id))
	})
}

// TestCullKeepsAKernelWhoseSaveFailed: the auto-checkpoint before a cull
// is refused (over --max-checkpoint-bytes): the kernel is not culled — its
// variables would be lost — and the log says why and what to do.
func TestCullKeepsAKernelWhoseSaveFailed(t *testing.T) {
	var logs syncBuffer
	c, cl := autoCore(t, &logs, func(cfg *config) { cfg.AutoCheckpointIdle, cfg.MaxCheckpointBytes = 0, 1<<20 })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "blob = bytes(4 << 20)\nkept = 'yes'")
	kk, _ := c.kernels.Get(k)
	c.cull(context.Background(), kk, c.log.Last())
	if s := kernelState(c, k); s != kernels.StateRunning {
		t.Fatalf("the kernel whose save failed was culled: %s", s)
	}
	if l := logs.String(); !strings.Contains(l, "kernel not culled: its auto-checkpoint failed") || !strings.Contains(l, k) {
		t.Fatalf("the log does not say why the kernel stays:\n%s", l)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(kept)"}); !strings.Contains(text, "yes") {
		t.Fatalf("the kernel lost its variables: %s", text)
	}
}
