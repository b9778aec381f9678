package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// modernRequest is a JSON-RPC request of MCP 2026-07-28 as it goes over
// Streamable HTTP: the revision in _meta and in Mcp-Protocol-Version, the
// method (and tool name) mirrored in Mcp-Method / Mcp-Name, no session.
type modernRequest struct {
	method, name string
	params       map[string]any
	metaVersion  string // "" : 2026-07-28
	headerVer    string // "" : 2026-07-28
	token        string
	extraMeta    map[string]any
}

type httpAnswer struct {
	status int
	header http.Header
	body   string
}

func postModern(t testing.TB, url string, r modernRequest) httpAnswer {
	t.Helper()
	meta := map[string]any{
		mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
		mcp.MetaKeyClientInfo:         map[string]any{"name": "raw-http", "version": "1"},
		mcp.MetaKeyClientCapabilities: map[string]any{},
	}
	if r.metaVersion != "" {
		meta[mcp.MetaKeyProtocolVersion] = r.metaVersion
	}
	for k, v := range r.extraMeta {
		meta[k] = v
	}
	params := map[string]any{"_meta": meta}
	for k, v := range r.params {
		params[k] = v
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": r.method, "params": params})
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	hv := mcp.ProtocolVersion20260728
	if r.headerVer != "" {
		hv = r.headerVer
	}
	req.Header.Set(mcp.HeaderProtocolVersion, hv)
	req.Header.Set(mcp.HeaderMethod, r.method)
	if r.name != "" {
		req.Header.Set(mcp.HeaderName, r.name)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST %s: %v", r.method, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return httpAnswer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// lastJSONRPC is the last JSON-RPC message of an answer, plain JSON or an
// SSE stream ("data: {...}" lines).
func lastJSONRPC(t testing.TB, a httpAnswer) map[string]any {
	t.Helper()
	msgs := jsonrpcMessages(a)
	if len(msgs) == 0 {
		t.Fatalf("no JSON-RPC message in the answer (HTTP %d): %s", a.status, a.body)
	}
	return msgs[len(msgs)-1]
}

func jsonrpcMessages(a httpAnswer) []map[string]any {
	var out []map[string]any
	if strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream") {
		for _, line := range strings.Split(a.body, "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(data), &m) == nil {
					out = append(out, m)
				}
			}
		}
		return out
	}
	var m map[string]any
	if json.Unmarshal([]byte(a.body), &m) == nil {
		out = append(out, m)
	}
	return out
}

// TestModernHTTPEdge checks MCP 2026-07-28 on our HTTP edge with raw
// requests, as a client written from the spec sends them: no session,
// server/discover answered, the bearer token and the body limit enforced
// on stateless requests, GET refused with 405, a header/_meta revision
// mismatch refused with 400, and execute's outputs streamed as
// notifications/progress on the request's own response stream.
func TestModernHTTPEdge(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	cfg.MaxRequestBytes = 256 << 10
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	url := "http://127.0.0.1:" + serveOn(t, c) + pathMCP

	// server/discover, no session: both revisions offered, no session minted.
	a := postModern(t, url, modernRequest{method: "server/discover", token: c.token})
	if a.status != http.StatusOK {
		t.Fatalf("server/discover: HTTP %d %s", a.status, a.body)
	}
	if sid := a.header.Get(mcp.HeaderSessionID); sid != "" {
		t.Fatalf("server/discover minted a session (%s) on 2026-07-28", sid)
	}
	disc := lastJSONRPC(t, a)
	res, _ := disc["result"].(map[string]any)
	versions, _ := json.Marshal(res["supportedVersions"])
	for _, v := range []string{mcp.ProtocolVersion20260728, mcp.ProtocolVersion20251125} {
		if !strings.Contains(string(versions), v) {
			t.Fatalf("server/discover does not offer %s: %s", v, a.body)
		}
	}

	// The bearer token guards stateless requests as it guards sessions.
	for _, tok := range []string{"", "mcpj_" + strings.Repeat("0", 64)} {
		a := postModern(t, url, modernRequest{method: "tools/call", name: "list_kernelspecs", params: map[string]any{"name": "list_kernelspecs", "arguments": map[string]any{}}, token: tok})
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("tools/call with token %q: HTTP %d (WWW-Authenticate %q), want 401 with a Bearer challenge", tok, a.status, a.header.Get("WWW-Authenticate"))
		}
	}

	// A tool call without any session works, and mints none.
	call := func(tool string, args map[string]any, extraMeta map[string]any) httpAnswer {
		return postModern(t, url, modernRequest{method: "tools/call", name: tool, params: map[string]any{"name": tool, "arguments": args}, token: c.token, extraMeta: extraMeta})
	}
	a = call("start_kernel", map[string]any{"kernelspec": "python3"}, nil)
	if a.status != http.StatusOK || a.header.Get(mcp.HeaderSessionID) != "" {
		t.Fatalf("start_kernel: HTTP %d, session %q: %s", a.status, a.header.Get(mcp.HeaderSessionID), a.body)
	}
	started, _ := lastJSONRPC(t, a)["result"].(map[string]any)
	sc, _ := started["structuredContent"].(map[string]any)
	kernel, _ := sc["kernel_id"].(string)
	if kernel == "" {
		t.Fatalf("start_kernel returned no kernel_id: %s", a.body)
	}

	// execute's outputs come as notifications/progress on this request's
	// response stream, before its result.
	a = call("execute", map[string]any{"kernel": kernel, "code": "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.4)"},
		map[string]any{"progressToken": "p1"})
	msgs := jsonrpcMessages(a)
	var progress []string
	for _, m := range msgs {
		if m["method"] == string(mcp.MethodNotificationProgress) {
			p, _ := m["params"].(map[string]any)
			if p["progressToken"] != "p1" {
				t.Fatalf("progress with another token: %v", m)
			}
			msg, _ := p["message"].(string)
			progress = append(progress, msg)
		}
	}
	last := lastJSONRPC(t, a)
	if _, ok := last["result"]; !ok || len(progress) == 0 || !strings.Contains(strings.Join(progress, "\n"), "tick 0") {
		t.Fatalf("execute with a progressToken on 2026-07-28: want notifications/progress with the ticks, then the result; got %d progress (%q), content type %s:\n%s",
			len(progress), progress, a.header.Get("Content-Type"), a.body)
	}

	// GET (the old server-to-client stream) is gone in 2026-07-28: 405.
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getRes, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	getRes.Body.Close()
	if getRes.StatusCode != http.StatusMethodNotAllowed || getRes.Header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET /mcp on 2026-07-28: HTTP %d Allow %q, want 405 Allow POST", getRes.StatusCode, getRes.Header.Get("Allow"))
	}

	// The header and _meta must name the same revision.
	a = postModern(t, url, modernRequest{method: "tools/call", name: "list_kernels", params: map[string]any{"name": "list_kernels", "arguments": map[string]any{}},
		token: c.token, metaVersion: mcp.ProtocolVersion20251125})
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "does not match") {
		t.Fatalf("Mcp-Protocol-Version 2026-07-28 with _meta 2025-11-25: HTTP %d %s, want 400 naming the mismatch", a.status, a.body)
	}

	// The body limit holds for stateless requests: 413 as a JSON-RPC error.
	a = call("execute", map[string]any{"kernel": kernel, "code": "x = '" + strings.Repeat("a", 300<<10) + "'"}, nil)
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "max-request-bytes") {
		t.Fatalf("a 300 KiB body over --max-request-bytes 256 KiB on 2026-07-28: HTTP %d %s", a.status, lastChars(a.body, 500))
	}
	a = call("shutdown_kernel", map[string]any{"kernel": kernel}, nil)
	if a.status != http.StatusOK || strings.Contains(a.body, `"isError":true`) {
		t.Fatalf("shutdown_kernel: HTTP %d %s", a.status, a.body)
	}
}
