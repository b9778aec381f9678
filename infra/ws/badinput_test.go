package ws_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestRefusedBeforeUpgrade(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	appendN(t, l, "k", 3, "x")
	s := startServer(t, l, ws.Options{})
	httpURL := s.srv.URL + "/ws"
	cases := []struct {
		name   string
		query  string
		header http.Header
		status int
		says   string
	}{
		{"no token", "", nil, 401, "Authorization: Bearer"},
		{"wrong token", "", http.Header{"Authorization": {"Bearer nope"}}, 401, "wrong"},
		{"wrong query token", "?token=nope", nil, 401, "Unauthorized"},
		{"wrong origin", "", http.Header{"Authorization": {"Bearer " + token}, "Origin": {"https://evil.example"}}, 403, "Origin"},
		{"bad since", "?since=abc", http.Header{"Authorization": {"Bearer " + token}}, 400, "since"},
		{"since past the end", "?since=99", http.Header{"Authorization": {"Bearer " + token}}, 400, "past the last event 3"},
		{"bad kernel", "?kernel=../../x", http.Header{"Authorization": {"Bearer " + token}}, 400, "kernel"},
		{"unknown parameter", "?sinc=1", http.Header{"Authorization": {"Bearer " + token}}, 400, "unknown parameter"},
		{"repeated parameter", "?since=1&since=2", http.Header{"Authorization": {"Bearer " + token}}, 400, "given 2 times"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", httpURL+c.query, nil)
			for k, v := range c.header {
				req.Header[k] = v
			}
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != c.status || !strings.Contains(string(body), c.says) {
				t.Fatalf("%d %q, want %d saying %q", res.StatusCode, body, c.status, c.says)
			}
		})
	}
	// A browser: token in the query, a loopback Origin on another port.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.url+"?since=0&token="+token, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:5173"}}})
	if err != nil {
		t.Fatalf("browser-style dial: %v", err)
	}
	defer c.CloseNow()
	if got := readSeqs(t, c, 3); len(got) != 3 {
		t.Fatalf("got %v", got)
	}
}

func TestBadClientFrames(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	s := startServer(t, l, ws.Options{ReadLimit: 256})
	cases := []struct {
		name string
		typ  websocket.MessageType
		msg  string
		code websocket.StatusCode
		says string
	}{
		{"oversized", websocket.MessageText, `{"type":"ping","x":"` + strings.Repeat("a", 1000) + `"}`, websocket.StatusMessageTooBig, ""},
		{"malformed", websocket.MessageText, `{"type":`, websocket.StatusInvalidFramePayloadData, "malformed client message"},
		{"unknown field", websocket.MessageText, `{"type":"ping","cmd":"rm"}`, websocket.StatusInvalidFramePayloadData, "malformed client message"},
		{"unknown type", websocket.MessageText, `{"type":"subscribe"}`, websocket.StatusInvalidFramePayloadData, "unknown client message type"},
		{"binary", websocket.MessageBinary, "\x00\x01", websocket.StatusUnsupportedData, "binary client message"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, s.url)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := conn.Write(ctx, c.typ, []byte(c.msg)); err != nil {
				t.Fatal(err)
			}
			_, _, err := conn.Read(ctx)
			if websocket.CloseStatus(err) != c.code || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want close %d saying %q", err, c.code, c.says)
			}
		})
	}
}
