package ws_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestSinceBelowTheRetainedLogIsGone: a cursor retention passed gets 410
// with the retention setting and where to resume, never a silent gap.
func TestSinceBelowTheRetainedLogIsGone(t *testing.T) {
	l, err := eventlog.Open(testkit.TempDataDir(t), eventlog.Options{TruncatedHint: "the server keeps the last 50 events (--retain-events)"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	appendN(t, l, "k", 100, "x")
	if _, err := l.TruncateBefore(51, nil); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, l, ws.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, since := range []uint64{0, 10, 49} {
		_, resp, err := websocket.Dial(ctx, fmt.Sprintf("%s?since=%d", s.url, since), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusGone {
			t.Fatalf("since=%d below the retained log (first 51): err %v, response %v; want 410", since, err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{"--retain-events", "resume from 51 (since/after=50)"} {
			if !strings.Contains(string(body), want) {
				t.Fatalf("since=%d: body %q does not say %q", since, body, want)
			}
		}
	}
	c := dial(t, s.url+"?since=50") // the first retained event is next
	if got := readSeqs(t, c, 100); fmt.Sprint(got) != fmt.Sprint(span(51, 100)) {
		t.Fatalf("since=50 got %v", tail(got))
	}
}

// TestCatchingUpClientHoldsRetention: a connected client still reading the
// log from its cursor is a floor, so retention keeps what it has to read;
// a client on the live fan-out holds nothing.
func TestCatchingUpClientHoldsRetention(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	big := strings.Repeat("y", 32<<10)
	appendN(t, l, "k", 600, big) // ~20 MB: more than the stalled socket holds
	s := startServer(t, l, ws.Options{WriteTimeout: time.Minute, QueueBytes: 64 << 20})
	if _, held := s.hub.LogFloor(); held {
		t.Fatal("no client connected, yet the hub holds a floor")
	}
	live := dial(t, s.url) // no since: fed by the fan-out
	_ = live
	slow := dialWithReceiveBuffer(t, s.url+"?since=10", 64<<10) // never reads
	deadline := time.Now().Add(20 * time.Second)
	for s.hub.Clients() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if floor, held := s.hub.LogFloor(); !held || floor != 11 {
		t.Fatalf("hub floor = %d, %v with a client catching up from since=10; want 11", floor, held)
	}
	floors := &projections.Floors{}
	floors.AddFloor("websocket clients", s.hub)
	floors.Enable()
	r := projections.NewRunner(l, projections.Options{SnapshotEvery: 100, Retention: projections.Retention{KeepEvents: 1, Floors: floors}}, nop{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	appendN(t, l, "k", 200, "x")
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	if first := l.First(); first > 11 {
		t.Fatalf("retention truncated to %d past a connected client's cursor (since=10)", first)
	}
	_ = slow.CloseNow()
	for _, held := s.hub.LogFloor(); held && time.Now().Before(deadline.Add(time.Minute)); _, held = s.hub.LogFloor() {
		time.Sleep(5 * time.Millisecond)
	}
	if floor, held := s.hub.LogFloor(); held {
		t.Fatalf("the client left, yet the hub holds floor %d", floor)
	}
	appendN(t, l, "k", 100, "x")
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	if first := l.First(); first <= 11 {
		t.Fatalf("log still starts at %d once the client left", first)
	}
}

// nop is a projection that needs nothing: retention is held only by floors.
type nop struct{}

func (nop) Name() string                      { return "nop" }
func (nop) Wants(string) projections.Interest { return projections.Skip }
func (nop) Apply(events.Event) error          { return nil }
func (nop) Snapshot() ([]byte, error)         { return nil, nil }
func (nop) Restore([]byte) error              { return nil }
