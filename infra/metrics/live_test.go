package metrics_test

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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func newMetrics(t testing.TB) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// hubRig is a real WebSocket hub over a real log, served over HTTP, feeding
// m.Live.
type hubRig struct {
	log *eventlog.Log
	hub *ws.Hub
	url string
}

func newHubRig(t *testing.T, m *metrics.Metrics, opts ws.Options) *hubRig {
	t.Helper()
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	opts.Observer = m.Live.WebSocket()
	hub := ws.New(l, opts)
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
		srv.Close()
	})
	return &hubRig{log: l, hub: hub, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// dialWS connects a WebSocket client; rcvbuf > 0 pins the socket's receive
// buffer (so a client that does not read falls behind quickly).
func dialWS(t *testing.T, url string, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) }); err != nil {
				return err
			}
			return serr
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func waitValue(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	testkit.WaitUntil(t, 10*time.Second, fmt.Sprintf("%s = %v", name, want), func() (bool, string) {
		got := value(t, reg, name)
		return got == want, fmt.Sprint("it is ", got)
	})
}

// TestWebSocketClientsGauge: mcp_jupyter_websocket_clients follows real
// connections: 0, 1, 2, back to 1 when one closes, 0 when the hub closes
// the other at shutdown.
func TestWebSocketClientsGauge(t *testing.T) {
	reg, m := newMetrics(t)
	r := newHubRig(t, m, ws.Options{})
	const g = "mcp_jupyter_websocket_clients"
	if v := value(t, reg, g); v != 0 {
		t.Fatalf("%s = %v before any client", g, v)
	}
	a := dialWS(t, r.url, 0)
	waitValue(t, reg, g, 1)
	b := dialWS(t, r.url+"?since=0", 0)
	waitValue(t, reg, g, 2)
	if err := a.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close a: %v", err)
	}
	waitValue(t, reg, g, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.hub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg, g); v != 0 { // NB: Close waits for every client's handler
		t.Fatalf("%s = %v after the hub closed", g, v)
	}
	if _, _, err := b.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("b after shutdown: %v, want 1001", err)
	}
	if v := value(t, reg, "mcp_jupyter_websocket_slow_disconnects_total"); v != 0 {
		t.Fatalf("slow disconnects = %v with no slow client", v)
	}
}

// TestWebSocketSlowDisconnectsCounter: a client that never reads is closed
// as a slow consumer: the counter goes +1 (exactly), the clients gauge back
// to what the fast one holds.
func TestWebSocketSlowDisconnectsCounter(t *testing.T) {
	reg, m := newMetrics(t)
	r := newHubRig(t, m, ws.Options{QueueMessages: 4, QueueBytes: 1 << 20, WriteTimeout: time.Second})
	dialWS(t, r.url, 16<<10) // never reads
	waitValue(t, reg, "mcp_jupyter_websocket_clients", 1)
	big := strings.Repeat("z", 64<<10)
	const slow = "mcp_jupyter_websocket_slow_disconnects_total"
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; value(t, reg, slow) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no slow disconnect after %d events of 64 KiB to a client that never reads", i)
		}
		content, _ := json.Marshal(map[string]string{"name": "stdout", "text": big})
		testkit.AppendAll(t, r.log, []events.Draft{{Stream: events.ExecutionStream("x"), Kernel: "k",
			Payload: events.IOPubMessageReceived{KernelID: "k", ExecutionID: "x", MsgID: fmt.Sprint(i), MsgType: "stream", Content: content}}})
	}
	waitValue(t, reg, "mcp_jupyter_websocket_clients", 0)
	if v, k := value(t, reg, slow), r.hub.Kicked(); v != 1 || k != 1 {
		t.Fatalf("%s = %v, hub kicked %d; want 1 and 1", slow, v, k)
	}
}

// TestBacklogGauges: the IOPub backlog projection, run by a real runner
// over a real log, feeds mcp_jupyter_iopub_backlog_bytes (what its rings
// hold, never over the bound) and mcp_jupyter_iopub_backlog_overflows_total
// (messages its bound pushed out).
func TestBacklogGauges(t *testing.T) {
	reg, m := newMetrics(t)
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	const maxMsgs, maxBytes = 10, 64 << 10
	b := backlog.New(backlog.Options{MaxMessages: maxMsgs, MaxBytes: maxBytes, Observer: m.Live.Backlog()})
	run := projections.NewRunner(l, projections.Options{}, b)
	if err := run.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Close(context.Background()) })
	add := func(kernel string, n int) {
		t.Helper()
		ds := make([]events.Draft, n)
		for i := range ds {
			content, _ := json.Marshal(map[string]string{"name": "stdout", "text": fmt.Sprintf("line %d of %s\n", i, kernel)})
			ds[i] = events.Draft{Stream: events.ExecutionStream("x-" + kernel), Kernel: kernel, Payload: events.IOPubMessageReceived{
				KernelID: kernel, ExecutionID: "x-" + kernel, MsgID: fmt.Sprint(kernel, l.Last(), i), MsgType: "stream", Content: content}}
		}
		testkit.AppendAll(t, l, ds)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := run.WaitFor(ctx, l.Last()); err != nil {
			t.Fatal(err)
		}
	}
	const bytesG, overG = "mcp_jupyter_iopub_backlog_bytes", "mcp_jupyter_iopub_backlog_overflows_total"
	if v := value(t, reg, bytesG); v != 0 {
		t.Fatalf("%s = %v before any output", bytesG, v)
	}
	add("k1", 4)
	st := b.Stats("k1")
	if v := value(t, reg, bytesG); v <= 0 || v != float64(st.Bytes) {
		t.Fatalf("after 4 messages %s = %v, ring holds %d", bytesG, v, st.Bytes)
	}
	if v := value(t, reg, overG); v != 0 {
		t.Fatalf("%s = %v under the bound", overG, v)
	}
	grew := value(t, reg, bytesG)
	add("k1", 3)
	if v := value(t, reg, bytesG); v <= grew {
		t.Fatalf("%s did not grow with 3 more messages: %v then %v", bytesG, grew, v)
	}
	add("k1", 20) // 27 in all: 17 past the 10-message bound
	st = b.Stats("k1")
	if v := value(t, reg, overG); v != 17 || st.Evicted != 17 {
		t.Fatalf("%s = %v, ring evicted %d; want 17", overG, v, st.Evicted)
	}
	if v := value(t, reg, bytesG); v != float64(st.Bytes) || v > maxBytes || st.Messages != maxMsgs {
		t.Fatalf("%s = %v, ring %+v: want the ring's bytes, ≤ %d", bytesG, v, st, maxBytes)
	}
	add("k2", 2)
	if v := value(t, reg, bytesG); v != float64(b.Stats("k1").Bytes+b.Stats("k2").Bytes) {
		t.Fatalf("%s = %v, want the sum over kernels %d", bytesG, v, b.Stats("k1").Bytes+b.Stats("k2").Bytes)
	}
	// A restart from the snapshot reports what the rings hold, not zero.
	snap, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	reg2, m2 := newMetrics(t)
	b2 := backlog.New(backlog.Options{MaxMessages: maxMsgs, MaxBytes: maxBytes, Observer: m2.Live.Backlog()})
	if err := b2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg2, bytesG); v != value(t, reg, bytesG) {
		t.Fatalf("after restore %s = %v, want %v", bytesG, v, value(t, reg, bytesG))
	}
}

// TestReplayAndZombies: the two figures the server sets at start (the
// server-level test TestMetricsAfterRealWork checks them on a real start).
func TestReplayAndZombies(t *testing.T) {
	reg, m := newMetrics(t)
	m.Live.ObserveReplay(1234 * time.Millisecond)
	m.Live.ZombiesReaped(0)
	m.Live.ZombiesReaped(2)
	if v := value(t, reg, "mcp_jupyter_replay_duration_seconds"); v != 1.234 {
		t.Fatalf("replay = %v", v)
	}
	if v := value(t, reg, "zombie_process_cleanup_count"); v != 2 {
		t.Fatalf("zombies = %v", v)
	}
}
