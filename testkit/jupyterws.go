package testkit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// JupyterWSProtocol is the WebSocket subprotocol of Jupyter Server's
// kernel channels with binary framing (jupyter_server 1.23+ and 2.x).
const JupyterWSProtocol = "v1.kernel.websocket.jupyter.org"

// JupyterWSReadLimit bounds one message a JupyterWS reads: a display_data
// with a large image fits, a runaway peer does not.
const JupyterWSReadLimit = 64 << 20

// JupyterWS is a frontend's connection to /api/kernels/<id>/channels, as
// JupyterLab opens it: the v1 subprotocol, one session id, every channel on
// one WebSocket. It has its own small codec so that it can judge any server
// (ours or a real jupyter_server) without sharing our server's code.
//
// Read and Send return errors instead of failing the test, so that
// goroutines (many frontends at once) can use them; DialJupyterWS fails
// the test on a broken setup.
//
// The first Read starts one reader goroutine that hands frames over one at
// a time (so a frontend that stops reading still pushes back on the server
// through TCP, and one that never reads never reads at all); Read's context
// only bounds the wait, it does not close the connection as a cancelled
// read of coder/websocket would. Close ends the reader.
type JupyterWS struct {
	Conn    *websocket.Conn
	Session string

	startReader sync.Once
	frames      chan jupyterFrame // unbuffered: the reader holds at most one frame
	readErr     error             // why the reader ended; set before frames is closed
	done        chan struct{}
	closeOnce   sync.Once
}

type jupyterFrame struct {
	typ  websocket.MessageType
	data []byte
}

// JupyterWSOptions tune DialJupyterWS.
type JupyterWSOptions struct {
	// Session is the session_id query parameter and the header's session
	// (a fresh random one when empty).
	Session string
	// ReceiveBuffer, when positive, sets the socket's SO_RCVBUF: a stalled
	// frontend with a small buffer pushes back on the server at once instead
	// of after the kernel's default few megabytes.
	ReceiveBuffer int
}

// JupyterMessage is one message of the Jupyter protocol as the channels
// WebSocket carries it.
type JupyterMessage struct {
	Channel      string
	Header       JupyterHeader
	ParentHeader JupyterHeader
	Metadata     json.RawMessage
	Content      json.RawMessage
	Buffers      [][]byte
}

// JupyterHeader is the part of a message header the tests read.
type JupyterHeader struct {
	MsgID    string `json:"msg_id"`
	MsgType  string `json:"msg_type"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	Version  string `json:"version"`
}

// DialJupyterWS opens the channels WebSocket of kernel on the server at
// base (http://host:port, with any base path), with token sent as
// `Authorization: token <t>` (none when empty). The connection closes on
// cleanup.
func DialJupyterWS(t testing.TB, base, token, kernel string, opts JupyterWSOptions) *JupyterWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := DialJupyterWSContext(ctx, base, token, kernel, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// DialJupyterWSContext is DialJupyterWS for callers that own the close.
func DialJupyterWSContext(ctx context.Context, base, token, kernel string, opts JupyterWSOptions) (*JupyterWS, error) {
	if opts.Session == "" {
		opts.Session = newJupyterID()
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("channels url %q: %w", base, err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/kernels/" + url.PathEscape(kernel) + "/channels"
	u.RawQuery = url.Values{"session_id": {opts.Session}}.Encode()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "token "+token)
	}
	dialer := &net.Dialer{}
	if opts.ReceiveBuffer > 0 {
		dialer.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, opts.ReceiveBuffer)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	// NB: a client of its own per connection: no keep-alive pool shared by
	// frontends, each has its own TCP connection as browsers' tabs would.
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: hc, HTTPHeader: header, Subprotocols: []string{JupyterWSProtocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		status := ""
		if resp != nil {
			status = " (HTTP " + resp.Status + ")"
		}
		return nil, fmt.Errorf("dial %s%s: %w", u.Redacted(), status, err)
	}
	if conn.Subprotocol() != JupyterWSProtocol {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("dial %s: the server chose subprotocol %q, want %q", u.Redacted(), conn.Subprotocol(), JupyterWSProtocol)
	}
	conn.SetReadLimit(JupyterWSReadLimit)
	return &JupyterWS{Conn: conn, Session: opts.Session, frames: make(chan jupyterFrame), done: make(chan struct{})}, nil
}

// Close closes the connection at once and ends the reader.
func (c *JupyterWS) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.Conn.CloseNow()
	})
}

func (c *JupyterWS) readLoop() {
	defer close(c.frames)
	for {
		// NB: no deadline here: the connection's close ends this read.
		typ, data, err := c.Conn.Read(context.Background())
		if err != nil {
			c.readErr = err
			return
		}
		select {
		case c.frames <- jupyterFrame{typ: typ, data: data}:
		case <-c.done:
			c.readErr = net.ErrClosed
			return
		}
	}
}

// Send writes one request on channel and returns its msg_id.
func (c *JupyterWS) Send(ctx context.Context, channel, msgType string, content any) (string, error) {
	id := newJupyterID()
	header := map[string]any{"msg_id": id, "msg_type": msgType, "session": c.Session, "username": "bench",
		"date": time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), "version": "5.3"}
	parts := make([][]byte, 4)
	var err error
	for i, v := range []any{header, map[string]any{}, map[string]any{}, content} {
		if parts[i], err = json.Marshal(v); err != nil {
			return "", fmt.Errorf("encode %s: %w", msgType, err)
		}
	}
	if err := c.Conn.Write(ctx, websocket.MessageBinary, EncodeJupyterV1(channel, parts)); err != nil {
		return "", fmt.Errorf("send %s on %s: %w", msgType, channel, err)
	}
	return id, nil
}

// Read returns the next message, or ctx's error when none came in time
// (the connection stays usable).
func (c *JupyterWS) Read(ctx context.Context) (JupyterMessage, error) {
	c.startReader.Do(func() { go c.readLoop() })
	select {
	case f, ok := <-c.frames:
		if !ok {
			return JupyterMessage{}, c.readErr
		}
		if f.typ != websocket.MessageBinary {
			return JupyterMessage{}, fmt.Errorf("a text message on the v1 subprotocol: %.200q", f.data)
		}
		return DecodeJupyterV1Message(f.data)
	case <-ctx.Done():
		return JupyterMessage{}, ctx.Err()
	}
}

// WaitReady repeats kernel_info_request until its reply and some IOPub
// message have arrived (as jupyter_client does: the server's IOPub
// subscription takes effect asynchronously, the "slow joiner").
func (c *JupyterWS) WaitReady(ctx context.Context) error {
	for {
		id, err := c.Send(ctx, "shell", "kernel_info_request", map[string]any{})
		if err != nil {
			return err
		}
		var reply, iopub bool
		try, cancel := context.WithTimeout(ctx, time.Second)
		for !(reply && iopub) {
			m, err := c.Read(try)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				break
			}
			if err != nil {
				cancel()
				return fmt.Errorf("waiting for kernel_info_reply: %w", err)
			}
			reply = reply || m.Channel == "shell" && m.Header.MsgType == "kernel_info_reply" && m.ParentHeader.MsgID == id
			iopub = iopub || m.Channel == "iopub"
		}
		cancel()
		if reply && iopub {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kernel not ready on its channels (kernel_info_reply %t, iopub seen %t): %w", reply, iopub, ctx.Err())
		}
	}
}

// ExecuteReply is what Execute saw of one execution.
type ExecuteReply struct {
	Status         string `json:"status"`
	ExecutionCount int    `json:"execution_count"`
	Ename          string `json:"ename"`
	Evalue         string `json:"evalue"`
	ExecuteResult  string `json:"-"` // text/plain of the execute_result
	Stdout         string `json:"-"` // stdout stream text, in order
}

// Execute sends code as an execute_request and returns once both its
// execute_reply and its idle status have arrived (in either order);
// messages of other parents are skipped.
func (c *JupyterWS) Execute(ctx context.Context, code string) (ExecuteReply, error) {
	id, err := c.Send(ctx, "shell", "execute_request", map[string]any{
		"code": code, "silent": false, "store_history": true, "user_expressions": map[string]any{},
		"allow_stdin": false, "stop_on_error": false,
	})
	if err != nil {
		return ExecuteReply{}, err
	}
	var r ExecuteReply
	var gotReply, gotIdle bool
	var stdout strings.Builder
	for !gotReply || !gotIdle {
		m, err := c.Read(ctx)
		if err != nil {
			return r, fmt.Errorf("execute %.40q (reply %t, idle %t): %w", code, gotReply, gotIdle, err)
		}
		if m.ParentHeader.MsgID != id {
			continue
		}
		switch {
		case m.Channel == "shell" && m.Header.MsgType == "execute_reply":
			if err := json.Unmarshal(m.Content, &r); err != nil {
				return r, fmt.Errorf("decode execute_reply: %w", err)
			}
			gotReply = true
		case m.Channel == "iopub" && m.Header.MsgType == "status":
			var st struct {
				ExecutionState string `json:"execution_state"`
			}
			_ = json.Unmarshal(m.Content, &st)
			gotIdle = gotIdle || st.ExecutionState == "idle"
		case m.Channel == "iopub" && m.Header.MsgType == "execute_result":
			var res struct {
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal(m.Content, &res)
			r.ExecuteResult, _ = res.Data["text/plain"].(string)
		case m.Channel == "iopub" && m.Header.MsgType == "stream":
			var s struct {
				Name, Text string
			}
			_ = json.Unmarshal(m.Content, &s)
			if s.Name == "stdout" {
				stdout.WriteString(s.Text)
			}
		}
	}
	r.Stdout = stdout.String()
	return r, nil
}

// EncodeJupyterV1 frames a message for the v1 subprotocol: the number of
// offsets (u64 little-endian), the offsets (u64 LE, from the start of the
// frame: where the channel starts, where each part starts, and the end),
// the channel name, then the parts (header, parent_header, metadata,
// content, buffers...).
func EncodeJupyterV1(channel string, parts [][]byte) []byte {
	n := len(parts) + 2 // channel start, each part's start, the end
	offsets := make([]uint64, n)
	offsets[0] = uint64(8 * (n + 1))
	offsets[1] = offsets[0] + uint64(len(channel))
	for i, p := range parts {
		offsets[i+2] = offsets[i+1] + uint64(len(p))
	}
	out := make([]byte, 0, offsets[n-1])
	out = binary.LittleEndian.AppendUint64(out, uint64(n))
	for _, o := range offsets {
		out = binary.LittleEndian.AppendUint64(out, o)
	}
	out = append(out, channel...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// DecodeJupyterV1 splits a v1 frame into its channel and parts, refusing
// offsets that do not fit the frame.
func DecodeJupyterV1(b []byte) (string, [][]byte, error) {
	if len(b) < 8 {
		return "", nil, errors.New("v1 frame shorter than its offset count")
	}
	n := binary.LittleEndian.Uint64(b)
	if n < 2 || n > uint64(len(b))/8-1 {
		return "", nil, fmt.Errorf("v1 frame of %d bytes with %d offsets", len(b), n)
	}
	offsets := make([]uint64, n)
	prev := 8 * (n + 1)
	for i := range offsets {
		offsets[i] = binary.LittleEndian.Uint64(b[8*(i+1):])
		if offsets[i] < prev || offsets[i] > uint64(len(b)) {
			return "", nil, fmt.Errorf("v1 frame of %d bytes: offset %d is %d", len(b), i, offsets[i])
		}
		prev = offsets[i]
	}
	channel := string(b[offsets[0]:offsets[1]])
	parts := make([][]byte, 0, n-2)
	for i := 1; i < int(n)-1; i++ {
		parts = append(parts, b[offsets[i]:offsets[i+1]])
	}
	return channel, parts, nil
}

// DecodeJupyterV1Message decodes a v1 frame with at least the four JSON
// parts of a message.
func DecodeJupyterV1Message(b []byte) (JupyterMessage, error) {
	channel, parts, err := DecodeJupyterV1(b)
	if err != nil {
		return JupyterMessage{}, err
	}
	if len(parts) < 4 {
		return JupyterMessage{}, fmt.Errorf("v1 frame on %q with %d parts, want header, parent_header, metadata, content", channel, len(parts))
	}
	m := JupyterMessage{Channel: channel, Metadata: parts[2], Content: parts[3], Buffers: parts[4:]}
	if err := json.Unmarshal(parts[0], &m.Header); err != nil {
		return m, fmt.Errorf("header on %q: %w", channel, err)
	}
	if len(parts[1]) > 0 {
		if err := json.Unmarshal(parts[1], &m.ParentHeader); err != nil {
			return m, fmt.Errorf("parent_header of %s: %w", m.Header.MsgType, err)
		}
	}
	return m, nil
}

// newJupyterID is a random UUID-shaped id, as frontends make them.
func newJupyterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
