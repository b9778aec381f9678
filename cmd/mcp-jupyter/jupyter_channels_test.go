package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// channelsServer serves c over HTTP as the server does and returns its
// base URL (http://host).
func channelsServer(t testing.TB, c *core) string {
	t.Helper()
	srv := httptest.NewServer(c.httpHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// frontend is a Jupyter frontend on the channels WebSocket, as
// @jupyterlab/services speaks it, in either framing.
type frontend struct {
	t       testing.TB
	conn    *websocket.Conn
	v1      bool
	session string
}

type frontMsg struct {
	jupyterapi.Message
	h      jupyterapi.Header
	parent jupyterapi.Header
}

func (m frontMsg) content() map[string]any {
	var c map[string]any
	_ = json.Unmarshal(m.Content, &c)
	return c
}

func dialFrontend(t testing.TB, base, kernelID, session, token string, v1 bool) *frontend {
	t.Helper()
	f, _, err := tryDialFrontend(base, kernelID, session, token, v1)
	if err != nil {
		t.Fatalf("dial the channels of %s: %v", kernelID, err)
	}
	f.t = t
	t.Cleanup(func() { _ = f.conn.CloseNow() })
	return f
}

func tryDialFrontend(base, kernelID, session, token string, v1 bool) (*frontend, *http.Response, error) {
	return tryDialFrontendBuf(base, kernelID, session, token, v1, 0)
}

// tryDialFrontendBuf dials with SO_RCVBUF rcvbuf (0: the default), which
// turns off the socket's buffer autotuning: a stalled reader stalls soon.
func tryDialFrontendBuf(base, kernelID, session, token string, v1 bool, rcvbuf int) (*frontend, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/kernels/" + kernelID + "/channels?session_id=" + session
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if rcvbuf > 0 {
		d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			if err != nil {
				return err
			}
			return serr
		}}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	if token != "" {
		opts.HTTPHeader.Set("Authorization", "token "+token)
	}
	if v1 {
		opts.Subprotocols = []string{jupyterapi.SubprotocolV1}
	}
	conn, res, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, res, err
	}
	conn.SetReadLimit(64 << 20)
	if v1 && conn.Subprotocol() != jupyterapi.SubprotocolV1 {
		return nil, res, fmt.Errorf("subprotocol %q accepted", conn.Subprotocol())
	}
	return &frontend{conn: conn, v1: v1, session: session}, res, nil
}

// send sends a request and returns its msg_id.
func (f *frontend) send(channel, msgType string, content any) string {
	f.t.Helper()
	return f.sendWith(channel, msgType, nil, content)
}

func (f *frontend) sendWith(channel, msgType string, parent json.RawMessage, content any) string {
	f.t.Helper()
	if parent == nil {
		parent = json.RawMessage(`{}`)
	}
	id := fmt.Sprintf("%s-%d", msgType, time.Now().UnixNano())
	h, _ := json.Marshal(jupyterapi.Header{MsgID: id, MsgType: msgType, Session: f.session, Username: "person", Version: "5.3",
		Date: time.Now().UTC().Format(time.RFC3339Nano)})
	c, _ := json.Marshal(content)
	m := jupyterapi.Message{Channel: channel, Header: h, ParentHeader: parent, Metadata: json.RawMessage(`{}`), Content: c}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if f.v1 {
		err = f.conn.Write(ctx, websocket.MessageBinary, jupyterapi.EncodeV1(m))
	} else {
		// NB: written by hand, as a legacy client does: {"channel", "header", ...}.
		raw, _ := json.Marshal(map[string]any{"channel": channel, "header": json.RawMessage(h), "parent_header": parent,
			"metadata": map[string]any{}, "content": json.RawMessage(c), "buffers": []any{}})
		err = f.conn.Write(ctx, websocket.MessageText, raw)
	}
	if err != nil {
		f.t.Fatalf("send %s: %v", msgType, err)
	}
	return id
}

func (f *frontend) next(ctx context.Context) (frontMsg, error) {
	typ, data, err := f.conn.Read(ctx)
	if err != nil {
		return frontMsg{}, err
	}
	var m jupyterapi.Message
	switch {
	case f.v1:
		if typ != websocket.MessageBinary {
			return frontMsg{}, fmt.Errorf("a text message on the v1 subprotocol: %s", data)
		}
		m, err = jupyterapi.DecodeV1(data)
	case typ == websocket.MessageBinary:
		m, err = jupyterapi.DecodeLegacyBinary(data)
	default:
		m, err = jupyterapi.DecodeLegacyText(data)
	}
	if err != nil {
		return frontMsg{}, err
	}
	fm := frontMsg{Message: m}
	_ = json.Unmarshal(m.Header, &fm.h)
	_ = json.Unmarshal(m.ParentHeader, &fm.parent)
	return fm, nil
}

// until reads until done says so and returns everything read.
func (f *frontend) until(what string, done func(frontMsg) bool) []frontMsg {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // NB: a loaded machine, -race
	defer cancel()
	var got []frontMsg
	for {
		m, err := f.next(ctx)
		if err != nil {
			f.t.Fatalf("waiting for %s: %v (read %d messages: %s)", what, err, len(got), describe(got))
		}
		got = append(got, m)
		if done(m) {
			return got
		}
	}
}

func describe(ms []frontMsg) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  %s %s parent=%s %s", m.Channel, m.h.MsgType, m.parent.MsgID, clipText(string(m.Content), 100))
	}
	return b.String()
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// executeFrontend runs code from the frontend and returns what it got up
// to its execute_reply.
func (f *frontend) execute(code string) (string, []frontMsg) {
	f.t.Helper()
	id := f.send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true, "allow_stdin": false})
	got := f.until("the execute_reply of "+id, func(m frontMsg) bool {
		return m.Channel == "shell" && m.h.MsgType == "execute_reply" && m.parent.MsgID == id
	})
	return id, got
}

func find(ms []frontMsg, channel, msgType, parent string) (frontMsg, bool) {
	for _, m := range ms {
		if m.Channel == channel && m.h.MsgType == msgType && (parent == "" || m.parent.MsgID == parent) {
			return m, true
		}
	}
	return frontMsg{}, false
}

// TestChannelsFrontendExecutes: a frontend attaches (kernel_info on
// connect), runs 1+1 and gets execute_input, execute_result, idle and
// execute_reply with its request as their parent, in both framings; the
// execution is durable and an agent's list_executions shows it with its
// origin.
func TestChannelsFrontendExecutes(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	uuid, _ := events.UUIDForm(k)
	base := channelsServer(t, c)
	for _, v1 := range []bool{true, false} {
		t.Run(fmt.Sprint("v1=", v1), func(t *testing.T) {
			session := fmt.Sprintf("sess-v1-%v", v1)
			f := dialFrontend(t, base, uuid, session, c.token, v1)
			f.until("kernel_info_reply on connect", func(m frontMsg) bool {
				return m.Channel == "shell" && m.h.MsgType == "kernel_info_reply" && m.content()["status"] == "ok"
			})
			id, got := f.execute("1+1")
			reply, _ := find(got, "shell", "execute_reply", id)
			if reply.content()["status"] != "ok" {
				t.Fatalf("execute_reply %s", reply.Content)
			}
			res, ok := find(got, "iopub", "execute_result", id)
			if !ok || !strings.Contains(string(res.Content), `"text/plain":"2"`) {
				t.Fatalf("no execute_result 2 with our parent:%s", describe(got))
			}
			if _, ok := find(got, "iopub", "execute_input", id); !ok {
				t.Fatalf("no execute_input:%s", describe(got))
			}
			idle := false
			for _, m := range got {
				if m.h.MsgType == "status" && m.parent.MsgID == id && m.content()["execution_state"] == "idle" {
					idle = true
				}
			}
			if !idle {
				t.Fatalf("no idle status with our parent before the reply:%s", describe(got))
			}
			if reply.h.Session == "" || reply.parent.Session != session {
				t.Fatalf("reply header %+v parent %+v", reply.h, reply.parent)
			}
			_, text := callTool(t, agent, "list_executions", map[string]any{"kernel": k})
			if !strings.Contains(text, session) || !strings.Contains(text, id) {
				t.Fatalf("list_executions does not show the frontend's execution (origin %s/%s): %s", session, id, text)
			}
		})
	}
}

// TestChannelsFrontendSeesAgentLive: an agent's execution's output (and its
// statuses) reach an attached frontend live; no execute_reply goes to a
// frontend that did not ask.
func TestChannelsFrontendSeesAgentLive(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "watcher", c.token, true)
	f.until("the greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	done := agentRuns(t, agent, k, "print('from the agent')")
	defer func() { <-done }()
	got := f.until("the agent's output", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "from the agent")
	})
	out, _ := find(got, "iopub", "stream", "")
	if out.parent.MsgType != "execute_request" || out.parent.MsgID == "" {
		t.Fatalf("the agent's output has parent %+v", out.parent)
	}
	rest := f.until("idle", func(m frontMsg) bool {
		return m.h.MsgType == "status" && m.parent.MsgID == out.parent.MsgID && m.content()["execution_state"] == "idle"
	})
	if _, ok := find(append(got, rest...), "shell", "execute_reply", ""); ok {
		t.Fatal("a frontend that did not ask got an execute_reply")
	}
}

// TestChannelsBadInput: clear errors, and nothing else disturbed.
func TestChannelsBadInput(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	ok := dialFrontend(t, base, k, "bystander", c.token, true)
	ok.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })

	// Unknown kernel: 404; bad session_id: 400; no token: 401.
	for _, tc := range []struct {
		name, kernel, session, token string
		code                         int
	}{
		{"unknown kernel", "00000000-0000-0000-0000-000000000000", "s", c.token, 404},
		{"bad session", k, "a%20b", c.token, 400},
		{"no token", k, "s", "", 401},
	} {
		_, res, err := tryDialFrontend(base, tc.kernel, tc.session, tc.token, true)
		if err == nil || res == nil || res.StatusCode != tc.code {
			code := 0
			if res != nil {
				code = res.StatusCode
			}
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, err, tc.code)
		}
	}

	// Unknown channel: told on stderr, the connection stays.
	f := dialFrontend(t, base, k, "odd", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	f.send("nowhere", "kernel_info_request", map[string]any{})
	f.until("the unknown channel notice", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), `unknown channel \"nowhere\"`)
	})
	if _, got := f.execute("2+2"); len(got) == 0 {
		t.Fatal("the connection did not work on")
	}

	// Malformed frame: closed with 1007 and why.
	bad := dialFrontend(t, base, k, "bad", c.token, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = bad.conn.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	err := readUntilClosed(ctx, bad)
	if websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed frame: %v", err)
	}
	// Oversized: 1009.
	big := dialFrontend(t, base, k, "big", c.token, true)
	_ = big.conn.Write(ctx, websocket.MessageBinary, make([]byte, jupyterapi.DefaultChannelsReadLimit+1))
	if err := readUntilClosed(ctx, big); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: %v", err)
	}
	// The bystander still works.
	if _, got := ok.execute("3+3"); len(got) == 0 {
		t.Fatal("the bystander stopped")
	}
}

func readUntilClosed(ctx context.Context, f *frontend) error {
	for {
		if _, _, err := f.conn.Read(ctx); err != nil {
			return err
		}
	}
}

// TestChannelsResumeSameSession: a frontend that reconnects with the same
// session_id gets what was recorded while it was away.
func TestChannelsResumeSameSession(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "resumer", c.token, false)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	_ = f.conn.Close(websocket.StatusNormalClosure, "")
	testkit.WaitUntil(t, 10*time.Second, "the server to see the frontend gone", func() (bool, string) {
		n := c.jupyter.Connections(k)
		return n == 0, fmt.Sprint(n, " connections")
	})
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('while you were away')"})
	g := dialFrontend(t, base, k, "resumer", c.token, false)
	g.until("the output recorded while away", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "while you were away")
	})
}

// agentRuns runs code through the agent's execute tool on another
// goroutine; the channel closes when it returned (an error is reported
// with t.Error, never t.Fatal off the test goroutine).
func agentRuns(t testing.TB, agent *client.Client, kernelID, code string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = "execute", map[string]any{"kernel": kernelID, "code": code, "timeout_s": 120}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := agent.CallTool(asAdmin(ctx), req); err != nil {
			t.Errorf("the agent's execute: %v", err)
		}
	}()
	return done
}
