package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const token = "s3cret"

type server struct {
	log *eventlog.Log
	hub *ws.Hub
	srv *httptest.Server
	url string // ws://host/ws
}

func startServer(t testing.TB, l *eventlog.Log, opts ws.Options) *server {
	t.Helper()
	hub := ws.New(l, opts)
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", mcpserver.Guard{Token: token, QueryToken: true}.Wrap(hub.Handler()))
	srv := httptest.NewServer(mux)
	s := &server{log: l, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.hub.Close(ctx)
	s.srv.Close()
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// dialWithReceiveBuffer dials with SO_RCVBUF set, which turns off the
// kernel's buffer autotuning for that socket.
func dialWithReceiveBuffer(t testing.TB, url string, size int) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size) })
		if err != nil {
			return err
		}
		return serr
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

type received struct {
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	Kernel  string          `json:"kernel"`
	Payload json.RawMessage `json:"payload"`
}

// pendingLines holds, per connection, the events of a message not yet
// returned by next (a message carries one event per line).
var pendingLines sync.Map // *websocket.Conn -> *[][]byte

func next(t testing.TB, c *websocket.Conn) (received, error) {
	t.Helper()
	p, _ := pendingLines.LoadOrStore(c, &[][]byte{})
	q := p.(*[][]byte)
	if len(*q) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, msg, err := c.Read(ctx)
		if err != nil {
			return received{}, err
		}
		*q = bytes.Split(msg, []byte("\n"))
	}
	data := (*q)[0]
	*q = (*q)[1:]
	var r received
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return r, nil
}

// readSeqs reads until it has seen seq `until`, returning every seq.
func readSeqs(t testing.TB, c *websocket.Conn, until uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		r, err := next(t, c)
		if err != nil {
			t.Fatalf("read after %v: %v", tail(seqs), err)
		}
		seqs = append(seqs, r.Seq)
		if r.Seq >= until {
			return seqs
		}
	}
}

func tail(s []uint64) []uint64 {
	if len(s) > 5 {
		return s[len(s)-5:]
	}
	return s
}

func draft(kernel string, i int, text string) events.Draft {
	content, _ := json.Marshal(map[string]string{"name": "stdout", "text": text})
	return events.Draft{Stream: events.ExecutionStream("x-" + kernel), Kernel: kernel, Payload: events.IOPubMessageReceived{
		KernelID: kernel, ExecutionID: "x-" + kernel, MsgID: fmt.Sprint(kernel, i), MsgType: "stream", Content: content}}
}

func appendN(t testing.TB, l *eventlog.Log, kernel string, n int, text string) {
	t.Helper()
	ds := make([]events.Draft, n)
	for i := range ds {
		ds[i] = draft(kernel, i, text)
	}
	testkit.AppendAll(t, l, ds)
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestLiveAndResumeAcrossRestart(t *testing.T) {
	dir := testkit.TempDataDir(t)
	l, err := eventlog.Open(dir, eventlog.Options{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "k1", 100, "before\n")
	s := startServer(t, l, ws.Options{})
	live := dial(t, s.url)
	resumed := dial(t, s.url+"?since=40")
	// A ping is answered in order with the stream.
	if err := resumed.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "k1", 50, "after\n")
	if got := readSeqs(t, live, 150); fmt.Sprint(got) != fmt.Sprint(span(101, 150)) {
		t.Fatalf("live client got %v", got)
	}
	var got []uint64
	for len(got) == 0 || got[len(got)-1] < 150 {
		r, err := next(t, resumed)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type == "pong" {
			continue
		}
		got = append(got, r.Seq)
	}
	if fmt.Sprint(got) != fmt.Sprint(span(41, 150)) {
		t.Fatalf("resumed client got %v", got)
	}
	// Restart: the server goes away, the log is reopened, the client resumes.
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	r, err := next(t, resumed)
	for err == nil && r.Type == "pong" {
		r, err = next(t, resumed) // NB: on a loaded machine the ping may be answered after seq 150
	}
	if websocket.CloseStatus(err) != websocket.StatusGoingAway || !strings.Contains(err.Error(), "since=150") {
		t.Fatalf("on shutdown: %v (%+v), want 1001 with a resume hint", err, r)
	}
	testkit.Closed(t, stopped, 20*time.Second, "the server stops")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := testkit.OpenLog(t, dir)
	appendN(t, l2, "k1", 10, "while away\n")
	s2 := startServer(t, l2, ws.Options{})
	again := dial(t, s2.url+"?since=150")
	appendN(t, l2, "k1", 5, "back\n")
	if got := readSeqs(t, again, 165); fmt.Sprint(got) != fmt.Sprint(span(151, 165)) {
		t.Fatalf("after restart got %v", got)
	}
}

func TestKernelFilterAndBundlesAsIs(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	appendN(t, l, "k2", 3, "other\n")
	s := startServer(t, l, ws.Options{})
	c := dial(t, s.url+"?kernel=k1&since=0")
	plotly := json.RawMessage(`{"data":{"application/vnd.plotly.v1+json":{"data":[{"x":[1,2],"y":[3,4],"type":"scatter"}],"layout":{"title":{"text":"t"}}},"text/plain":"<Figure>"},"metadata":{},"transient":{}}`)
	testkit.AppendAll(t, l, []events.Draft{
		draft("k2", 9, "other\n"),
		{Stream: events.ExecutionStream("x1"), Kernel: "k1", Payload: events.IOPubMessageReceived{
			KernelID: "k1", ExecutionID: "x1", MsgID: "m", MsgType: "display_data", Content: plotly}},
	})
	r, err := next(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kernel != "k1" || r.Seq != 5 {
		t.Fatalf("got %+v, want only k1's event 5", r)
	}
	var p events.IOPubMessageReceived
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatal(err)
	}
	// As is: the same JSON value (encoding/json may escape < and > as \u003c).
	var got, want any
	_ = json.Unmarshal(p.Content, &got)
	_ = json.Unmarshal(plotly, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bundle changed in transit:\n%s\nwant\n%s", p.Content, plotly)
	}
}

// TestSlowConsumer: a client that does not read is dropped from the
// fan-out once its queue is full, and closed with 4008 and a resume hint
// naming exactly the last event it was sent; the others get everything;
// resuming from the hint gives the rest with no gap and no duplicate.
func TestSlowConsumer(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	// NB: a write timeout longer than the test: the slow client is cut off
	// by its queue overflowing, and its writer stays blocked until the
	// client reads again, so the close frame is written, not lost behind a
	// socket torn down by a timed-out write.
	s := startServer(t, l, ws.Options{QueueMessages: 64, QueueBytes: 2 << 20, WriteTimeout: 5 * time.Minute})
	fast := dial(t, s.url+"?since=0")
	// NB: a small receive buffer: Linux autotunes loopback buffers up to
	// tcp_rmem's max (32 MB here), which would absorb the whole stream and
	// make a client that never reads look fast.
	slow := dialWithReceiveBuffer(t, s.url+"?since=0", 64<<10)
	testkit.WaitUntil(t, 10*time.Second, "both clients joined", func() (bool, string) {
		return s.hub.Clients() == 2, fmt.Sprint(s.hub.Clients(), " clients")
	})
	big := strings.Repeat("y", 32<<10)
	const n = 600 // ~20 MB: more than loopback socket buffers and the queue hold
	type result struct {
		seqs []uint64
		err  error
	}
	done := make(chan result, 1)
	var fastRead atomic.Uint64
	go func() {
		// NB: no t.Fatal off the test goroutine (it would hang the test):
		// report back instead.
		var seqs []uint64
		for {
			r, err := next(t, fast)
			if err != nil {
				done <- result{seqs, err}
				return
			}
			seqs = append(seqs, r.Seq)
			fastRead.Store(r.Seq)
			if r.Seq >= n {
				done <- result{seqs, nil}
				return
			}
		}
	}()
	// Append in chunks the fast client keeps up with, so that only the one
	// that never reads falls behind, however loaded the machine.
	const chunk = 10
	for i := 0; i < n; i += chunk {
		ds := make([]events.Draft, chunk)
		for j := range ds {
			ds[j] = draft("k", i+j, big)
		}
		testkit.AppendAll(t, l, ds)
		testkit.WaitUntil(t, 30*time.Second, fmt.Sprintf("the fast client read up to %d", i+chunk), func() (bool, string) {
			return fastRead.Load() >= uint64(i+chunk), fmt.Sprint("it read up to ", fastRead.Load())
		})
	}
	got0 := testkit.Receive(t, done, 2*time.Minute, "the fast client's reads")
	if got0.err != nil || fmt.Sprint(got0.seqs) != fmt.Sprint(span(1, n)) {
		t.Fatalf("fast client missed events: %d of %d (%v)", len(got0.seqs), n, got0.err)
	}
	// The slow one left the fan-out when its queue overflowed.
	testkit.WaitUntil(t, 20*time.Second, "the slow client is cut off", func() (bool, string) {
		return s.hub.Clients() == 1, fmt.Sprint(s.hub.Clients(), " clients")
	})
	var got []uint64
	var closeErr error
	for {
		r, err := next(t, slow)
		if err != nil {
			closeErr = err
			break
		}
		got = append(got, r.Seq)
	}
	var ce websocket.CloseError
	if !errors.As(closeErr, &ce) {
		t.Fatalf("slow client ended with %v, want a close frame", closeErr)
	}
	if want := fmt.Sprintf("slow consumer: resume with since=%d", lastOr(got, 0)); ce.Code != ws.CloseSlowConsumer || ce.Reason != want {
		t.Fatalf("slow client closed with %d %q, want %d %q", ce.Code, ce.Reason, ws.CloseSlowConsumer, want)
	}
	if k := s.hub.Kicked(); k != 1 {
		t.Fatalf("kicked %d clients, want the slow one", k)
	}
	if fmt.Sprint(got) != fmt.Sprint(span(1, lastOr(got, 0))) {
		t.Fatalf("slow client got a gap: %v", tail(got))
	}
	last := lastOr(got, 0)
	if last >= n {
		t.Fatalf("the slow client received everything (%d): it was not slow", last)
	}
	rest := dial(t, fmt.Sprintf("%s?since=%d", s.url, last))
	if got := readSeqs(t, rest, n); fmt.Sprint(got) != fmt.Sprint(span(last+1, n)) {
		t.Fatalf("resume from %d got %v", last, tail(got))
	}
}

func lastOr(s []uint64, d uint64) uint64 {
	if len(s) == 0 {
		return d
	}
	return s[len(s)-1]
}
