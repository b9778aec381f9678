package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// The bad-input tests speak the channels WebSocket with coder/websocket and
// a framing written here from jupyter_server's and @jupyterlab/services'
// descriptions (not the server's codec), so they check the server against
// the protocol, not against itself.

const subprotocolV1 = "v1.kernel.websocket.jupyter.org"

// rawFrontend is one channels connection of a hand-written client.
type rawFrontend struct {
	t       testing.TB
	ws      *websocket.Conn
	v1      bool
	session string
	msgs    chan rawMsg
	ended   chan struct{}
	endErr  error // set before ended closes
}

// rawMsg is a decoded Jupyter message as a frontend sees it.
type rawMsg struct {
	Channel      string         `json:"channel"`
	Header       map[string]any `json:"header"`
	ParentHeader map[string]any `json:"parent_header"`
	Content      map[string]any `json:"content"`
}

func (m rawMsg) msgType() string  { s, _ := m.Header["msg_type"].(string); return s }
func (m rawMsg) parentID() string { s, _ := m.ParentHeader["msg_id"].(string); return s }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// channelsURL is ws://.../api/kernels/<kernel>/channels with the query given.
func channelsURL(base, kernel string, q url.Values) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/api/kernels/" + kernel + "/channels?" + q.Encode()
}

// dialChannels opens the channels WebSocket; v1 offers the subprotocol.
func dialChannels(ctx context.Context, base, kernel string, q url.Values, v1 bool) (*websocket.Conn, *http.Response, error) {
	opts := &websocket.DialOptions{}
	if v1 {
		opts.Subprotocols = []string{subprotocolV1}
	}
	return websocket.Dial(ctx, channelsURL(base, kernel, q), opts)
}

// attachRaw connects a raw frontend to kernel (UUID form) with session,
// authenticated by ?token=, and starts its reader.
func attachRaw(t testing.TB, srv labServer, kernel, session string, v1 bool) *rawFrontend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, resp, err := dialChannels(ctx, srv.base, kernel, url.Values{"session_id": {session}, "token": {srv.token}}, v1)
	if err != nil {
		t.Fatalf("dial the channels of %s: %v (%s)", kernel, err, respText(resp))
	}
	if v1 && ws.Subprotocol() != subprotocolV1 {
		t.Fatalf("offered %s, the server chose %q", subprotocolV1, ws.Subprotocol())
	}
	ws.SetReadLimit(64 << 20)
	f := &rawFrontend{t: t, ws: ws, v1: v1, session: session, msgs: make(chan rawMsg, 4096), ended: make(chan struct{})}
	go f.read()
	t.Cleanup(func() {
		_ = ws.Close(websocket.StatusNormalClosure, "")
		<-f.ended
	})
	return f
}

func respText(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)
}

// read decodes messages until the connection ends; a full buffer drops the
// oldest (tests look for specific messages, and the reader never blocks).
func (f *rawFrontend) read() {
	defer close(f.ended)
	for {
		typ, data, err := f.ws.Read(context.Background())
		if err != nil {
			f.endErr = err
			return
		}
		m, err := decodeRaw(typ, data, f.v1)
		if err != nil {
			f.endErr = fmt.Errorf("the server sent a message this client cannot decode: %w", err)
			return
		}
		for {
			select {
			case f.msgs <- m:
			default:
				select {
				case <-f.msgs:
				default:
				}
				continue
			}
			break
		}
	}
}

func decodeRaw(typ websocket.MessageType, data []byte, v1 bool) (rawMsg, error) {
	var m rawMsg
	if !v1 {
		if typ != websocket.MessageText {
			return m, errors.New("binary message on a legacy connection without buffers")
		}
		return m, json.Unmarshal(data, &m)
	}
	if typ != websocket.MessageBinary || len(data) < 8 {
		return m, fmt.Errorf("v1: a %v message of %d bytes", typ, len(data))
	}
	n := int(binary.LittleEndian.Uint64(data))
	if n < 6 || len(data) < 8*(n+1) {
		return m, fmt.Errorf("v1: %d offsets in %d bytes", n, len(data))
	}
	off := make([]int, n)
	for i := range off {
		off[i] = int(binary.LittleEndian.Uint64(data[8*(i+1):]))
		if off[i] > len(data) || (i > 0 && off[i] < off[i-1]) {
			return m, fmt.Errorf("v1: offset %d = %d", i, off[i])
		}
	}
	m.Channel = string(data[off[0]:off[1]])
	for i, dst := range []*map[string]any{&m.Header, &m.ParentHeader, nil, &m.Content} {
		if dst == nil {
			continue
		}
		if err := json.Unmarshal(data[off[i+1]:off[i+2]], dst); err != nil {
			return m, fmt.Errorf("v1 part %d: %w", i, err)
		}
	}
	return m, nil
}

// encodeRaw frames a message: v1 binary (u64 LE count, offsets, channel,
// header, parent_header, metadata, content) or legacy JSON text.
func encodeRaw(v1 bool, channel string, header, parent, content any) (websocket.MessageType, []byte) {
	if !v1 {
		b, _ := json.Marshal(map[string]any{"channel": channel, "header": header, "parent_header": parent, "metadata": map[string]any{}, "content": content})
		return websocket.MessageText, b
	}
	parts := [][]byte{[]byte(channel)}
	for _, v := range []any{header, parent, map[string]any{}, content} {
		b, _ := json.Marshal(v)
		parts = append(parts, b)
	}
	n := len(parts) + 1
	out := binary.LittleEndian.AppendUint64(nil, uint64(n))
	pos := 8 * (n + 1)
	out = binary.LittleEndian.AppendUint64(out, uint64(pos))
	for _, p := range parts {
		pos += len(p)
		out = binary.LittleEndian.AppendUint64(out, uint64(pos))
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return websocket.MessageBinary, out
}

// send sends a request and returns its msg_id.
func (f *rawFrontend) send(channel, msgType string, content any) string {
	f.t.Helper()
	id := randHex(16)
	header := map[string]any{"msg_id": id, "msg_type": msgType, "session": f.session, "username": "raw",
		"date": time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), "version": "5.3"}
	typ, data := encodeRaw(f.v1, channel, header, map[string]any{}, content)
	f.sendRaw(typ, data)
	return id
}

func (f *rawFrontend) sendRaw(typ websocket.MessageType, data []byte) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.ws.Write(ctx, typ, data); err != nil {
		f.t.Fatalf("write to the channels WebSocket: %v", err)
	}
}

// waitFor returns the first message matching, failing the test after
// timeout or when the connection ends first.
func (f *rawFrontend) waitFor(what string, timeout time.Duration, match func(rawMsg) bool) rawMsg {
	f.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-f.msgs:
			if match(m) {
				return m
			}
		case <-f.ended:
			// NB: drain what arrived before the end.
			for {
				select {
				case m := <-f.msgs:
					if match(m) {
						return m
					}
					continue
				default:
				}
				break
			}
			f.t.Fatalf("%s: the connection ended first: %v", what, f.endErr)
		case <-deadline:
			f.t.Fatalf("%s: nothing within %s", what, timeout)
		}
	}
}

// closedWith waits for the server to close the connection and returns the
// close status and reason.
func (f *rawFrontend) closedWith(timeout time.Duration) (websocket.StatusCode, string) {
	f.t.Helper()
	select {
	case <-f.ended:
	case <-time.After(timeout):
		f.t.Fatalf("the server did not close the connection within %s", timeout)
	}
	var ce websocket.CloseError
	if !errors.As(f.endErr, &ce) {
		f.t.Fatalf("the connection ended without a close frame: %v", f.endErr)
	}
	return ce.Code, ce.Reason
}

// execute runs code and waits for its stdout text and its execute_reply.
func (f *rawFrontend) execute(code, want string) {
	f.t.Helper()
	id := f.send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": false})
	f.waitFor("stdout "+want, 60*time.Second, func(m rawMsg) bool {
		text, _ := m.Content["text"].(string)
		return m.Channel == "iopub" && m.msgType() == "stream" && m.parentID() == id && strings.Contains(text, want)
	})
	r := f.waitFor("execute_reply", 60*time.Second, func(m rawMsg) bool {
		return m.Channel == "shell" && m.msgType() == "execute_reply" && m.parentID() == id
	})
	if r.Content["status"] != "ok" {
		f.t.Fatalf("execute_reply %v", r.Content)
	}
}

// TestOutsideBadInput: what a broken or hostile client sends on the
// channels WebSocket gets a clear answer and disturbs nothing else: a
// healthy frontend attached to the same kernel, and the agent using it
// through MCP, keep working after each case. Cases: no token or a wrong
// one (401 before the upgrade); a foreign Origin or Host (403, as /mcp);
// unknown kernels in both id forms and a
// malformed id (404, jupyter_server's {"message","reason"}); a session_id
// no frontend sends (400); malformed frames in both framings (closed with
// 1007 and the reason); a message on an unknown channel and one whose
// header has no msg_type (a notice on IOPub, the connection stays); an
// oversized message (closed with 1009); an input_reply for another
// session's input() (ignored with a notice: that input() is still its
// owner's to answer).
func TestOutsideBadInput(t *testing.T) {
	srv := startLabServer(t)
	agentKernel := startKernelTool(t, srv.agent)
	kernel, ok := events.UUIDForm(agentKernel)
	if !ok {
		t.Fatalf("kernel id %q has no UUID form", agentKernel)
	}
	healthy := attachRaw(t, srv, kernel, "healthy-"+randHex(8), true)
	round := 0
	undisturbed := func(t *testing.T) {
		t.Helper()
		round++
		want := fmt.Sprintf("still-alive-%d", round)
		healthy.execute(fmt.Sprintf("print(%q)", want), want)
		sc, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel, "code": fmt.Sprintf("print('agent', %d)", round)})
		if sc["status"] != "ok" || !strings.Contains(text, fmt.Sprintf("agent %d", round)) {
			t.Fatalf("the agent's execute after the bad input: %v %s", sc, text)
		}
	}
	undisturbed(t)

	t.Run("no token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for name, q := range map[string]url.Values{
			"none":  {"session_id": {"s-" + randHex(4)}},
			"wrong": {"session_id": {"s-" + randHex(4)}, "token": {"not-the-token-" + randHex(8)}},
		} {
			ws, resp, err := dialChannels(ctx, srv.base, kernel, q, true)
			if err == nil {
				_ = ws.CloseNow()
				t.Fatalf("%s token: the channels WebSocket opened", name)
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s token: %v (%s), want 401", name, err, respText(resp))
			}
		}
		undisturbed(t)
	})

	t.Run("foreign origin or host", func(t *testing.T) {
		// A page of another site (Origin) or a DNS-rebound name (Host)
		// is refused before the upgrade, token or not: as /mcp.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q := url.Values{"session_id": {"s-" + randHex(4)}, "token": {srv.token}}
		for name, opts := range map[string]*websocket.DialOptions{
			"origin": {Subprotocols: []string{subprotocolV1}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}},
			"host":   {Subprotocols: []string{subprotocolV1}, Host: "evil.example"},
		} {
			ws, resp, err := websocket.Dial(ctx, channelsURL(srv.base, kernel, q), opts)
			if err == nil {
				_ = ws.CloseNow()
				t.Fatalf("foreign %s: the channels WebSocket opened", name)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("foreign %s: %v (%s), want 403", name, err, respText(resp))
			}
		}
		undisturbed(t)
	})

	t.Run("unknown kernel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		nobody := events.NewID(time.Now())
		nobodyUUID, _ := events.UUIDForm(nobody)
		for _, id := range []string{nobodyUUID, nobody, "not-a-kernel"} {
			ws, resp, err := dialChannels(ctx, srv.base, id, url.Values{"session_id": {"s-" + randHex(4)}, "token": {srv.token}}, true)
			if err == nil {
				_ = ws.CloseNow()
				t.Fatalf("kernel %s: the channels WebSocket opened", id)
			}
			if resp == nil || resp.StatusCode != http.StatusNotFound {
				t.Fatalf("kernel %s: %v (%s), want 404", id, err, respText(resp))
			}
			var body struct{ Message, Reason string }
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			if json.Unmarshal(b, &body) != nil || body.Message == "" || body.Reason == "" {
				t.Fatalf("kernel %s: 404 body %q, want jupyter_server's {\"message\", \"reason\"}", id, b)
			}
		}
		undisturbed(t)
	})

	t.Run("bad session_id", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, s := range []string{strings.Repeat("s", 300), "has space", "semi;colon", "../../etc"} {
			ws, resp, err := dialChannels(ctx, srv.base, kernel, url.Values{"session_id": {s}, "token": {srv.token}}, true)
			if err == nil {
				_ = ws.CloseNow()
				t.Fatalf("session_id %.40q: the channels WebSocket opened", s)
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(respText(resp), "session_id") {
				t.Fatalf("session_id %.40q: %v (%s), want 400 naming session_id", s, err, respText(resp))
			}
		}
		undisturbed(t)
	})

	t.Run("malformed frames", func(t *testing.T) {
		valid := func(v1 bool) []byte {
			_, b := encodeRaw(v1, "shell", map[string]any{"msg_id": "m", "msg_type": "kernel_info_request"}, map[string]any{}, map[string]any{})
			return b
		}
		v1 := valid(true)
		truncated := v1[:len(v1)-3]
		pastEnd := append([]byte(nil), v1...)
		binary.LittleEndian.PutUint64(pastEnd[8*3:], 1<<40)
		hugeCount := append([]byte(nil), v1...)
		binary.LittleEndian.PutUint64(hugeCount, 1<<60)
		cases := []struct {
			name string
			v1   bool
			typ  websocket.MessageType
			data []byte
		}{
			{"v1 three bytes", true, websocket.MessageBinary, []byte{1, 2, 3}},
			{"v1 offset count 2^60", true, websocket.MessageBinary, hugeCount},
			{"v1 offset past the end", true, websocket.MessageBinary, pastEnd},
			{"v1 truncated", true, websocket.MessageBinary, truncated},
			{"v1 text message", true, websocket.MessageText, []byte(`{"channel":"shell"}`)},
			{"v1 header not JSON", true, websocket.MessageBinary, func() []byte {
				b := append([]byte(nil), v1...)
				hdr := int(binary.LittleEndian.Uint64(b[16:]))
				b[hdr] = '!'
				return b
			}()},
			{"legacy not JSON", false, websocket.MessageText, []byte("this is not json")},
			{"legacy header a string", false, websocket.MessageText, []byte(`{"channel":"shell","header":"x","parent_header":{},"metadata":{},"content":{}}`)},
			{"legacy two JSON values", false, websocket.MessageText, append(valid(false), valid(false)...)},
		}
		for _, tc := range cases {
			f := attachRaw(t, srv, kernel, "bad-"+randHex(6), tc.v1)
			f.sendRaw(tc.typ, tc.data)
			code, reason := f.closedWith(30 * time.Second)
			if code != websocket.StatusInvalidFramePayloadData || reason == "" {
				t.Fatalf("%s: closed with %d %q, want 1007 (invalid frame payload data) with the reason", tc.name, code, reason)
			}
		}
		undisturbed(t)
	})

	t.Run("unknown channel", func(t *testing.T) {
		for _, v1 := range []bool{true, false} {
			f := attachRaw(t, srv, kernel, "chan-"+randHex(6), v1)
			id := f.send("nonsense", "kernel_info_request", map[string]any{})
			f.waitFor("a notice about the unknown channel", 30*time.Second, func(m rawMsg) bool {
				text, _ := m.Content["text"].(string)
				return m.Channel == "iopub" && m.msgType() == "stream" && m.parentID() == id && strings.Contains(text, "nonsense")
			})
			// The connection stays and serves the next request.
			info := f.send("shell", "kernel_info_request", map[string]any{})
			f.waitFor("kernel_info_reply after the unknown channel", 30*time.Second, func(m rawMsg) bool {
				return m.Channel == "shell" && m.msgType() == "kernel_info_reply" && m.parentID() == info
			})
			// A header without msg_type: ignored with a notice, the
			// connection stays.
			typ, data := encodeRaw(v1, "shell", map[string]any{"msg_id": randHex(8)}, map[string]any{}, map[string]any{})
			f.sendRaw(typ, data)
			f.waitFor("a notice about the header without msg_type", 30*time.Second, func(m rawMsg) bool {
				text, _ := m.Content["text"].(string)
				return m.Channel == "iopub" && m.msgType() == "stream" && strings.Contains(text, "msg_type")
			})
			f.execute(`print("after bad headers")`, "after bad headers")
		}
		undisturbed(t)
	})

	t.Run("oversized", func(t *testing.T) {
		for _, v1 := range []bool{true, false} {
			f := attachRaw(t, srv, kernel, "big-"+randHex(6), v1)
			big := strings.Repeat("x", 17<<20) // past the 16 MiB read limit
			header := map[string]any{"msg_id": randHex(8), "msg_type": "execute_request", "session": f.session, "version": "5.3"}
			typ, data := encodeRaw(v1, "shell", header, map[string]any{}, map[string]any{"code": "s = '" + big + "'"})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_ = f.ws.Write(ctx, typ, data) // NB: may fail once the server has closed
			cancel()
			code, reason := f.closedWith(60 * time.Second)
			if code != websocket.StatusMessageTooBig || reason == "" {
				t.Fatalf("a %d MiB message (v1 %v): closed with %d %q, want 1009 (message too big) with the limit", len(data)>>20, v1, code, reason)
			}
		}
		// Nothing of it ran.
		sc, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel, "code": "print('s' in globals())"})
		if sc["status"] != "ok" || !strings.Contains(text, "False") {
			t.Fatalf("after the oversized execute_request: %v %s; want s undefined", sc, text)
		}
		undisturbed(t)
	})

	t.Run("another session's input", func(t *testing.T) {
		owner := attachRaw(t, srv, kernel, "owner-"+randHex(6), true)
		other := attachRaw(t, srv, kernel, "other-"+randHex(6), false)
		exec := owner.send("shell", "execute_request", map[string]any{"code": "v = input('owner? ')\nprint('owner said', v)",
			"silent": false, "store_history": true, "user_expressions": map[string]any{}, "allow_stdin": true, "stop_on_error": false})
		req := owner.waitFor("input_request", 60*time.Second, func(m rawMsg) bool {
			return m.Channel == "stdin" && m.msgType() == "input_request"
		})
		// The other session answers with the owner's request as parent.
		header := map[string]any{"msg_id": randHex(8), "msg_type": "input_reply", "session": other.session, "version": "5.3"}
		typ, data := encodeRaw(false, "stdin", header, req.Header, map[string]any{"status": "ok", "value": "intruder"})
		other.sendRaw(typ, data)
		other.waitFor("a notice that the input_reply was ignored", 30*time.Second, func(m rawMsg) bool {
			text, _ := m.Content["text"].(string)
			return m.Channel == "iopub" && m.msgType() == "stream" && strings.Contains(text, "input_reply")
		})
		// The owner answers; the kernel got the owner's value only.
		reply := map[string]any{"msg_id": randHex(8), "msg_type": "input_reply", "session": owner.session, "version": "5.3"}
		typ, data = encodeRaw(true, "stdin", reply, req.Header, map[string]any{"status": "ok", "value": "owner"})
		owner.sendRaw(typ, data)
		out := owner.waitFor("the owner's output", 60*time.Second, func(m rawMsg) bool {
			text, _ := m.Content["text"].(string)
			return m.Channel == "iopub" && m.msgType() == "stream" && m.parentID() == exec && strings.Contains(text, "said")
		})
		if text, _ := out.Content["text"].(string); !strings.Contains(text, "owner said owner") {
			t.Fatalf("input() got %q, want the owner's value", text)
		}
		undisturbed(t)
	})
}
