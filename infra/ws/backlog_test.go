package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// countingLog is the real log, counting the reads of history (Scan and
// ReadKernel); following for the fan-out is not counted.
type countingLog struct {
	*eventlog.Log
	reads atomic.Int64
}

func (c *countingLog) Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error {
	c.reads.Add(1)
	return c.Log.Scan(ctx, from, to, fn)
}

func (c *countingLog) ReadKernel(ctx context.Context, kernel string, after uint64, fn func(events.Event) error) error {
	c.reads.Add(1)
	return c.Log.ReadKernel(ctx, kernel, after, fn)
}

// startWithBacklog serves /ws over l with a backlog of maxMessages per ring
// fed by its own runner, as the server wires it.
func startWithBacklog(t testing.TB, l *eventlog.Log, maxMessages int) (*countingLog, *ws.Hub, string) {
	t.Helper()
	bl := backlog.New(backlog.Options{MaxMessages: maxMessages})
	r := projections.NewRunner(l, projections.Options{}, bl)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	cl := &countingLog{Log: l}
	hub := ws.New(cl, ws.Options{Backlog: bl, BacklogWait: r.WaitFor})
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", mcpserver.Guard{Token: token, QueryToken: true}.Wrap(hub.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
		srv.Close()
	})
	return cl, hub, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// mixed appends n outputs alternating between k1 and k2, with a server
// event (no kernel) every 10th.
func mixed(t testing.TB, l *eventlog.Log, n int) {
	t.Helper()
	var ds []events.Draft
	for i := range n {
		ds = append(ds, draft(fmt.Sprint("k", 1+i%2), i, "x\n"))
		if i%10 == 9 {
			ds = append(ds, events.Draft{Stream: events.ServerStream("n"), Payload: events.ServerStarted{Node: "n"}})
		}
	}
	testkit.AppendAll(t, l, ds)
}

// kernelSeqs is the truth: the seqs about kernel in (after, l.Last()].
func kernelSeqs(t testing.TB, l *eventlog.Log, kernel string, after uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := l.ReadKernel(context.Background(), kernel, after, func(e events.Event) error {
		seqs = append(seqs, e.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// TestResumeServedFromBacklog: a client resuming within the backlog's
// bound is served from it: the log's history is not read at all (counted),
// and with the log truncated below its cursor it still gets every event,
// with no gap and no duplicate, then the live ones.
func TestResumeServedFromBacklog(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	mixed(t, l, 200) // 220 events
	k1 := kernelSeqs(t, l, "k1", 150)
	cl, hub, url := startWithBacklog(t, l, 1000)
	// NB: the log no longer holds 151..199: only the backlog can serve them.
	if _, err := l.TruncateBefore(200, nil); err != nil {
		t.Fatal(err)
	}
	all := dial(t, url+"?since=150")
	kern := dial(t, url+"?kernel=k1&since=150")
	mixed(t, l, 20) // live: 22 more
	last := l.Last()
	if got := readSeqs(t, all, last); fmt.Sprint(got) != fmt.Sprint(span(151, last)) {
		t.Fatalf("All since 150: got %v", got)
	}
	want := append(k1, kernelSeqs(t, l, "k1", 220)...)
	if got := readSeqs(t, kern, want[len(want)-1]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("k1 since 150: got %v\nwant %v", got, want)
	}
	if n := cl.reads.Load(); n != 0 || hub.LogReads() != 0 {
		t.Fatalf("the log's history was read %d times (hub counted %d): the backlog held everything", n, hub.LogReads())
	}
}

// TestResumeBeyondBacklogReadsLog: a cursor older than the backlog's bound
// reads the log for the older part only, then the backlog: no gap, no
// duplicate.
func TestResumeBeyondBacklogReadsLog(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	mixed(t, l, 200) // 220 events
	cl, hub, url := startWithBacklog(t, l, 30)
	all := dial(t, url+"?since=0")
	if got := readSeqs(t, all, 220); fmt.Sprint(got) != fmt.Sprint(span(1, 220)) {
		t.Fatalf("All since 0: got %v", got)
	}
	kern := dial(t, url+"?kernel=k2&since=3")
	want := kernelSeqs(t, l, "k2", 3)
	if got := readSeqs(t, kern, want[len(want)-1]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("k2 since 3: got %v\nwant %v", got, want)
	}
	if n := cl.reads.Load(); n != 2 || hub.LogReads() != 2 {
		t.Fatalf("log read %d times (hub counted %d), want once per client", n, hub.LogReads())
	}
	// Within the bound again: no more log reads.
	recent := dial(t, url+"?since=200")
	if got := readSeqs(t, recent, 220); fmt.Sprint(got) != fmt.Sprint(span(201, 220)) {
		t.Fatalf("All since 200: got %v", got)
	}
	if n := cl.reads.Load(); n != 2 {
		t.Fatalf("log read %d times after a resume within the backlog", n)
	}
}
