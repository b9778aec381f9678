package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// replaySite is the console API over a log with the server's own replayer
// (its present kernels model replayed to the log's end).
type replaySite struct {
	log *eventlog.Log
	r   *consoleReplayer
	api http.Handler
}

func newReplaySite(t testing.TB, l *eventlog.Log, limits replayCacheLimits, every uint64) *replaySite {
	t.Helper()
	present, err := replayModels(context.Background(), l, l.Last(), nil)
	if err != nil {
		t.Fatal(err)
	}
	access := edgeAccess{access: access{kernels: present.Kernels}, caughtUp: func(context.Context, uint64) error { return nil }}
	r := newConsoleReplayer(l, access, limits, every)
	return &replaySite{log: l, r: r, api: console.New(console.Options{Replay: r}).API()}
}

// get answers path for principal p.
func (s *replaySite) get(ctx context.Context, p auth.Principal, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil).WithContext(auth.WithPrincipal(ctx, p))
	rec := httptest.NewRecorder()
	s.api.ServeHTTP(rec, req)
	return rec
}

func reader(name string) auth.Principal { return auth.Principal{Name: name, Scopes: auth.ScopeRead} }

// TestConsoleThenReplayNotMonopolised: one read-scope principal (alice)
// asking for the past at far-apart seqs in a loop cannot make another
// (bob) wait: bob's requests near a state he looked at before answer 200
// within a bound, while alice's far ones fold a bounded number of events
// each and answer 503 with Retry-After until the past is computed.
func TestConsoleThenReplayNotMonopolised(t *testing.T) {
	const n, every = 24_000, 64
	l := testkit.LogWithEvents(t, n, testkit.Mix{})
	s := newReplaySite(t, l, replayCacheLimits{entries: replayMaxEntries, bytes: replayMaxBytes}, every)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice, bob := reader("alice"), reader("bob")
	// Bob looked at seq 300 before (its state is cached).
	if rec := s.get(ctx, bob, "/ui/api/at?seq=300"); rec.Code != http.StatusOK {
		t.Fatalf("bob's first /at: %d %s", rec.Code, rec.Body)
	}
	// Alice loops over far-apart seqs, from the log's end downwards.
	var wg sync.WaitGroup
	aliceCtx, stopAlice := context.WithCancel(ctx)
	defer func() { stopAlice(); wg.Wait() }()
	started := make(chan struct{})
	var aliceRetries, aliceAnswers int
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		for i := 0; aliceCtx.Err() == nil; i++ {
			seq := uint64(n - (i%12)*1_999)
			rec := s.get(aliceCtx, alice, fmt.Sprintf("/ui/api/at?seq=%d", seq))
			switch rec.Code {
			case http.StatusOK:
				aliceAnswers++
			case http.StatusServiceUnavailable:
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("alice's 503 without Retry-After: %s", rec.Body)
					return
				}
				aliceRetries++
			default:
				if aliceCtx.Err() == nil {
					t.Errorf("alice's /at?seq=%d: %d %s", seq, rec.Code, rec.Body)
				}
				return
			}
		}
	}()
	<-started
	const bound = time.Second
	var slowest time.Duration
	defer func() { t.Logf("bob's slowest /at: %v", slowest) }()
	for i := range 20 {
		t0 := time.Now()
		rec := s.get(ctx, bob, fmt.Sprintf("/ui/api/at?seq=%d", 300+i))
		took := time.Since(t0)
		slowest = max(slowest, took)
		if rec.Code != http.StatusOK {
			t.Fatalf("bob's /at?seq=%d while alice loops: %d %s", 300+i, rec.Code, rec.Body)
		}
		if took > bound {
			t.Fatalf("bob's /at?seq=%d took %v while alice loops over far seqs, want at most %v", 300+i, took, bound)
		}
	}
	stopAlice()
	wg.Wait()
	if aliceRetries == 0 {
		t.Fatalf("alice's far requests (%d answered) never answered 503 'being computed': a request folds without bound", aliceAnswers)
	}
	// A far request folds at most maxFold events: retried, it gets there.
	m, folded, err := modelsRetrying(t, s.r, n-7)
	if err != nil || m.Seq != n-7 || folded > s.r.maxFold {
		t.Fatalf("the state at %d: folded %d (max %d), %v", n-7, folded, s.r.maxFold, err)
	}
}

// TestConsoleThenWeighsWithoutEncoding: the cache weighs a state without
// encoding it: weighing a queue of 2,000 executions (10 KB of code each)
// allocates nothing, where a JSON snapshot allocates its 20 MB.
func TestConsoleThenWeighsWithoutEncoding(t *testing.T) {
	q := queue.NewModel()
	code := strings.Repeat("x = 1\n", 10_000/6)
	for i := range 2_000 {
		id := fmt.Sprintf("x%d", i)
		if err := q.Apply(events.Event{Seq: uint64(i + 1), Stream: events.ExecutionStream(id), Type: events.TypeExecutionQueued,
			Payload: events.ExecutionQueued{ExecutionID: id, KernelID: "k1", Code: code}}); err != nil {
			t.Fatal(err)
		}
	}
	m := &readModels{Seq: 2_000, Queue: q, Kernels: kernels.New()}
	var size int
	var before, after runtimeMem
	before.read()
	allocs := testing.AllocsPerRun(5, func() {
		var err error
		if size, err = modelsSize(m); err != nil {
			t.Fatal(err)
		}
	})
	after.read()
	if allocs > 0 || after.bytes-before.bytes > 64<<10 {
		t.Fatalf("weighing a state allocated %v times, %d bytes: it encodes the models", allocs, after.bytes-before.bytes)
	}
	if size < 2_000*len(code) {
		t.Fatalf("a state of 2,000 executions of %d bytes of code weighs %d: less than its code", len(code), size)
	}
}

// TestConsoleThenRetentionDuringFold: retention truncating the log between
// the replay reading its First and folding (the fold meets a gap) does not
// fail the request with a 500: the replay drops the states below the new
// First and folds what is retained; a seq retention deleted meanwhile
// answers 410 naming the setting.
func TestConsoleThenRetentionDuringFold(t *testing.T) {
	const n, every = 3_000, 64
	for _, tc := range []struct {
		name      string
		seq       uint64
		truncate  uint64
		want      int
		wantError string
	}{
		{name: "seq retained", seq: 2_900, truncate: 1_000, want: http.StatusOK},
		{name: "seq deleted", seq: 900, truncate: 1_000, want: http.StatusGone, wantError: "no longer in the log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testkit.LogWithEvents(t, n, testkit.Mix{})
			s := newReplaySite(t, l, replayCacheLimits{entries: replayMaxEntries, bytes: replayMaxBytes}, every)
			// A state cached before retention, below the First it will move to.
			if _, _, err := modelsRetrying(t, s.r, 500); err != nil {
				t.Fatal(err)
			}
			s.r.maxFold = n // NB: one fold: the race is with retention, not the fold bound
			src := &truncatingSource{Log: l, before: tc.truncate}
			s.r.src = src
			rec := s.get(context.Background(), auth.Admin(), fmt.Sprintf("/ui/api/at?seq=%d", tc.seq))
			if !src.truncated {
				t.Fatal("the source never truncated: the test does not test the race")
			}
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.wantError) {
				t.Fatalf("/at?seq=%d after retention moved First to %d during the fold: %d %s, want %d %q", tc.seq, l.First(), rec.Code, rec.Body, tc.want, tc.wantError)
			}
			if tc.want != http.StatusOK {
				return
			}
			var st console.AtState
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Seq != tc.seq {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if entries, _ := s.r.cache.stats(); entries > 0 && s.r.cache.floor(tc.truncate-2) != nil {
				t.Fatalf("a cached state below the retained log (First %d) survived", l.First())
			}
		})
	}
}

// truncatingSource is the log, whose retention runs (TruncateBefore) right
// after the replay first reads its First: the race between deciding what
// is retained and folding.
type truncatingSource struct {
	*eventlog.Log
	before    uint64
	truncated bool
}

func (s *truncatingSource) First() uint64 {
	first := s.Log.First()
	if !s.truncated {
		s.truncated = true
		if _, err := s.Log.TruncateBefore(s.before, func(events.Event) bool { return false }); err != nil {
			panic(err)
		}
	}
	return first
}

// TestConsoleTimelineLargestAfter: after=MaxUint64 (past every event) is
// an empty page, not 410 "event 0 was deleted" (after+1 wrapped).
func TestConsoleTimelineLargestAfter(t *testing.T) {
	l := testkit.LogWithEvents(t, 500, testkit.Mix{})
	s := newReplaySite(t, l, replayCacheLimits{entries: 8, bytes: 1 << 20}, 64)
	kernel := firstKernel(t, l)
	if _, err := l.TruncateBefore(100, func(events.Event) bool { return false }); err != nil {
		t.Fatal(err)
	}
	rec := s.get(context.Background(), auth.Admin(), "/ui/api/timeline?kernel="+kernel+"&after=18446744073709551615")
	var tl console.Timeline
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tl) != nil || len(tl.Events) != 0 || tl.More {
		t.Fatalf("timeline after=MaxUint64: %d %s, want 200 and no events", rec.Code, rec.Body)
	}
}

// TestConsoleThenClipsEchoedValues: a 1 MB query value in a bad request
// is not echoed whole: the error answer stays small.
func TestConsoleThenClipsEchoedValues(t *testing.T) {
	l := testkit.LogWithEvents(t, 200, testkit.Mix{})
	s := newReplaySite(t, l, replayCacheLimits{entries: 8, bytes: 1 << 20}, 64)
	kernel := firstKernel(t, l)
	huge := strings.Repeat("9", 1<<20)
	for _, path := range []string{
		"/ui/api/at?seq=" + huge + "x",
		"/ui/api/at?seq=1&kernel=" + huge + "x",
		"/ui/api/timeline?kernel=" + huge + "x",
		"/ui/api/timeline?kernel=" + kernel + "&after=" + huge + "x",
		"/ui/api/timeline?kernel=" + kernel + "&limit=" + huge,
		"/ui/api/at/outputs?execution=" + huge + "x&seq=1",
		"/ui/api/at/outputs?execution=x1&seq=1&after=" + huge + "x",
	} {
		rec := s.get(context.Background(), auth.Admin(), path)
		if rec.Code != http.StatusBadRequest || rec.Body.Len() > 1024 {
			t.Fatalf("GET %s…: %d with a %d-byte body, want 400 and at most 1 KiB: %.200s", path[:40], rec.Code, rec.Body.Len(), rec.Body)
		}
	}
}

// TestConsoleThenSummarizesLargeDisplayCheaply: the timeline's summary of
// a 10 MB display bundle lists its MIME types without decoding the values.
func TestConsoleThenSummarizesLargeDisplayCheaply(t *testing.T) {
	png := strings.Repeat("A", 10<<20)
	content, err := json.Marshal(map[string]any{"data": map[string]any{"image/png": png, "text/plain": "<Figure>",
		"application/json": map[string]any{"a": []int{1, 2, 3}}}, "metadata": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	p := events.IOPubMessageReceived{MsgType: "display_data", Content: content}
	var got string
	var before, after runtimeMem
	before.read()
	allocs := testing.AllocsPerRun(1, func() { got = summarizeIOPub(p) })
	after.read()
	if got != "display_data application/json, image/png, text/plain" {
		t.Fatalf("summary %q", got)
	}
	if perRun := (after.bytes - before.bytes) / 2; perRun > 1<<20 || allocs > 200 {
		t.Fatalf("summarizing a 10 MB display bundle allocated %d bytes (%v allocations) per call: it decodes the values", perRun, allocs)
	}
}

// runtimeMem is the bytes allocated so far (runtime.MemStats.TotalAlloc).
type runtimeMem struct{ bytes uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.bytes = ms.TotalAlloc
}

// firstKernel is the id of the first kernel started in l.
func firstKernel(t testing.TB, l *eventlog.Log) string {
	t.Helper()
	var kernel string
	if err := l.Read(context.Background(), 0, 0, func(e events.Event) error {
		if e.Type == events.TypeKernelStarted {
			kernel = e.Kernel
			return eventlog.ErrStop
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if kernel == "" {
		t.Fatal("no kernel in the log")
	}
	return kernel
}
