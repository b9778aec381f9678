package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// jupyterServerNoDelay is a jupyter_server config that turns Nagle's
// algorithm off on its kernel WebSockets (tornado leaves it on): a burst of
// small frames (busy, execute_input, execute_result, execute_reply, idle)
// then leaves at once instead of waiting for the client's delayed ACK (40 ms
// on Linux). Ours sets TCP_NODELAY as every Go server does; this is the
// jupyter_server a latency-minded operator would run.
const jupyterServerNoDelay = `from jupyter_server.services.kernels.handlers import ZMQChannelsHandler
_open = ZMQChannelsHandler.open
def _open_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return _open(self, *args, **kwargs)
ZMQChannelsHandler.open = _open_nodelay
`

// startReferenceKernel starts a python3 kernel (POST /api/kernels) on a
// real jupyter_server in reference mode (testkit.StartJupyterServer: its
// kernels run the same /usr/bin/python3 ipykernel ours do) and returns the
// server and the kernel's id.
func startReferenceKernel(tb testing.TB, opts testkit.JupyterServerOptions) (*testkit.JupyterServer, string) {
	tb.Helper()
	js := testkit.StartJupyterServer(tb, opts)
	body, _ := json.Marshal(map[string]any{"name": "python3"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", js.URL+"/api/kernels", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+js.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s/api/kernels: %v", js.URL, err)
	}
	defer resp.Body.Close()
	var k struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || resp.StatusCode != http.StatusCreated || strings.Count(k.ID, "-") != 4 {
		tb.Fatalf("POST %s/api/kernels: %s, id %q, %v\n%s", js.URL, resp.Status, k.ID, err, js.Log())
	}
	return js, k.ID
}

// TestBenchClientAgainstJupyterServer: the frontend client the channels
// benchmarks time (testkit.JupyterWS, v1 subprotocol, its own codec) works
// against a real jupyter_server — the baseline of BenchmarkChannelsExecute
// is a real frontend's round trip, and the line reader of
// BenchmarkFrontends10 reads a real server's stream messages in order.
func TestBenchClientAgainstJupyterServer(t *testing.T) {
	js, kernel := startReferenceKernel(t, testkit.JupyterServerOptions{})
	ws := testkit.DialJupyterWS(t, js.URL, js.Token, kernel, testkit.JupyterWSOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ws.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// A read that times out leaves the connection usable (WaitReady's
	// retries rely on it; a cancelled read of coder/websocket would close it).
	for timedOut := false; !timedOut; {
		short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := ws.Read(short)
		cancelShort()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
		timedOut = err != nil
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
