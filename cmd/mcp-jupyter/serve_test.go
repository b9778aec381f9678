package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// buildBinary compiles the real binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcp-jupyter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a child's stderr while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHTTP polls url until it answers 200 (tests may poll; the server may not).
func waitHTTP(t *testing.T, url string, stderr *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := get(url)
		if err == nil && code == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not 200 after 60s (last: %d %s %v)\nstderr:\n%s", url, code, body, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeLifecycle(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)

	first := exec.Command(bin, "serve", "--log-format", "json")
	first.Env = append(os.Environ(), "MCP_DATA_DIR="+dataDir, "MCP_ADDR="+addr, "MCP_SHUTDOWN_GRACE=10s")
	var stderr syncBuffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	t.Cleanup(func() {
		_ = first.Process.Kill()
		<-exited
	})

	if body := waitHTTP(t, "http://"+addr+"/health", &stderr); strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("/health body %q", body)
	}
	waitHTTP(t, "http://"+addr+"/livez", &stderr)
	if body := waitHTTP(t, "http://"+addr+"/readyz", &stderr); !strings.Contains(body, "ready") {
		t.Fatalf("/readyz body %q", body)
	}

	// A second server on the same data dir refuses to start.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "serve", "--data-dir", dataDir, "--addr", freeAddr(t))
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second server: err %v, want a non-zero exit\n%s", err, out)
	}
	if !strings.Contains(string(out), "in use by pid") {
		t.Fatalf("second server output does not say the dir is in use:\n%s", out)
	}

	// SIGTERM shuts the first down cleanly.
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("first server exited with %v\nstderr:\n%s", err, stderr.String())
		}
		exited <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("first server still running 30s after SIGTERM\nstderr:\n%s", stderr.String())
	}

	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{})
	if err != nil {
		t.Fatalf("reopen the log after shutdown: %v", err)
	}
	defer l.Close()
	var types []string
	if err := l.Read(context.Background(), 0, 0, func(e events.Event) error {
		types = append(types, e.Type)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || types[0] != events.TypeServerStarted || types[1] != events.TypeServerStopped {
		t.Fatalf("log holds %v, want [ServerStarted ServerStopped]", types)
	}
	seq, _, ok, err := l.LoadSnapshot("kernels")
	if err != nil || !ok || seq != 1 {
		t.Fatalf("kernels snapshot at %d (ok %v, err %v), want 1", seq, ok, err)
	}
}

func TestHelpExplainsEveryFlagAndVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, func(string) string { return "" }, &out, &errb); code != 0 {
		t.Fatalf("serve --help exit %d", code)
	}
	for _, s := range serveSettings() {
		if !strings.Contains(errb.String(), "--"+s.flag) || !strings.Contains(errb.String(), "$"+s.env) {
			t.Errorf("serve --help does not mention --%s / $%s:\n%s", s.flag, s.env, errb.String())
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"MCP_ADDR": "127.0.0.1:1", "MCP_DATA_DIR": "/env", "MCP_SHUTDOWN_GRACE": "3s"}
	c, err := parseServe([]string{"--addr", "127.0.0.1:2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:2" || c.DataDir != "/env" || c.ShutdownGrace != 3*time.Second {
		t.Fatalf("config %+v", c)
	}
	if _, err := parseServe([]string{"--log-format", "xml"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("--log-format xml accepted")
	}
}
