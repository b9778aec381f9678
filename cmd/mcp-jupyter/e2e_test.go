package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func testConfig(t testing.TB, dataDir string) config {
	t.Helper()
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	cfg, err := parseConfig("serve", []string{"--data-dir", dataDir, "--addr", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mcpClient(t testing.TB, c *client.Client) *client.Client {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func callTool(t testing.TB, c *client.Client, name string, args map[string]any) (map[string]any, string) {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := c.CallTool(asAdmin(ctx), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	joined := strings.Join(text, "\n")
	if res.IsError {
		return nil, "ERROR: " + joined
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, joined
}

// executeToEnd calls execute, then get_execution from each reply's cursor,
// as an agent reads a long result (a reply carries at most a bounded
// amount of output), until the execution is done and no output is left;
// it returns the last reply. A refused call returns at once (nil, error).
func executeToEnd(t testing.TB, c *client.Client, args map[string]any) (map[string]any, string) {
	t.Helper()
	sc, text := callTool(t, c, "execute", args)
	id, _ := sc["execution_id"].(string)
	for sc != nil && (sc["more_output"] == true || !queue.Status(fmt.Sprint(sc["status"])).Done()) {
		cursor, _ := sc["cursor"].(float64)
		sc, text = callTool(t, c, "get_execution", map[string]any{"execution_id": id, "since": uint64(cursor), "wait_s": 30})
	}
	return sc, text
}

var kernelIDPattern = regexp.MustCompile(`[0-9a-z]{26}`)

func startKernelTool(t testing.TB, c *client.Client) string {
	t.Helper()
	sc, text := callTool(t, c, "start_kernel", map[string]any{"kernelspec": "python3", "label": "e2e"})
	if strings.HasPrefix(text, "ERROR") {
		t.Fatalf("start_kernel: %s", text)
	}
	if id, ok := sc["kernel_id"].(string); ok {
		return id
	}
	id := kernelIDPattern.FindString(text)
	if id == "" {
		t.Fatalf("no kernel id in %q", text)
	}
	return id
}

// TestMCPInProcessAgainstRealKernels drives the tools the way an agent does,
// through mcp-go's client, against the real core and real kernels.
func TestMCPInProcessAgainstRealKernels(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()

	_, specs := callTool(t, cl, "list_kernelspecs", nil)
	if !strings.Contains(specs, "python3") {
		t.Fatalf("list_kernelspecs: %s", specs)
	}
	k := startKernelTool(t, cl)
	nc, err := c.nats.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe("mcpjupyter.ev."+k+".>", got); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('hi')\n6*7"})
	if sc["status"] != "ok" || !strings.Contains(text, "hi") || !strings.Contains(text, "42") {
		t.Fatalf("execute: %v\n%s", sc, text)
	}
	// NATS subscribers see the execution's events, in log order.
	var last float64
	var types []string
	for done := false; !done; {
		select {
		case m := <-got:
			var e map[string]any
			if err := json.Unmarshal(m.Data, &e); err != nil {
				t.Fatalf("NATS event is not JSON: %v", err)
			}
			if seq := e["seq"].(float64); seq <= last {
				t.Fatalf("NATS events out of order: %v after %v", seq, last)
			} else {
				last = seq
			}
			types = append(types, e["type"].(string))
			done = e["type"] == "ExecutionFinished"
		case <-time.After(10 * time.Second):
			t.Fatalf("no ExecutionFinished on NATS; got %v", types)
		}
	}
	// An execute that outlives its timeout keeps running and is picked up.
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import time\nprint('start', flush=True)\ntime.sleep(4)\nprint('end')", "timeout_s": 1})
	if sc["status"] != "running" {
		t.Fatalf("long execute should come back running: %v\n%s", sc, text)
	}
	id := sc["execution_id"].(string)
	sc, text = callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
	if sc["status"] != "ok" || !strings.Contains(text, "end") {
		t.Fatalf("get_execution: %v\n%s", sc, text)
	}
	_, text = callTool(t, cl, "execute", map[string]any{"kernel": "no-such-kernel", "code": "1"})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "list_kernels") {
		t.Fatalf("unknown kernel: %s", text)
	}
	_, text = callTool(t, cl, "list_kernels", nil)
	if !strings.Contains(text, k) {
		t.Fatalf("list_kernels: %s", text)
	}
	_, text = callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": k})
	if strings.HasPrefix(text, "ERROR") {
		t.Fatalf("shutdown_kernel: %s", text)
	}
}

func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcp-jupyter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestStdioSubprocess runs the real binary as a desktop client would.
func TestStdioSubprocess(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir)
	stdio, err := client.NewStdioMCPClient(bin, env, "stdio")
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, stdio)
	defer cl.Close()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1+1"})
	if sc["status"] != "ok" || !strings.Contains(text, "2") {
		t.Fatalf("execute over stdio: %v\n%s", sc, text)
	}
}

// TestServeLifecycle: /health answers, a second server on the same data dir
// is refused naming the pid, SIGTERM shuts down cleanly.
func TestServeLifecycle(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", addr, "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
				t.Fatalf("/health: %d %s", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("server did not answer /health: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReady(t, addr, 60*time.Second)
	resp, err := http.Post("http://"+addr+"/mcp", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/mcp without token must be 401: %v %v", resp, err)
	}
	resp.Body.Close()
	out, err := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by pid") {
		t.Fatalf("second server on the same data dir: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		mu.Lock()
		t.Fatalf("server exit after SIGTERM: %v\n%s", err, logs.String())
	}
}

// TestKill9ServerKeepsKernelVariables: the server is killed with SIGKILL
// mid-session; the next server re-attaches to the kernel and its variables
// are still there.
func TestKill9ServerKeepsKernelVariables(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir)

	first, cl := startStdioServer(t, bin, env)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "friday = {'model': 'trained', 'n': 42}"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	second, err := client.NewStdioMCPClient(bin, env, "stdio")
	if err != nil {
		t.Fatal(err)
	}
	cl2 := mcpClient(t, second)
	defer cl2.Close()
	sc, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "print(friday['n'])"})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("after kill -9 of the server the kernel must be re-attached with its variables: %v\n%s", sc, text)
	}
}

// startStdioServer runs the binary's stdio server as a child we can kill,
// with an MCP client on its pipes.
// startStdioServerWatching is startStdioServer that also watches the
// server's stderr: the returned channel closes at the first line containing
// want. The reading goroutine ends when the server exits (cleanup).
func startStdioServerWatching(t *testing.T, bin string, env []string, want string) (*exec.Cmd, *client.Client, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(bin, "stdio")
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(errs)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		seen := false
		for sc.Scan() { // NB: reads to the end, so the server never blocks on stderr
			if !seen && strings.Contains(sc.Text(), want) {
				seen = true
				close(found)
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = cmd.Wait() })
	tr := transport.NewIO(out, in, io.NopCloser(strings.NewReader("")))
	return cmd, mcpClient(t, client.NewClient(tr)), found
}

func startStdioServer(t *testing.T, bin string, env []string) (*exec.Cmd, *client.Client) {
	t.Helper()
	cmd := exec.Command(bin, "stdio")
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tr := transport.NewIO(out, in, io.NopCloser(strings.NewReader("")))
	return cmd, mcpClient(t, client.NewClient(tr))
}
