package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// TestAssetsAndWebSocketEndToEnd: a real kernel displays HTML; the reply
// links an asset that is leased (AssetStored names the kernel and the
// execution), readable over MCP and over HTTP with its Content-Type, listed
// per execution; the WebSocket replays the kernel's events from since=0
// with the bundle as the kernel sent it.
func TestAssetsAndWebSocketEndToEnd(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k,
		"code": "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))"})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	exec, _ := sc["execution_id"].(string)
	sc, text = callTool(t, cl, "list_assets", map[string]any{"execution_id": exec})
	if sc["count"] != float64(1) {
		t.Fatalf("list_assets: %s", text)
	}
	var listed struct {
		Assets []mcpserver.AssetInfo `json:"assets"`
	}
	_ = json.Unmarshal([]byte(text), &listed)
	a := listed.Assets[0]
	if a.MIME != "text/html" || len(a.Origins) != 1 || a.Origins[0].KernelID != k || a.Origins[0].ExecutionID != exec {
		t.Fatalf("asset %+v", a)
	}
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 30*time.Second)
	defer cancel()
	var rr mcp.ReadResourceRequest
	rr.Params.URI = a.URI
	res, err := cl.ReadResource(ctx, rr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || tc.Text != "<b>bold</b>" || tc.MIMEType != "text/html" {
		t.Fatalf("resources/read: %+v", res.Contents)
	}
	for _, bad := range []string{"../../mcp-token", "ABC", strings.Repeat("0", 64)} {
		rr.Params.URI = mcpserver.AssetScheme + bad
		if res, err := cl.ReadResource(ctx, rr); err == nil {
			t.Fatalf("resources/read %s: served %+v", bad, res.Contents)
		} else if strings.Contains(err.Error(), c.token) {
			t.Fatalf("resources/read %s leaked the token: %v", bad, err)
		}
	}

	mux := http.NewServeMux()
	c.live.mount(mux, mcpserver.Guard{Token: c.token})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path, tok string) (int, string, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get(a.HTTPPath, c.token); code != 200 || ct != "text/html" || body != "<b>bold</b>" {
		t.Fatalf("GET %s: %d %q %q", a.HTTPPath, code, ct, body)
	}
	if code, _, _ := get(a.HTTPPath, ""); code != 401 {
		t.Fatalf("unauthenticated GET: %d", code)
	}
	if code, _, body := get("/assets/..%2fmcp-token", c.token); code != 400 || strings.Contains(body, c.token) {
		t.Fatalf("traversal GET: %d %q", code, body)
	}

	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?since=0&kernel=" + k + "&token=" + c.token
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	var sawHTML, sawFinished bool
	var last uint64
	var lines [][]byte
	for !(sawHTML && sawFinished) {
		if len(lines) == 0 {
			_, msg, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("ws read after seq %d: %v", last, err)
			}
			lines = bytes.Split(msg, []byte("\n")) // one event per line
		}
		data := lines[0]
		lines = lines[1:]
		var ev struct {
			Seq     uint64          `json:"seq"`
			Type    string          `json:"type"`
			Kernel  string          `json:"kernel"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq <= last || ev.Kernel != k {
			t.Fatalf("ws event %d (%s) after %d", ev.Seq, ev.Kernel, last)
		}
		last = ev.Seq
		sawHTML = sawHTML || (ev.Type == "IOPubMessageReceived" && strings.Contains(string(ev.Payload), `"text/html":"\u003cb\u003ebold\u003c/b\u003e"`)) ||
			strings.Contains(string(ev.Payload), `"text/html":"<b>bold</b>"`)
		sawFinished = sawFinished || ev.Type == "ExecutionFinished"
	}
}
