package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// inProcess opens a core on a temp data dir and returns a connected
// in-process MCP client factory.
func inProcess(t testing.TB) (*core, func() *client.Client) {
	t.Helper()
	cfg := testConfig(t, testkit.TempDataDir(t))
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	return c, func() *client.Client {
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, inproc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
}

// TestTwoAgentsTwoKernelsConcurrently: every call names its kernel; two
// sessions working at once never see each other's variables.
func TestTwoAgentsTwoKernelsConcurrently(t *testing.T) {
	_, connect := inProcess(t)
	agents := []*client.Client{connect(), connect()}
	kernels := []string{startKernelTool(t, agents[0]), startKernelTool(t, agents[1])}
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	for i := range agents {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				sc, text := callTool(t, agents[i], "execute", map[string]any{"kernel": kernels[i], "code": fmt.Sprintf("who = %d\nprint(who)", i)})
				if sc["status"] != "ok" || !strings.Contains(text, fmt.Sprint(i)) {
					errs <- fmt.Sprintf("agent %d: %v %s", i, sc, text)
					return
				}
			}
		}(i)
	}
	testkit.WaitGroup(t, &wg, 3*time.Minute, "both agents' executions")
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for i := range agents {
		_, text := callTool(t, agents[i], "execute", map[string]any{"kernel": kernels[i], "code": "print('who', who)"})
		if !strings.Contains(text, fmt.Sprintf("who %d", i)) {
			t.Fatalf("agent %d sees another kernel's variables: %s", i, text)
		}
	}
}

// TestInputRequiredThenSendInput: input() with allow_stdin surfaces as
// input_required with the prompt; send_input answers it.
func TestInputRequiredThenSendInput(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "name = input('your name? ')\nprint('hello', name)", "allow_stdin": true, "timeout_s": 20})
	if sc["status"] != "input_required" || !strings.Contains(text, "your name?") {
		t.Fatalf("want input_required with the prompt: %v\n%s", sc, text)
	}
	id := sc["execution_id"].(string)
	if _, text := callTool(t, cl, "send_input", map[string]any{"execution_id": id, "value": "ada"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("send_input: %s", text)
	}
	sc, text = callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 20})
	if sc["status"] != "ok" || !strings.Contains(text, "hello ada") {
		t.Fatalf("after send_input: %v\n%s", sc, text)
	}
	// Without allow_stdin, input() fails at once instead of hanging.
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "input('x')", "timeout_s": 20})
	if sc == nil && !strings.Contains(text, "StdinNotImplementedError") || sc != nil && sc["status"] != "error" {
		t.Fatalf("input() without stdin: %v\n%s", sc, text)
	}
}

// TestProgressNotificationsCarryOutput: with a progressToken, new output
// arrives as notifications while execute waits.
func TestProgressNotificationsCarryOutput(t *testing.T) {
	c, _ := inProcess(t)
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	inproc.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			msgs = append(msgs, fmt.Sprint(n.Params.AdditionalFields["message"]))
			mu.Unlock()
		}
	})
	cl := mcpClient(t, inproc)
	defer cl.Close()
	k := startKernelTool(t, cl)
	var req mcp.CallToolRequest
	req.Params.Name = "execute"
	req.Params.Arguments = map[string]any{"kernel": k, "code": "import time\nfor i in range(3):\n    print('step', i, flush=True)\n    time.sleep(0.5)"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "p1"}
	if _, err := cl.CallTool(asAdmin(context.Background()), req); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		all := strings.Join(msgs, "")
		mu.Unlock()
		if strings.Contains(all, "step 0") && strings.Contains(all, "step 2") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress notifications did not carry the output: %q", all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeadKernelAndBadArguments: each gets a clear tool error and the
// server stays up.
func TestDeadKernelAndBadArguments(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	st, err := c.sys.Kernel(context.Background(), k)
	if err != nil || st.Process.Pid <= 0 {
		t.Fatalf("kernel %s has no process to kill (never signal pid 0, the test's own group): %+v %v", k, st, err)
	}
	if st.Process.Pid <= 1 {
		t.Fatalf("kernel %s has no process id (%d): refusing to kill(%d), which would signal our own process group", k, st.Process.Pid, st.Process.Pid)
	}
	if err := syscall.Kill(st.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, text := callTool(t, cl, "list_kernels", nil)
		if strings.Contains(text, "dead") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel not dead in list_kernels: %s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cases := []map[string]any{
		{"kernel": k, "code": "1"},
		{"kernel": "nope", "code": "1"},
		{"kernel": k},
		{"kernel": k, "code": "1", "timeout_s": 0},
		{"kernel": k, "code": "1", "timeout_s": 86400},
		{"kernel": k, "code": strings.Repeat("x", 10<<20)},
	}
	for _, args := range cases {
		_, text := callTool(t, cl, "execute", args)
		if !strings.HasPrefix(text, "ERROR") || len(text) < 30 {
			t.Fatalf("execute %v: want a clear tool error, got %q", short(args), text)
		}
	}
	_, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": "no-such-execution"})
	if !strings.HasPrefix(text, "ERROR") {
		t.Fatalf("unknown execution: %s", text)
	}
	if _, text := callTool(t, cl, "list_kernelspecs", nil); !strings.Contains(text, "python3") {
		t.Fatalf("server must stay up: %s", text)
	}
}

func short(args map[string]any) string {
	s := fmt.Sprint(args)
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// TestNinetySecondExecutionOutlivesItsTimeout: execute returns running after
// its timeout; get_execution picks up the result 90 s later.
func TestNinetySecondExecutionOutlivesItsTimeout(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import time\nprint('training', flush=True)\ntime.sleep(90)\nprint('done')\n'model ready'", "timeout_s": 25})
	if sc["status"] != "running" || !strings.Contains(text, "training") {
		t.Fatalf("after 25 s: %v\n%s", sc, text)
	}
	id := sc["execution_id"].(string)
	for i := 0; i < 4 && sc["status"] != "ok"; i++ {
		sc, text = callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 55})
	}
	if sc["status"] != "ok" || !strings.Contains(text, "model ready") {
		t.Fatalf("get_execution: %v\n%s", sc, text)
	}
}

// TestServerKilledWithQueueAndRunning: kill -9 the stdio server with one
// execution running (held by a sentinel, so certainly still running) and
// three queued; the next server re-attaches, re-adopts the running one —
// released only then, it ends ok with its output — and runs the queued
// ones exactly once.
func TestServerKilledWithQueueAndRunning(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir)
	first, cl := startStdioServer(t, bin, env)
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "n = 0"})
	hold := testkit.NewSentinel(t)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": hold.Code("n += 1\nprint('released')"), "timeout_s": 5})
	if sc["status"] != "running" || !strings.Contains(text, "waiting") {
		t.Fatalf("the held execution must be running: %v\n%s", sc, text)
	}
	running := sc["execution_id"].(string)
	var queued []string
	for i := 0; i < 3; i++ {
		sc, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": fmt.Sprintf("n += 10\nprint('q%d', n)", i), "timeout_s": 1})
		if sc["status"] != "queued" {
			t.Fatalf("want queued, got %v", sc)
		}
		queued = append(queued, sc["execution_id"].(string))
	}
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()

	_, cl2, reattached := startStdioServerWatching(t, bin, env, `"msg":"KernelReattached"`)
	select {
	case <-reattached:
	case <-time.After(90 * time.Second):
		t.Fatal("the second server never re-attached the kernel")
	}
	hold.Release()
	sc, text = callTool(t, cl2, "get_execution", map[string]any{"execution_id": running, "wait_s": 30})
	firstText := text
	if sc["status"] != "ok" || !strings.Contains(text, "released") {
		t.Fatalf("the re-adopted execution must end ok with its output: %v\n%s", sc, text)
	}
	for i, id := range queued {
		sc, text := callTool(t, cl2, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
		if sc["status"] != "ok" || !strings.Contains(text, fmt.Sprintf("q%d", i)) {
			t.Fatalf("queued %d after the restart: %v\n%s\n(first: %s)", i, sc, text, firstText)
		}
	}
	_, text = callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "print('n =', n)"})
	if !strings.Contains(text, "n = 31") {
		t.Fatalf("each queued execution must run exactly once after the running one: %s", text)
	}
}
