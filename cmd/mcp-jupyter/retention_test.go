package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// syntheticExecution is the events of one finished execution with output,
// as a kernel writes them.
func syntheticExecution(kernel, x string) []events.Draft {
	s := events.ExecutionStream(x)
	io := func(n int, typ, content string) events.Draft {
		return events.Draft{Stream: s, Kernel: kernel, Payload: events.IOPubMessageReceived{KernelID: kernel, ExecutionID: x,
			MsgID: fmt.Sprintf("%s-%d", x, n), ParentMsgID: x + "-req", MsgType: typ, Content: json.RawMessage(content)}}
	}
	return []events.Draft{
		{Stream: s, Kernel: kernel, Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "df.describe()"}},
		{Stream: s, Kernel: kernel, Payload: events.ExecutionStarted{ExecutionID: x, KernelID: kernel, MsgID: x + "-req"}},
		io(1, "status", `{"execution_state":"busy"}`),
		io(2, "stream", `{"name":"stdout","text":"count    1000.000000\nmean        0.498231\nstd         0.288675\n"}`),
		io(3, "status", `{"execution_state":"idle"}`),
		{Stream: s, Kernel: kernel, Payload: events.ExecutionFinished{ExecutionID: x, Status: "ok", ExecutionCount: 7}},
	}
}

// work appends n synthetic executions through the server's log and waits
// for the read models (and so retention) to apply them.
func work(t *testing.T, c *core, n int) (last string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var batch []events.Draft
	for i := range n {
		last = events.NewID(time.Now())
		batch = append(batch, syntheticExecution("synthetic", last)...)
		if len(batch) >= 600 || i == n-1 {
			if _, err := c.log.Append(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := c.runner.WaitFor(ctx, c.log.Last()); err != nil {
		t.Fatal(err)
	}
	if err := c.live.runner.WaitFor(ctx, c.log.Last()); err != nil {
		t.Fatal(err)
	}
	return last
}

func seqsOf(t *testing.T, c *core, stream string) []uint64 {
	t.Helper()
	var out []uint64
	if err := c.log.ReadStream(context.Background(), stream, 0, func(e events.Event) error { out = append(out, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBoundedDiskOverMonthsOfWork: with a small retention (keep 1,000
// events, snapshot every 200) a real server core doing a long stream of
// work keeps its log bounded in events and on disk; what actors recover
// from (a live kernel's stream, an unfinished execution's) survives however
// old; an execution older than the window gets an error naming the
// setting; and a restart recovers the kernel and answers for recent work.
func TestBoundedDiskOverMonthsOfWork(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	cfg.RetainEvents, cfg.SnapshotEvery = 1000, 200
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	open := func() (*core, *client.Client) {
		c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		// NB: the queue and executions models keep the last 10,000 finished executions by
		// default: bounded, but more than this test's work; a smaller bound
		// lets the disk check see the log's own growth.
		c.queue.SetMaxFinished(500)
		c.execs.SetMaxFinished(500)
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		return c, mcpClient(t, inproc)
	}
	c, cl := open()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.close(context.Background())
		}
	})
	kernel := startKernelTool(t, cl)
	early := events.NewID(time.Now())
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": kernel, "code": "x = 41", "execution_id": early}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	kernelStart := seqsOf(t, c, events.KernelStream(kernel))[0]
	// An execution queued on a kernel that never runs it stays unfinished.
	ctx := context.Background()
	pending := events.NewID(time.Now())
	queuedEv, err := c.log.Append(ctx, events.Draft{Stream: events.ExecutionStream(pending), Kernel: "ghost",
		Payload: events.ExecutionQueued{ExecutionID: pending, KernelID: "ghost", Code: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	pendingSeq := queuedEv[0].Seq // NB: not Last(): other writers append meanwhile

	work(t, c, 1500) // ~9,000 events: nine times the window
	if err := c.log.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	diskA := c.log.Usage()
	firstA := c.log.First()
	work(t, c, 1500)
	recent := work(t, c, 1500)
	if err := c.log.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	diskB := c.log.Usage()
	first, last := c.log.First(), c.log.Last()
	t.Logf("after %d events: log holds %d..%d; disk after a third of the work %+v, at the end %+v", last, first, last, diskA, diskB)
	if first <= firstA || first <= pendingSeq {
		t.Fatalf("the log's start did not move: %d, then %d (last %d)", firstA, first, last)
	}
	// The window is the newest 1,000 events plus what the floors hold
	// back: the NATS cursor is saved every 1,024 events, retention runs
	// once per snapshot (every 200), and the publisher may lag on a loaded
	// machine. Seen: 1,612 to 2,611 of the 27,000 events written.
	lag := last - c.pub.Published()
	if window, limit := last-first+1, 3000+lag; window > limit {
		t.Fatalf("the log holds %d events, want at most %d with --retain-events 1000 (publisher lag %d)", window, limit, lag)
	}
	// Three times the work, about the same data on disk: bounded, not
	// growing (the WAL is bounded by the memtable, not by the events).
	if diskB.Tables > diskA.Tables+diskA.Tables/4+64<<10 {
		t.Fatalf("data on disk grew from %d to %d bytes with three times the work: not bounded", diskA.Tables, diskB.Tables)
	}
	if diskB.Total > 64<<20 {
		t.Fatalf("the log takes %d bytes on disk, want well under 64 MiB for 1,000 retained events", diskB.Total)
	}

	// The floor held: the live kernel's lifecycle and the unfinished
	// execution are still there, far below the window.
	if ks := seqsOf(t, c, events.KernelStream(kernel)); ks[0] != kernelStart {
		t.Fatalf("kernel %s's stream starts at %v, want its KernelStarted at %d kept", kernel, ks, kernelStart)
	}
	if ps := seqsOf(t, c, events.ExecutionStream(pending)); !slices.Equal(ps, []uint64{pendingSeq}) {
		t.Fatalf("unfinished execution's stream = %v, want [%d] kept", ps, pendingSeq)
	}
	// A finished execution older than the window is gone, and says why.
	if _, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": early}); !strings.Contains(text, "--retain-events") ||
		!strings.Contains(text, "older than the retained event log") {
		t.Fatalf("get_execution of a truncated execution: %q, want an error naming --retain-events", text)
	}

	// A restart recovers the kernel (its process kept running) and answers
	// for recent work.
	if err := c.close(ctx); err != nil {
		t.Fatal(err)
	}
	closed = true
	c, cl = open()
	t.Cleanup(func() { _ = c.close(context.Background()) })
	if !slices.Contains(c.sys.KernelIDs(), kernel) {
		t.Fatalf("kernel %s not recovered after the restart (kernels %v)", kernel, c.sys.KernelIDs())
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": kernel, "code": "print(x + 1)"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("execute on the recovered kernel: %v %s, want 42 (its variables survived)", sc, text)
	}
	if sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": recent}); sc["status"] != "ok" {
		t.Fatalf("get_execution of a recent execution after the restart: %v %s", sc, text)
	}
	if x, ok := c.queue.Get(pending); !ok || x.Status.Done() {
		t.Fatalf("the unfinished execution after the restart: %+v %v, want it still queued", x, ok)
	}
}

// TestEventsSinceBelowRetentionNamesTheSetting: `events tail --since` and
// GET /events?since= below the retained log say the events are gone, which
// setting did it, and where to resume.
func TestEventsSinceBelowRetentionNamesTheSetting(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{Node: "test-node",
		TruncatedHint: retentionHint(config{RetainEvents: 50})})
	if err != nil {
		t.Fatal(err)
	}
	testkit.AppendAll(t, l, testkit.RealisticDrafts(100))
	if _, err := l.TruncateBefore(51, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(eventsHandler(context.Background(), l, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events?since=10")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "keeps the last 50 events (--retain-events") ||
		!strings.Contains(string(body), "resume from 51") {
		t.Fatalf("GET /events?since=10 on a log starting at 51: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(srv.URL + "/events?since=50")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(body), "\n") != 50 {
		t.Fatalf("GET /events?since=50: %d, %d lines, want the 50 retained events", resp.StatusCode, strings.Count(string(body), "\n"))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = events_(t, "tail", "--since", "10", "--data-dir", dataDir)
	if !errors.Is(err, eventlog.ErrTruncated) || !strings.Contains(err.Error(), "--retain-events") || !strings.Contains(err.Error(), "resume from 51") {
		t.Fatalf("events tail --since 10 on a log starting at 51: %v, want ErrTruncated naming --retain-events", err)
	}
	if out := mustEvents(t, "tail", "--data-dir", dataDir); strings.Count(out, "\n") != 50 {
		t.Fatalf("events tail without --since printed %d lines, want the 50 retained", strings.Count(out, "\n"))
	}
}
