package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitReady waits for /readyz to answer 200, failing with its last body.
func waitReady(t testing.TB, addr string, timeout time.Duration) readiness {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		resp, err := http.Get("http://" + addr + pathReadyz)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(body)
			if resp.StatusCode == 200 {
				var rd readiness
				if err := json.Unmarshal(body, &rd); err != nil {
					t.Fatalf("/readyz body %q: %v", body, err)
				}
				return rd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after %s; last /readyz: %s (err %v)", timeout, last, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is the real binary serving on addr, its stderr collected.
type server struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
	err  error
}

func startServer(t testing.TB, bin string, env []string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", s.addr, "--log-format", "json"}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// wait waits for the process to exit within timeout and returns its error.
func (s *server) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		t.Fatalf("server did not exit within %s; logs:\n%s", timeout, s.Logs())
		return nil
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// gauge gathers c's registry and returns the value of the unlabelled
// counter or gauge name.
func gauge(t testing.TB, c *core, name string) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}
