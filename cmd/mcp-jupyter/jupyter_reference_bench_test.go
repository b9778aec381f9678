package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// startReferenceKernel starts a python3 kernel (POST /api/kernels) on a
// real jupyter_server in reference mode (testkit.StartJupyterServer: its
// kernels run the same /usr/bin/python3 ipykernel ours do) and returns the
// server and the kernel's id.
func startReferenceKernel(tb testing.TB) (*testkit.JupyterServer, string) {
	tb.Helper()
	js := testkit.StartJupyterServer(tb, testkit.JupyterServerOptions{})
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
	js, kernel := startReferenceKernel(t)
	ws := testkit.DialJupyterWS(t, js.URL, js.Token, kernel, testkit.JupyterWSOptions{})
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
