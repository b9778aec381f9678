package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func draft(kernel, stream string, p events.Payload) events.Draft {
	return events.Draft{Stream: stream, Kernel: kernel, Payload: p}
}

// execution is one execution's events: queued, started, two outputs and a
// final event.
func execution(kernel, x string, final events.Payload) []events.Draft {
	s := events.ExecutionStream(x)
	out := func(i int) events.Draft {
		return draft(kernel, s, events.IOPubMessageReceived{KernelID: kernel, ExecutionID: x, MsgID: fmt.Sprintf("%s-%d", x, i),
			MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"hi\n"}`)})
	}
	return []events.Draft{
		draft(kernel, s, events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "print('hi')"}),
		draft(kernel, s, events.ExecutionStarted{ExecutionID: x, KernelID: kernel, MsgID: x + "-req"}),
		out(0), out(1),
		draft(kernel, s, final),
	}
}

// workload: kernels kernels, execs executions spread over them, plus one
// of every other kind of event the metrics count.
func workload(kernels, execs int) []events.Draft {
	var ds []events.Draft
	for k := range kernels {
		id := fmt.Sprintf("k%03d", k)
		ds = append(ds, draft(id, events.KernelStream(id), events.KernelStarted{KernelID: id, Spec: "python3", Process: events.KernelProcess{Pid: 1000 + k}}))
	}
	for x := range execs {
		k := fmt.Sprintf("k%03d", x%kernels)
		id := fmt.Sprintf("x%05d", x)
		var final events.Payload = events.ExecutionFinished{ExecutionID: id, Status: "ok"}
		switch x % 10 {
		case 1:
			final = events.ExecutionFinished{ExecutionID: id, Status: "error", ErrorName: "ValueError"}
		case 2:
			final = events.ExecutionInterrupted{ExecutionID: id}
		}
		ds = append(ds, execution(k, id, final)...)
	}
	return ds
}

func fold(t testing.TB, p *metrics.Projection, ds []events.Draft) {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range ds {
		e := events.Event{Seq: uint64(i + 1), Time: base.Add(time.Duration(i) * 100 * time.Millisecond), Stream: d.Stream,
			Kernel: d.Kernel, Type: d.Payload.EventType(), Version: 1, Payload: d.Payload}
		if err := p.Apply(e); err != nil {
			t.Fatalf("apply %s: %v", e.Type, err)
		}
	}
}

func value(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			case m.Summary != nil:
				return float64(m.Summary.GetSampleCount())
			}
		}
		t.Fatalf("%s%v: no such series", name, labels)
	}
	t.Fatalf("%s: not registered", name)
	return 0
}

// TestFoldTranscript: given these events, the metrics say this.
func TestFoldTranscript(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := []events.Draft{
		draft("a", events.KernelStream("a"), events.KernelStarted{KernelID: "a"}),
		draft("b", events.KernelStream("b"), events.KernelStarted{KernelID: "b"}),
		draft("c", events.KernelStream("c"), events.KernelStarted{KernelID: "c"}),
	}
	ds = append(ds, execution("a", "x1", events.ExecutionFinished{ExecutionID: "x1", Status: "ok"})...)
	ds = append(ds, execution("a", "x2", events.ExecutionFinished{ExecutionID: "x2", Status: "error"})...)
	ds = append(ds,
		draft("a", "execution/x3", events.ExecutionQueued{ExecutionID: "x3", KernelID: "a"}),
		draft("a", "execution/x3", events.ExecutionStarted{ExecutionID: "x3", KernelID: "a"}), // running
		draft("a", "execution/x4", events.ExecutionQueued{ExecutionID: "x4", KernelID: "a"}),
		draft("a", "execution/x5", events.ExecutionQueued{ExecutionID: "x5", KernelID: "a"}),
		draft("a", "execution/x5", events.ExecutionCancelled{ExecutionID: "x5", Reason: "asked"}),
		draft("b", "execution/x6", events.ExecutionQueued{ExecutionID: "x6", KernelID: "b"}),
		draft("b", events.KernelStream("b"), events.KernelDied{KernelID: "b", Reason: "oom"}),
		draft("b", "execution/x6", events.ExecutionLost{ExecutionID: "x6", Reason: "kernel died"}),
		draft("b", events.KernelStream("b"), events.KernelRestarted{KernelID: "b"}),
		draft("c", events.KernelStream("c"), events.KernelLost{KernelID: "c", Reason: "gone"}),
		draft("a", events.KernelStream("a"), events.IOPubGapRecorded{KernelID: "a", Dropped: 7}),
		draft("a", events.AssetStream("s1"), events.AssetStored{SHA256: "s1", Size: 100}),
		draft("a", events.AssetStream("s2"), events.AssetStored{SHA256: "s2", Size: 50}),
		draft("", events.AssetStream("s1"), events.LeaseExpired{SHA256: "s1", Holder: "h"}),
		draft("", events.AssetStream("s1"), events.AssetCollected{SHA256: "s1", Size: 100}),
		draft("a", events.CheckpointStream("c1"), events.CheckpointSaved{Name: "c1", KernelID: "a", Size: 2 << 20}),
		draft("a", events.CheckpointStream("c1"), events.CheckpointLoaded{Name: "c1", KernelID: "a", Missing: []string{"torch", "xgboost"}}),
		draft("a", events.CheckpointStream("c1"), events.CheckpointRejected{Name: "c1", KernelID: "a", Reason: "HMAC signature mismatch: the file was changed or signed with another key"}),
		draft("a", events.CheckpointStream("c2"), events.CheckpointRejected{Name: "c2", KernelID: "a", Reason: "too large"}),
	)
	fold(t, m.Projection(), ds)
	m.Live.ZombiesReaped(2)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mcp_jupyter_executions", []string{"state", "queued"}, 1},
		{"mcp_jupyter_executions", []string{"state", "running"}, 1},
		{"mcp_jupyter_executions_finished_total", []string{"outcome", "ok"}, 1},
		{"mcp_jupyter_executions_finished_total", []string{"outcome", "error"}, 1},
		{"mcp_jupyter_executions_finished_total", []string{"outcome", "cancelled"}, 1},
		{"mcp_jupyter_executions_finished_total", []string{"outcome", "lost"}, 1},
		{"mcp_jupyter_queue_depth_max", nil, 1},
		{"mcp_jupyter_execution_duration_seconds", nil, 2},
		{"mcp_jupyter_kernels", []string{"state", "running"}, 2},
		{"mcp_jupyter_kernels", []string{"state", "lost"}, 1},
		{"mcp_jupyter_kernel_restarts_total", nil, 1},
		{"mcp_jupyter_kernel_deaths_total", nil, 1},
		{"mcp_jupyter_iopub_messages_total", nil, 4},
		{"mcp_jupyter_iopub_dropped_messages_total", nil, 7},
		{"mcp_jupyter_assets", nil, 1},
		{"mcp_jupyter_asset_bytes", nil, 50},
		{"asset_lease_expiry_count", nil, 1},
		{"mcp_jupyter_gc_deletions_total", nil, 1},
		{"checkpoint_size_bytes", nil, 0}, // fed by the checkpoint actor, not folded
		{"missing_dependencies_count", nil, 2},
		{"security_signature_failures_total", nil, 1},
		{"mcp_jupyter_checkpoints_rejected_total", nil, 2},
		{"zombie_process_cleanup_count", nil, 2},
		{"checkpoint_save_duration_seconds", nil, 0},
		{"checkpoint_load_duration_seconds", nil, 0},
		{"mcp_jupyter_iopub_backlog_bytes", nil, 0},
		{"mcp_jupyter_iopub_backlog_overflows_total", nil, 0},
		{"mcp_jupyter_websocket_clients", nil, 0},
		{"mcp_jupyter_websocket_slow_disconnects_total", nil, 0},
		{"mcp_jupyter_replay_duration_seconds", nil, 0},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestSnapshotRestoreKeepsTheFigures: a restart from a snapshot reports what
// a full replay reports.
func TestSnapshotRestoreKeepsTheFigures(t *testing.T) {
	ds := workload(3, 30)
	full := metrics.NewProjection()
	fold(t, full, ds)
	half := metrics.NewProjection()
	fold(t, half, ds[:len(ds)/2])
	data, err := half.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := metrics.NewProjection()
	if err := restored.Restore(data); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := len(ds) / 2; i < len(ds); i++ {
		d := ds[i]
		e := events.Event{Seq: uint64(i + 1), Time: base.Add(time.Duration(i) * 100 * time.Millisecond), Stream: d.Stream,
			Kernel: d.Kernel, Type: d.Payload.EventType(), Version: 1, Payload: d.Payload}
		if err := restored.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := full.Snapshot()
	b, _ := restored.Snapshot()
	if string(a) != string(b) {
		t.Fatalf("restored projection differs from the full fold:\n full %s\n rest %s", a, b)
	}
	if err := restored.Restore([]byte("{not json")); err == nil {
		t.Fatal("a damaged snapshot was accepted")
	}
}

func startScrape(t testing.TB, l *eventlog.Log) (*metrics.Metrics, *projections.Runner, http.Handler) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, l)
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(l, projections.Options{}, m.Projection())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	return m, r, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

func scrape(t testing.TB, h http.Handler) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestScrapeARealLog: the runner folds a real Pebble log and the figures
// follow new appends.
func TestScrapeARealLog(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	testkit.AppendAll(t, l, workload(4, 40))
	_, r, h := startScrape(t, l)
	body := scrape(t, h)
	for _, want := range []string{
		`mcp_jupyter_executions_finished_total{outcome="ok"} 32`,
		`mcp_jupyter_executions_finished_total{outcome="interrupted"} 4`,
		`mcp_jupyter_kernels{state="running"} 4`,
		`mcp_jupyter_queue_depth_max 0`,
		`mcp_jupyter_iopub_messages_total 80`,
		"persistence_db_size_bytes ",
		"mcp_jupyter_log_commit_duration_seconds_count ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	testkit.AppendAll(t, l, []events.Draft{draft("k000", "execution/q", events.ExecutionQueued{ExecutionID: "q", KernelID: "k000"})})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	if body := scrape(t, h); !strings.Contains(body, `mcp_jupyter_queue_depth_max 1`) {
		t.Errorf("a new queued execution is not in the queue depth")
	}
}

// BenchmarkScrape100Kernels10kExecutions: /metrics over a log holding 100
// kernels and 10,000 executions (figure: ≤ 50 ms), beside the baseline of a
// scrape of an empty registry's process and Go collectors.
func BenchmarkScrape100Kernels10kExecutions(b *testing.B) {
	l := testkit.OpenLog(b, testkit.TempDataDir(b))
	testkit.AppendAll(b, l, workload(100, 10000))
	_, _, h := startScrape(b, l)
	base := prometheus.NewRegistry()
	base.MustRegister(collectors.NewGoCollector())
	bh := promhttp.HandlerFor(base, promhttp.HandlerOpts{})
	var ours, raw time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		scrape(b, h)
		ours += time.Since(t0)
		t0 = time.Now()
		scrape(b, bh)
		raw += time.Since(t0)
	}
	ms := float64(ours.Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "ms/scrape")
	b.ReportMetric(float64(raw.Microseconds())/1000/float64(b.N), "ms/baseline-scrape")
	b.ReportMetric(ms/50, "ratio-target")
	b.ReportMetric(float64(ours)/float64(max(raw, 1)), "ratio-baseline")
}

// histogram returns a histogram's sample count and sum.
func histogram(t testing.TB, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].Histogram != nil {
			h := mf.GetMetric()[0].Histogram
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}

// TestCheckpointObserver: every save and load attempt is a duration
// sample; only a save that produced a file is a size sample.
func TestCheckpointObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := m.Live.CheckpointObserver()
	o.SaveObserved(1500*time.Millisecond, 3<<20)
	o.SaveObserved(200*time.Millisecond, 0) // failed: no file
	o.LoadObserved(time.Second, "ok")
	o.LoadObserved(10*time.Millisecond, "rejected")
	for _, c := range []struct {
		name  string
		count uint64
		sum   float64
	}{
		{"checkpoint_save_duration_seconds", 2, 1.7},
		{"checkpoint_size_bytes", 1, 3 << 20},
		{"checkpoint_load_duration_seconds", 2, 1.01},
	} {
		n, sum := histogram(t, reg, c.name)
		if n != c.count || sum < c.sum-1e-9 || sum > c.sum+1e-9 {
			t.Errorf("%s: count %d sum %v, want %d and %v", c.name, n, sum, c.count, c.sum)
		}
	}
}

// TestPipelinedExecutionIsQueuedUntilTheOneAheadEnds: an execution sent to
// the kernel behind the running one (ExecutionStarted{behind}) waits, as
// the queue model shows it: /metrics counts it queued (and in the deepest
// queue) until the one ahead ends, then running, and its latency runs from
// then.
func TestPipelinedExecutionIsQueuedUntilTheOneAheadEnds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := events.ExecutionStream("x1"), events.ExecutionStream("x2")
	fold(t, m.Projection(), []events.Draft{
		draft("a", events.KernelStream("a"), events.KernelStarted{KernelID: "a"}),
		draft("a", s1, events.ExecutionQueued{ExecutionID: "x1", KernelID: "a"}),
		draft("a", s1, events.ExecutionStarted{ExecutionID: "x1", KernelID: "a"}),
		draft("a", s2, events.ExecutionQueued{ExecutionID: "x2", KernelID: "a"}),
		draft("a", s2, events.ExecutionStarted{ExecutionID: "x2", KernelID: "a", Behind: "x1"}),
	})
	want := func(what string, queued, running, deepest float64) {
		t.Helper()
		if q := value(t, reg, "mcp_jupyter_executions", "state", "queued"); q != queued {
			t.Errorf("%s: %v queued, want %v", what, q, queued)
		}
		if r := value(t, reg, "mcp_jupyter_executions", "state", "running"); r != running {
			t.Errorf("%s: %v running, want %v", what, r, running)
		}
		if d := value(t, reg, "mcp_jupyter_queue_depth_max"); d != deepest {
			t.Errorf("%s: deepest queue %v, want %v", what, d, deepest)
		}
	}
	want("pipelined behind x1", 1, 1, 1)
	p := metrics.NewProjection()
	fold(t, p, []events.Draft{
		draft("a", s1, events.ExecutionQueued{ExecutionID: "x1", KernelID: "a"}),
		draft("a", s1, events.ExecutionStarted{ExecutionID: "x1", KernelID: "a"}),
		draft("a", s2, events.ExecutionQueued{ExecutionID: "x2", KernelID: "a"}),
		draft("a", s2, events.ExecutionStarted{ExecutionID: "x2", KernelID: "a", Behind: "x1"}),
	})
	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(snap), `"next":{"x1":"x2"}`) {
		t.Fatalf("the snapshot does not keep who waits behind whom: %s", snap)
	}
	fold(t, m.Projection(), []events.Draft{draft("a", s1, events.ExecutionFinished{ExecutionID: "x1", Status: "ok"})})
	want("x1 ended", 0, 1, 0)
	fold(t, m.Projection(), []events.Draft{draft("a", s2, events.ExecutionFinished{ExecutionID: "x2", Status: "ok"})})
	want("both ended", 0, 0, 0)
}
