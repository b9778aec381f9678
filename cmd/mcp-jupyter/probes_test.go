package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// probeWithin GETs url and fails unless it answers within limit.
func probeWithin(t *testing.T, url string, limit time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s did not answer within %s (%v): the handler waits on the log, the actors or the core's lock", url, limit, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestProbesAnswerWhileTheLogAndActorsAreBlocked: the log holds every
// append (its BeforeCommit hook blocks), so the scheduler actor of a kernel
// is stuck in the append of a submitted execution; and the test holds the
// core's lock, which every /mcp request takes and through which every
// handler reaches the log and the actors (c.log, c.sys are behind it). The
// three probes must still answer at once: a handler that touched the log,
// the actors or that lock would wait until the client gives up. A check
// that cannot complete is not hidden either: once the monitor's snapshot is
// older than its bound, /readyz answers 503 saying so — at once too.
func TestProbesAnswerWhileTheLogAndActorsAreBlocked(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	c := newCore(cfg, discard())
	c.probes.staleAfter = 3 * time.Second
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	gate := make(chan struct{})
	c.beforeCommit = func() {
		if hold.Load() {
			select {
			case held <- struct{}{}:
			default:
			}
			<-gate
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	mux := http.NewServeMux()
	c.routes(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	testkit.WaitUntil(t, 30*time.Second, "/readyz ready", func() (bool, string) {
		rd := c.probes.ready(time.Now())
		return rd.Status == "ready", rd.Reason
	})
	st, err := c.sys.StartKernel(ctx, "python3", "probes", "", "admin")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}

	// Block the log, then the scheduler actor behind it.
	hold.Store(true)
	var release sync.Once
	unblock := func() { release.Do(func() { hold.Store(false); close(gate) }) }
	t.Cleanup(unblock)
	submitted := make(chan error, 1)
	go func() {
		_, err := c.sys.Submit(ctx, st.ID, scheduler.Submit{ExecutionID: "held", Code: "print('held')"})
		submitted <- err
	}()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the submit never reached the log")
	}
	select {
	case err := <-submitted:
		t.Fatalf("the submit returned while the log held its append: %v", err)
	default:
	}
	// Hold the core's lock as the hot path would.
	c.mu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			c.mu.Unlock()
		}
	}
	defer unlock()

	for _, p := range []struct{ path, want string }{
		{pathHealth, `{"status":"ok"}`},
		{pathLivez, `"status":"ok"`},
		{pathReadyz, `"status":"ready"`},
	} {
		code, body := probeWithin(t, ts.URL+p.path, 2*time.Second)
		if code != http.StatusOK || !strings.Contains(body, p.want) {
			t.Errorf("%s while the log and actors are blocked: %d %s", p.path, code, body)
		}
	}

	// The checks cannot complete (the monitor waits for the lock): after
	// staleAfter, /readyz says so, still without waiting.
	testkit.WaitUntil(t, 30*time.Second, "/readyz reports the stuck checks", func() (bool, string) {
		code, body := probeWithin(t, ts.URL+pathReadyz, 2*time.Second)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "readiness checks have not completed"), body
	})
	if code, body := probeWithin(t, ts.URL+pathHealth, 2*time.Second); code != http.StatusOK {
		t.Errorf("/health with the checks stuck: %d %s", code, body)
	}

	// Unblocked, the held execution goes on and /readyz is ready again.
	unlock()
	unblock()
	if err := <-submitted; err != nil {
		t.Fatalf("submit after the log was released: %v", err)
	}
	testkit.WaitUntil(t, 30*time.Second, "/readyz ready again", func() (bool, string) {
		code, body := probeWithin(t, ts.URL+pathReadyz, 2*time.Second)
		return code == http.StatusOK, body
	})
}
