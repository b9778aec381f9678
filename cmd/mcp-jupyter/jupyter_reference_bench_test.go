package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// benchReferencePackages are Debian's packages of jupyter_server 1.23 that
// /usr/bin/python3 lacks next to python3-ipykernel and python3-jupyter-client.
var benchReferencePackages = []string{"python3-jupyter-server", "python3-anyio", "python3-argon2", "python3-nbconvert",
	"python3-prometheus-client", "python3-send2trash", "python3-terminado", "python3-websocket", "python3-sniffio",
	"python3-bleach", "python3-mistune", "python3-pandocfilters", "python3-tinycss2", "python3-jupyterlab-pygments",
	"python3-nbclient", "python3-webencodings", "python3-ptyprocess"}

// benchReferenceServer is a real Jupyter Server (Debian's jupyter_server) on
// loopback, in reference mode: its own kernels, from the test's python3
// kernelspec (the same /usr/bin/python3 ipykernel ours start).
type benchReferenceServer struct {
	URL, Token string
}

// benchReferenceCache is where Debian's packages of jupyter_server are unpacked
// (apt-get download + dpkg -x; the system is not touched), once per
// machine: MCP_JUPYTER_SERVER_CACHE or the user's cache dir.
func benchReferenceCache(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("MCP_JUPYTER_SERVER_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		tb.Fatalf("no cache dir for jupyter_server's packages (set MCP_JUPYTER_SERVER_CACHE): %v", err)
	}
	return filepath.Join(d, "mcp-jupyter", "jupyter-server-1.23")
}

// benchReferenceSitePackages returns the dir to put on PYTHONPATH, fetching
// and unpacking the packages first when the cache lacks them.
func benchReferenceSitePackages(tb testing.TB) string {
	tb.Helper()
	cache := benchReferenceCache(tb)
	site := filepath.Join(cache, "root", "usr", "lib", "python3", "dist-packages")
	if _, err := os.Stat(filepath.Join(cache, "complete")); err == nil {
		return site
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dl := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, benchReferencePackages...)...)
	dl.Dir = debs
	if out, err := dl.CombinedOutput(); err != nil {
		tb.Fatalf("apt-get download of jupyter_server's packages into %s: %v\n%s", debs, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, f := range files {
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", f, filepath.Join(cache, "root")).CombinedOutput(); err != nil {
			tb.Fatalf("dpkg -x %s: %v\n%s", f, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(cache, "complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return site
}

// startBenchReferenceServer starts a jupyter_server and waits until its API
// answers; it stops (kernels too) on cleanup.
func startBenchReferenceServer(tb testing.TB) benchReferenceServer {
	tb.Helper()
	python := testkit.PythonWithIPyKernel(tb)
	site := benchReferenceSitePackages(tb)
	specs := testkit.KernelSpecDir(tb)
	dir := tb.TempDir()
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // NB: a port another process may take before the server does; the start then fails clearly
	for _, d := range []string{"root", "runtime", "config", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(python, "-m", "jupyter_server", "--allow-root", "--no-browser",
		"--ServerApp.ip=127.0.0.1", "--ServerApp.port="+strconv.Itoa(port), "--ServerApp.port_retries=0",
		"--ServerApp.token="+token, "--ServerApp.root_dir="+filepath.Join(dir, "root"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+site, "JUPYTER_PATH="+specs,
		"JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"), "JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"JUPYTER_DATA_DIR="+filepath.Join(dir, "data"), "PYDEVD_DISABLE_FILE_VALIDATION=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start jupyter_server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	tb.Cleanup(func() {
		// SIGTERM: jupyter_server shuts its kernels down before it exits.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	s := benchReferenceServer{URL: "http://127.0.0.1:" + strconv.Itoa(port), Token: token}
	testkit.WaitUntil(tb, 60*time.Second, "jupyter_server answering GET /api", func() (bool, string) {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			tb.Fatalf("jupyter_server exited: %s", out)
		default:
		}
		resp, err := http.Get(s.URL + "/api")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return s
}

// benchReferenceRequest sends a REST request with the token and decodes a JSON
// answer into out (when not nil), failing on a status other than want.
func benchReferenceRequest(tb testing.TB, method, url, token string, body any, want int, out any) {
	tb.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		tb.Fatalf("%s %s: %s, want %d: %s", method, url, resp.Status, want, raw.String())
	}
	if out != nil {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			tb.Fatalf("%s %s: decode %q: %v", method, url, raw.String(), err)
		}
	}
}

// startKernel starts a python3 kernel on the reference server (POST
// /api/kernels) and returns its id.
func (s benchReferenceServer) startKernel(tb testing.TB) string {
	tb.Helper()
	var k struct {
		ID string `json:"id"`
	}
	benchReferenceRequest(tb, "POST", s.URL+"/api/kernels", s.Token, map[string]any{"name": "python3"}, http.StatusCreated, &k)
	if k.ID == "" || strings.Count(k.ID, "-") != 4 {
		tb.Fatalf("jupyter_server started a kernel with id %q", k.ID)
	}
	return k.ID
}

func (s benchReferenceServer) String() string { return fmt.Sprintf("jupyter_server at %s", s.URL) }

// TestBenchClientAgainstJupyterServer: the frontend client the channels
// benchmarks time (testkit.JupyterWS, v1 subprotocol, its own codec) works
// against a real jupyter_server — the baseline of BenchmarkChannelsExecute
// is a real frontend's round trip, and the line reader of
// BenchmarkFrontends10 reads a real server's stream messages in order.
func TestBenchClientAgainstJupyterServer(t *testing.T) {
	ref := startBenchReferenceServer(t)
	ws := testkit.DialJupyterWS(t, ref.URL, ref.Token, ref.startKernel(t), testkit.JupyterWSOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ws.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := ws.Execute(ctx, "1+1")
	if err != nil || r.Status != "ok" || r.ExecuteResult != "2" {
		t.Fatalf("1+1: %+v, %v", r, err)
	}
	if _, err := ws.Send(ctx, "shell", "execute_request", map[string]any{"code": "for i in range(300):\n    print('ref', i, flush=True)",
		"silent": false, "allow_stdin": false, "stop_on_error": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := benchReadLines(ctx, ws, "ref", 300); err != nil {
		t.Fatal(err)
	}
}
