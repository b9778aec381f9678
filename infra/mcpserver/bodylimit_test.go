package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// filler is a body of n bytes made up as it is read (so the test itself
// holds none of it), counting what was taken.
type filler struct {
	left int64
	read atomic.Int64
}

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.left)
	for i := range p[:n] {
		p[i] = ' '
	}
	f.left -= n
	f.read.Add(n)
	return int(n), nil
}

func mcpTestServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	s := New(newFakeBackend(), opts)
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.HTTPHandler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return ts
}

// post sends size bytes to /mcp, with a declared length or chunked.
func post(t *testing.T, url string, size int64, declared bool) (*http.Response, string, *filler) {
	t.Helper()
	body := &filler{left: size}
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if declared {
		req.ContentLength = size
	} else {
		req.ContentLength = -1 // chunked
	}
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %d bytes (declared %v): %v", size, declared, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), body
}

// TestMCPBodyOverLimitRefused: a 50 MB body to /mcp, declared or chunked,
// is refused with 413 and a JSON-RPC error that names the limit; a declared
// one is refused before its body is read (the client could not send more
// than the socket buffers hold).
func TestMCPBodyOverLimitRefused(t *testing.T) {
	ts := mcpTestServer(t, Options{Token: "tok", MaxRequestBytes: 1 << 20})
	for _, declared := range []bool{true, false} {
		res, body, sent := post(t, ts.URL+"/mcp", 50<<20, declared)
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("declared=%v: status %d, want 413: %.300s", declared, res.StatusCode, body)
		}
		var rpc struct {
			JSONRPC string `json:"jsonrpc"`
			Error   struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &rpc); err != nil || rpc.JSONRPC != "2.0" || rpc.Error.Code != -32600 {
			t.Fatalf("declared=%v: not a JSON-RPC error: %v %q", declared, err, body)
		}
		if !strings.Contains(rpc.Error.Message, "at most 1048576 bytes") || !strings.Contains(rpc.Error.Message, "--max-request-bytes") {
			t.Errorf("declared=%v: the message does not say the limit: %s", declared, rpc.Error.Message)
		}
		if n := sent.read.Load(); n >= 50<<20 {
			t.Errorf("declared=%v: the whole 50 MB body was taken (%d bytes) although it was refused", declared, n)
		}
	}
}

// TestMCPBodyLimitThroughClient: the real Streamable HTTP client gets a
// clear error for a call over the limit, and calls under it still work.
func TestMCPBodyLimitThroughClient(t *testing.T) {
	ts := mcpTestServer(t, Options{Token: "tok", MaxRequestBytes: 64 << 10})
	c, err := client.NewStreamableHttpClient(ts.URL+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer tok"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": strings.Repeat("1\n", 1000)}), "status: ok")
	var req mcp.CallToolRequest
	req.Params.Name = "execute"
	req.Params.Arguments = map[string]any{"kernel": "k1", "code": strings.Repeat("x = 1\n", 100<<10/6)}
	_, err = c.CallTool(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "413") && !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a 100 KB call over a 64 KB limit: err %v, want a 413", err)
	}
	wantOK(t, call(t, c, "list_kernelspecs", nil), "python3")
}

// TestBodyLimitPlain: other routes get a plain-text 413, and a handler that
// answered before reading is left alone under the limit.
func TestBodyLimitPlain(t *testing.T) {
	h := BodyLimit{Max: 1000, Setting: "--max-request-bytes"}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		size     int64
		declared bool
		status   int
	}{{999, true, 200}, {1000, false, 200}, {1001, true, 413}, {1001, false, 413}, {5 << 20, false, 413}} {
		res, body, _ := post(t, ts.URL, tc.size, tc.declared)
		if res.StatusCode != tc.status {
			t.Errorf("%d bytes (declared %v): %d %q, want %d", tc.size, tc.declared, res.StatusCode, body, tc.status)
		}
		if tc.status == 413 && (!strings.Contains(body, "at most 1000 bytes") || strings.HasPrefix(body, "{")) {
			t.Errorf("%d bytes: the plain refusal does not say the limit: %q", tc.size, body)
		}
	}
}

// TestUnsizedBodiesWaitTheirTurn: with one slot, a second chunked body
// waits while the first is being read and gets 503 when its wait runs out;
// once the first is read, the next one is served. Bodies with a length
// never wait.
func TestUnsizedBodiesWaitTheirTurn(t *testing.T) {
	h := BodyLimit{Max: 1 << 20, Unsized: NewUnsizedBodies(1, 200*time.Millisecond)}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	pr, pw := io.Pipe()
	first := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, pr)
		req.ContentLength = -1
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		first <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	if _, err := pw.Write([]byte("start")); err != nil { // the first body is being read: its slot is taken
		t.Fatal(err)
	}
	if res, body, _ := post(t, ts.URL, 10, false); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Content-Length") {
		t.Fatalf("a second chunked body while the first is read: %d %q, want 503", res.StatusCode, body)
	}
	if res, body, _ := post(t, ts.URL, 10, true); res.StatusCode != http.StatusOK {
		t.Fatalf("a body with a length waited: %d %q", res.StatusCode, body)
	}
	_ = pw.Close()
	if got := <-first; got != "200 got 5 bytes" {
		t.Fatalf("first chunked body: %s", got)
	}
	if res, body, _ := post(t, ts.URL, 10, false); res.StatusCode != http.StatusOK {
		t.Fatalf("a chunked body after the first was read: %d %q", res.StatusCode, body)
	}
}
