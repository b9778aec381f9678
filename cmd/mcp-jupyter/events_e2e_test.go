package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// lineReader collects a process's output lines on a channel (bounded: the
// test reads them as they come).
func lineReader(t *testing.T, r io.Reader) <-chan string {
	t.Helper()
	ch := make(chan string, 4096)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// jsonEvent is what the test reads of an event's public JSON form.
type jsonEvent struct {
	Seq    uint64 `json:"seq"`
	Stream string `json:"stream"`
	Type   string `json:"type"`
}

// untilFinished reads events from lines until the execution stream's
// ExecutionFinished, checking log order, and returns the types seen on it.
func untilFinished(t *testing.T, who string, lines <-chan string, stream string) []string {
	t.Helper()
	var last uint64
	var types []string
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s ended before ExecutionFinished; saw %v", who, types)
			}
			var e jsonEvent
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("%s printed a line that is not an event: %q", who, l)
			}
			if e.Seq <= last {
				t.Fatalf("%s: event %d after %d: out of order", who, e.Seq, last)
			}
			last = e.Seq
			if e.Stream != stream {
				continue
			}
			types = append(types, e.Type)
			if e.Type == "ExecutionFinished" {
				return types
			}
		case <-timeout:
			t.Fatalf("%s: no ExecutionFinished for %s after 60s; saw %v", who, stream, types)
		}
	}
}

// TestSeparateProcessesFollowARunningServer: a real `serve` with NATS on
// TCP; the example subscriber (its own process) and `events tail -f` (its
// own process, through the HTTP API) both follow it while an execution runs
// through MCP over HTTP, and see its events in log order. Then show and
// verify read the running server's log, and, once it stopped, the data dir.
func TestSeparateProcessesFollowARunningServer(t *testing.T) {
	bin := buildBinary(t)
	sub := filepath.Join(t.TempDir(), "subscriber")
	if out, err := exec.Command("go", "build", "-o", sub, "../../docs/examples/subscriber").CombinedOutput(); err != nil {
		t.Fatalf("build the example subscriber: %v\n%s", err, out)
	}
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	addr, natsAddr := freeAddr(t), freeAddr(t)
	const natsToken = "s3cret-nats-token"
	srv := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", addr, "--nats-listen", natsAddr, "--nats-token", natsToken, "--log-format", "json")
	srv.Env = append(os.Environ(), "JUPYTER_PATH="+testkit.KernelSpecDir(t))
	var logs strings.Builder
	var mu sync.Mutex
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	// NB: /readyz, not /health: the port opens before the replay, and the
	// token exists once the server is ready.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("server did not come up:\n%s", logs.String())
		}
	}
	token, err := os.ReadFile(filepath.Join(dataDir, "mcp-token"))
	if err != nil {
		t.Fatal(err)
	}
	// /events needs the bearer token too.
	if resp, err := http.Get("http://" + addr + "/events"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("/events without a token: %v %v", resp, err)
	}

	// The subscriber: a separate process on TCP, with the token.
	subCmd := exec.Command(sub, "-url", "nats://"+natsAddr, "-token", natsToken, "-subject", "mcpjupyter.ev.>")
	subOut, _ := subCmd.StdoutPipe()
	subErr, _ := subCmd.StderrPipe()
	if err := subCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = subCmd.Process.Kill(); _ = subCmd.Wait() })
	subLines, subStatus := lineReader(t, subOut), lineReader(t, subErr)
	select {
	case l := <-subStatus:
		if !strings.HasPrefix(l, "subscribed") {
			t.Fatalf("subscriber: %s", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscriber did not subscribe")
	}
	// A wrong token is refused.
	if out, err := exec.Command(sub, "-url", "nats://"+natsAddr, "-token", "wrong").CombinedOutput(); err == nil || !strings.Contains(strings.ToLower(string(out)), "authorization") {
		t.Fatalf("subscriber with a wrong token: %v %s", err, out)
	}

	// events tail -f: a separate process, through the running server's HTTP API.
	tail := exec.Command(bin, "events", "tail", "-f", "--json", "--data-dir", dataDir, "--addr", addr)
	tailOut, _ := tail.StdoutPipe()
	var tailErr strings.Builder
	tail.Stderr = &tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	tailLines := lineReader(t, tailOut)

	// An execution through MCP over HTTP with the bearer token.
	httpc, err := client.NewStreamableHttpClient("http://"+addr+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}))
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, httpc)
	defer cl.Close()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('loading')\n1/0"})
	if sc["status"] != "error" {
		t.Fatalf("execute: %v\n%s", sc, text)
	}
	execID := sc["execution_id"].(string)
	stream := "execution/" + execID
	want := func(who string, types []string) {
		t.Helper()
		if types[0] != "ExecutionQueued" || types[len(types)-1] != "ExecutionFinished" || !strings.Contains(strings.Join(types, " "), "ExecutionStarted") {
			t.Fatalf("%s: the execution's events are %v", who, types)
		}
	}
	want("subscriber", untilFinished(t, "subscriber", subLines, stream))
	want("events tail -f", untilFinished(t, "events tail -f", tailLines, stream))

	// show and verify against the running server (its HTTP API).
	out, err := exec.Command(bin, "events", "show", execID, "--data-dir", dataDir, "--addr", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ZeroDivisionError") || !strings.Contains(string(out), "| loading") {
		t.Fatalf("events show through the running server: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "events", "verify", "--data-dir", dataDir, "--addr", addr).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("events verify through the running server: %v\n%s", err, out)
	}
	callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": k})
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		mu.Lock()
		t.Fatalf("server exit: %v\n%s", err, logs.String())
	}
	stopped = true
	// Stopped: the same commands read the data dir itself.
	out, err = exec.Command(bin, "events", "show", execID, "--data-dir", dataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "finished: error") {
		t.Fatalf("events show on the stopped data dir: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "events", "tail", "--type", "ServerStopped", "--data-dir", dataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ServerStopped") {
		t.Fatalf("events tail on the stopped data dir: %v\n%s", err, out)
	}
}
