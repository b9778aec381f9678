package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// JupyterServer is a running Debian jupyter_server (1.23, the reference
// the issue 16 tests and benchmarks compare against), started by
// StartJupyterServer and stopped (process group, kernels included) at
// cleanup.
type JupyterServer struct {
	// URL is its base URL, http://127.0.0.1:<port> (no trailing slash).
	URL string
	// Token is its own token (Authorization: token <Token>, or ?token=).
	Token string
	// RootDir is its notebook (contents) root.
	RootDir string
	// LogPath is the file holding its stdout and stderr.
	LogPath string
}

// JupyterServerOptions choose the mode of a JupyterServer.
type JupyterServerOptions struct {
	// GatewayURL, when set, starts it with --gateway-url: its kernels and
	// kernelspecs are then another server's (JupyterLab's server side
	// talking to a gateway). Empty: reference mode, its own kernels, run by
	// Debian's ipykernel (/usr/bin/python3), as ours are.
	GatewayURL string
	// GatewayToken is sent to the gateway as `Authorization: token <t>`.
	GatewayToken string
	// RootDir is the contents root; empty: a fresh t.TempDir().
	RootDir string
	// Config, when set, is written to jupyter_server_config.py in its own
	// config dir (JUPYTER_CONFIG_DIR), which it reads at start.
	Config string
}

// jupyterServerDir is testkit/outside/jupyterserver, found from this file
// so that any package's test can use it.
func jupyterServerDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testkit: cannot locate its own source file to find testkit/outside/jupyterserver")
	}
	return filepath.Join(filepath.Dir(file), "outside", "jupyterserver")
}

var jupyterServerFetch sync.Mutex

// JupyterServerPythonPath returns the PYTHONPATH entry holding Debian's
// jupyter_server and the packages it needs, unpacked (apt-get download +
// dpkg -x, nothing installed on the system) by
// testkit/outside/jupyterserver/fetch.sh into its git-ignored .cache; it
// runs fetch.sh first (a no-op when `make deps` already did).
func JupyterServerPythonPath(t testing.TB) string {
	t.Helper()
	dir := jupyterServerDir(t)
	jupyterServerFetch.Lock()
	defer jupyterServerFetch.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", filepath.Join(dir, "fetch.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("testkit/outside/jupyterserver/fetch.sh (Debian's jupyter_server via apt-get download + dpkg -x; `make deps` runs it too): %v\n%s", err, out)
	}
	pp := filepath.Join(dir, ".cache", "root", "usr", "lib", "python3", "dist-packages")
	if _, err := os.Stat(filepath.Join(pp, "jupyter_server")); err != nil {
		t.Fatalf("fetch.sh ran but %s has no jupyter_server: %v", pp, err)
	}
	return pp
}

// StartJupyterServer starts Debian's jupyter_server on a loopback port
// with a fresh token, HOME, config and runtime dirs under t.TempDir(), and
// waits until GET /api answers. Kernels it starts itself (reference mode)
// run /usr/bin/python3's ipykernel.
func StartJupyterServer(t testing.TB, opts JupyterServerOptions) *JupyterServer {
	t.Helper()
	python := PythonWithIPyKernel(t)
	pythonPath := JupyterServerPythonPath(t)
	home := t.TempDir()
	if opts.RootDir == "" {
		opts.RootDir = t.TempDir()
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	js := &JupyterServer{Token: hex.EncodeToString(tok[:]), RootDir: opts.RootDir, LogPath: filepath.Join(home, "jupyter-server.log")}

	// NB: a kernelspec of our own first on JUPYTER_PATH, so the reference
	// runs the very interpreter our server does (Debian's spec says
	// `python3`, which PATH may resolve to another Python).
	specDir := KernelSpecDir(t)
	env := []string{
		"HOME=" + home,
		"PATH=/usr/bin:/bin:" + os.Getenv("PATH"),
		"PYTHONPATH=" + pythonPath,
		"JUPYTER_PATH=" + specDir,
		"JUPYTER_CONFIG_DIR=" + filepath.Join(home, "config"),
		"JUPYTER_DATA_DIR=" + filepath.Join(home, "data"),
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(home, "runtime"),
		"LANG=C.UTF-8",
	}
	if opts.Config != "" {
		cfgDir := filepath.Join(home, "config")
		if err := os.MkdirAll(cfgDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, "jupyter_server_config.py"), []byte(opts.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if opts.GatewayToken != "" {
		// NB: in the environment, not argv (ps shows argv).
		env = append(env, "JUPYTER_GATEWAY_AUTH_TOKEN="+opts.GatewayToken)
	}

	// A port can be taken between choosing and binding: try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freeLoopbackPort(t)
		args := []string{"-m", "jupyter_server",
			"--ip=127.0.0.1", "--port=" + strconv.Itoa(port), "--ServerApp.port_retries=0",
			"--no-browser", "--allow-root",
			"--ServerApp.token=" + js.Token,
			"--ServerApp.root_dir=" + opts.RootDir,
			"--ServerApp.disable_check_xsrf=True",
		}
		if opts.GatewayURL != "" {
			args = append(args, "--gateway-url="+opts.GatewayURL,
				"--GatewayClient.request_timeout=60", "--GatewayClient.connect_timeout=30")
		}
		logf, err := os.Create(js.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Env = env
		cmd.Dir = home
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// NB: SIGTERM first (it shuts its kernels down), the group's
		// SIGKILL after a grace period.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			_ = logf.Close()
			t.Fatalf("start jupyter_server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cancel()
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = logf.Close()
		}
		js.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		err = waitJupyterServer(js.URL, exited, 60*time.Second)
		if err == nil {
			t.Cleanup(stop)
			return js
		}
		stop()
		lastErr = err
		if !strings.Contains(readTail(js.LogPath), "already in use") {
			break
		}
	}
	t.Fatalf("jupyter_server did not come up: %v\nits log (%s):\n%s", lastErr, js.LogPath, readTail(js.LogPath))
	return nil
}

// Log returns the tail of the server's log (for failure messages).
func (js *JupyterServer) Log() string { return readTail(js.LogPath) }

func waitJupyterServer(base string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	pause := 20 * time.Millisecond
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("it exited: %v", err)
		default:
		}
		resp, err := client.Get(base + "/api")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s/api not 200 within %s (last error %v)", base, timeout, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("it exited: %v", err)
		case <-time.After(pause): // NB: a poll interval; the GET decides
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8000 {
		b = append([]byte("…"), b[len(b)-8000:]...)
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}
