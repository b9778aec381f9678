package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// series gathers reg into one value per series: counters and gauges by
// name{labels}, histograms and summaries as name_count and name_sum. The Go
// runtime and process collectors are left out (they move on their own).
func series(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			key := name
			if len(ls) > 0 {
				sort.Strings(ls)
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
				out[key+"_sum"] = m.Histogram.GetSampleSum()
			case m.Summary != nil:
				out[key+"_count"] = float64(m.Summary.GetSampleCount())
				out[key+"_sum"] = m.Summary.GetSampleSum()
			}
		}
	}
	return out
}

// delta is after - before for every series in either.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok && v != 0 {
			d[k] = -v
		}
	}
	return d
}

// foldedRig is a real Pebble log with the metrics projection run by a real
// projections runner, as the server runs it.
type foldedRig struct {
	log    *eventlog.Log
	reg    *prometheus.Registry
	m      *metrics.Metrics
	runner *projections.Runner
}

func newFoldedRig(t *testing.T) *foldedRig {
	t.Helper()
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, l)
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(l, projections.Options{}, m.Projection())
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return &foldedRig{log: l, reg: reg, m: m, runner: r}
}

// append appends ds and waits (with a deadline) until the projection has
// folded them.
func (g *foldedRig) append(t *testing.T, ds ...events.Draft) {
	t.Helper()
	if _, err := g.log.Append(context.Background(), ds...); err != nil {
		t.Fatalf("append: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.runner.WaitFor(ctx, g.log.Last()); err != nil {
		t.Fatalf("wait for the metrics projection: %v", err)
	}
}

// TestEveryFoldedMetricMoves: for each fact the log can hold, appending it
// to a real log moves exactly the series that count it, by the expected
// amount, and nothing else (besides the log's and the projection's own
// bookkeeping, checked separately).
func TestEveryFoldedMetricMoves(t *testing.T) {
	g := newFoldedRig(t)
	d := func(kernel, stream string, p events.Payload) events.Draft {
		return events.Draft{Stream: stream, Kernel: kernel, Payload: p}
	}
	kst := events.KernelStream
	xst := events.ExecutionStream
	iopub := func(x string, i int) events.Draft {
		return d("k", xst(x), events.IOPubMessageReceived{KernelID: "k", ExecutionID: x, MsgID: fmt.Sprintf("%s-%d", x, i),
			MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"hi\n"}`)})
	}
	queued := func(x string) events.Draft {
		return d("k", xst(x), events.ExecutionQueued{ExecutionID: x, KernelID: "k", Code: "1"})
	}
	started := func(x string) events.Draft {
		return d("k", xst(x), events.ExecutionStarted{ExecutionID: x, KernelID: "k", MsgID: x + "-req"})
	}
	const running, dead, lost = "mcp_jupyter_kernels{state=running}", "mcp_jupyter_kernels{state=dead}", "mcp_jupyter_kernels{state=lost}"
	const qd, xq, xr = "mcp_jupyter_queue_depth_max", "mcp_jupyter_executions{state=queued}", "mcp_jupyter_executions{state=running}"
	const lat = "mcp_jupyter_execution_duration_seconds_count"
	fin := func(o string) string { return "mcp_jupyter_executions_finished_total{outcome=" + o + "}" }
	restored := func(o string) string { return "mcp_jupyter_kernel_restores_total{outcome=" + o + "}" }
	// NB: in order: each case starts from the state the previous left.
	cases := []struct {
		name   string
		drafts []events.Draft
		want   map[string]float64
	}{
		{"kernel started", []events.Draft{d("k", kst("k"), events.KernelStarted{KernelID: "k", Spec: "python3"})},
			map[string]float64{running: 1, qd: 0}},
		{"execution queued", []events.Draft{queued("x1")}, map[string]float64{xq: 1, qd: 1}},
		{"execution started", []events.Draft{started("x1")}, map[string]float64{xq: -1, xr: 1, qd: -1}},
		{"iopub messages", []events.Draft{iopub("x1", 0), iopub("x1", 1), iopub("x1", 2)},
			map[string]float64{"mcp_jupyter_iopub_messages_total": 3}},
		{"finished ok", []events.Draft{d("k", xst("x1"), events.ExecutionFinished{ExecutionID: "x1", Status: "ok"})},
			map[string]float64{xr: -1, fin("ok"): 1, lat: 1}},
		{"finished error", []events.Draft{queued("x2"), started("x2"), d("k", xst("x2"), events.ExecutionFinished{ExecutionID: "x2", Status: "error"})},
			map[string]float64{fin("error"): 1, lat: 1}},
		{"finished aborted", []events.Draft{queued("x3"), started("x3"), d("k", xst("x3"), events.ExecutionFinished{ExecutionID: "x3", Status: "aborted"})},
			map[string]float64{fin("aborted"): 1, lat: 1}},
		{"finished other", []events.Draft{queued("x4"), started("x4"), d("k", xst("x4"), events.ExecutionFinished{ExecutionID: "x4", Status: "weird"})},
			map[string]float64{fin("other"): 1, lat: 1}},
		{"interrupted", []events.Draft{queued("x5"), started("x5"), d("k", xst("x5"), events.ExecutionInterrupted{ExecutionID: "x5"})},
			map[string]float64{fin("interrupted"): 1, lat: 1}},
		{"cancelled while queued", []events.Draft{queued("x6"), d("k", xst("x6"), events.ExecutionCancelled{ExecutionID: "x6", Reason: "asked"})},
			map[string]float64{fin("cancelled"): 1}},
		{"lost while queued", []events.Draft{queued("x7"), d("k", xst("x7"), events.ExecutionLost{ExecutionID: "x7", Reason: "kernel died"})},
			map[string]float64{fin("lost"): 1}},
		{"iopub gap", []events.Draft{d("k", kst("k"), events.IOPubGapRecorded{KernelID: "k", Dropped: 7})},
			map[string]float64{"mcp_jupyter_iopub_gaps_total": 1, "mcp_jupyter_iopub_dropped_messages_total": 7}},
		{"kernel died", []events.Draft{d("k", kst("k"), events.KernelDied{KernelID: "k", Reason: "oom"})},
			map[string]float64{running: -1, dead: 1, "mcp_jupyter_kernel_deaths_total": 1}},
		{"kernel restarted", []events.Draft{d("k", kst("k"), events.KernelRestarted{KernelID: "k"})},
			map[string]float64{running: 1, dead: -1, "mcp_jupyter_kernel_restarts_total": 1}},
		{"kernel start failed", []events.Draft{d("k2", kst("k2"), events.KernelStartFailed{KernelID: "k2", Spec: "nope", Reason: "no such spec"})},
			map[string]float64{"mcp_jupyter_kernel_start_failures_total": 1}},
		{"kernel lost", []events.Draft{d("k3", kst("k3"), events.KernelStarted{KernelID: "k3"}), d("k3", kst("k3"), events.KernelLost{KernelID: "k3", Reason: "gone"})},
			map[string]float64{lost: 1, "mcp_jupyter_kernels_lost_total": 1, "mcp_jupyter_queue_depth_max": 0}},
		{"asset stored", []events.Draft{d("k", events.AssetStream("s1"), events.AssetStored{SHA256: "s1", Size: 100})},
			map[string]float64{"mcp_jupyter_assets": 1, "mcp_jupyter_asset_bytes": 100}},
		{"lease expired", []events.Draft{d("", events.AssetStream("s1"), events.LeaseExpired{SHA256: "s1", Holder: "h"})},
			map[string]float64{"asset_lease_expiry_count": 1}},
		{"asset collected", []events.Draft{d("", events.AssetStream("s1"), events.AssetCollected{SHA256: "s1", Size: 100})},
			map[string]float64{"mcp_jupyter_assets": -1, "mcp_jupyter_asset_bytes": -100, "mcp_jupyter_gc_deletions_total": 1,
				"mcp_jupyter_gc_deleted_bytes_total": 100}},
		{"checkpoint saved", []events.Draft{d("k", events.CheckpointStream("c"), events.CheckpointSaved{Name: "c", KernelID: "k", Size: 3 << 20})},
			map[string]float64{"mcp_jupyter_checkpoints_saved_total": 1}},
		{"checkpoint loaded", []events.Draft{d("k", events.CheckpointStream("c"), events.CheckpointLoaded{Name: "c", KernelID: "k", Missing: []string{"torch", "xgboost"}})},
			map[string]float64{"mcp_jupyter_checkpoints_loaded_total": 1, "missing_dependencies_count": 2}},
		{"checkpoint refused: signature", []events.Draft{d("k", events.CheckpointStream("c"), events.CheckpointRejected{Name: "c", KernelID: "k", Reason: "tampered", Signature: true})},
			map[string]float64{"mcp_jupyter_checkpoints_rejected_total": 1, "security_signature_failures_total": 1}},
		{"checkpoint refused: policy", []events.Draft{d("k", events.CheckpointStream("c"), events.CheckpointRejected{Name: "c", KernelID: "k", Reason: "policy refuse"})},
			map[string]float64{"mcp_jupyter_checkpoints_rejected_total": 1}},
		// Issue 18: auto-checkpoints, restores of relaunched kernels, culls.
		{"auto-checkpoint saved", []events.Draft{d("k", events.CheckpointStream("alice~auto-k"), events.CheckpointSaved{Name: "alice~auto-k", KernelID: "k", Size: 1 << 20})},
			map[string]float64{"mcp_jupyter_checkpoints_saved_total": 1, "mcp_jupyter_auto_checkpoints_saved_total": 1}},
		{"admin's auto-checkpoint saved", []events.Draft{d("k6", events.CheckpointStream("auto-k6"), events.CheckpointSaved{Name: "auto-k6", KernelID: "k6", Size: 1 << 20})},
			map[string]float64{"mcp_jupyter_checkpoints_saved_total": 1, "mcp_jupyter_auto_checkpoints_saved_total": 1}},
		{"an agent's checkpoint named like one is not", []events.Draft{d("k", events.CheckpointStream("alice~autograd"), events.CheckpointSaved{Name: "alice~autograd", KernelID: "k", Size: 1 << 20})},
			map[string]float64{"mcp_jupyter_checkpoints_saved_total": 1}},
		{"restored whole", []events.Draft{d("k", kst("k"), events.KernelRestored{KernelID: "k", Checkpoint: "alice~auto-k", Restored: []string{"df"}})},
			map[string]float64{restored("restored"): 1}},
		{"restored in part", []events.Draft{d("k", kst("k"), events.KernelRestored{KernelID: "k", Checkpoint: "alice~auto-k", Restored: []string{"df"},
			Skipped: []events.CheckpointVariable{{Name: "conn", Reason: "cannot pickle socket"}}, Mismatched: []string{"numpy==1.26.4"}})},
			map[string]float64{restored("partial"): 1}},
		{"restore failed", []events.Draft{d("k", kst("k"), events.KernelRestored{KernelID: "k", Error: "the load was refused: signature"})},
			map[string]float64{restored("failed"): 1}},
		{"nothing to restore", []events.Draft{d("k4", kst("k4"), events.KernelRestored{KernelID: "k4", Error: "no auto-checkpoint auto-k4: a fresh kernel"})},
			map[string]float64{restored("none"): 1}},
		{"kernel culled", []events.Draft{d("k5", kst("k5"), events.KernelStarted{KernelID: "k5"}),
			d("k5", kst("k5"), events.KernelShutDown{KernelID: "k5", Culled: true, Reason: "idle for 1h0m0s (--cull-idle)"})},
			map[string]float64{"mcp_jupyter_kernels_shut_down_total": 1, "mcp_jupyter_kernels_culled_total": 1}},
		{"kernel shut down", []events.Draft{d("k", kst("k"), events.KernelShutDown{KernelID: "k"})},
			map[string]float64{running: -1, "mcp_jupyter_kernels_shut_down_total": 1, "missing_dependencies_count": -2}},
		// Its auto-checkpoint is forgotten with it: a later restore under the
		// same id (none happens) would have had nothing to restore.
		{"restore after shut down", []events.Draft{d("k", kst("k"), events.KernelRestored{KernelID: "k", Error: "no auto-checkpoint"})},
			map[string]float64{restored("none"): 1}},
	}
	// Bookkeeping that moves with every append: checked by amount here, then
	// left out of the exact comparison.
	bookkeeping := []string{"mcp_jupyter_metrics_events_folded_total", "mcp_jupyter_metrics_last_seq",
		"mcp_jupyter_log_appends_total", "mcp_jupyter_log_events_written_total", "mcp_jupyter_log_commit_duration_seconds_count",
		"mcp_jupyter_log_commit_duration_seconds_sum", "persistence_db_size_bytes", "mcp_jupyter_execution_duration_seconds_sum",
		// The data dir's volume: moves with every write; TestDiskFigures.
		"mcp_jupyter_disk_free_bytes", "mcp_jupyter_disk_size_bytes", "mcp_jupyter_disk_min_free_bytes", "mcp_jupyter_disk_full_level"}
	moved := map[string]bool{}
	for _, c := range cases {
		before := series(t, g.reg)
		g.append(t, c.drafts...)
		after := series(t, g.reg)
		got := delta(before, after)
		n := float64(len(c.drafts))
		if got["mcp_jupyter_metrics_events_folded_total"] != n || after["mcp_jupyter_metrics_last_seq"] != float64(g.log.Last()) {
			t.Errorf("%s: events folded +%v, last seq %v; want +%v and %d", c.name, got["mcp_jupyter_metrics_events_folded_total"],
				after["mcp_jupyter_metrics_last_seq"], n, g.log.Last())
		}
		if got["mcp_jupyter_log_appends_total"] != 1 || got["mcp_jupyter_log_events_written_total"] != n || got["mcp_jupyter_log_commit_duration_seconds_count"] < 1 {
			t.Errorf("%s: log appends +%v, events written +%v, commits +%v; want +1, +%v, ≥ +1", c.name, got["mcp_jupyter_log_appends_total"],
				got["mcp_jupyter_log_events_written_total"], got["mcp_jupyter_log_commit_duration_seconds_count"], n)
		}
		for _, k := range bookkeeping {
			delete(got, k)
		}
		for k, v := range c.want {
			if v == 0 { // the series must exist, unchanged
				if _, ok := after[k]; !ok {
					t.Errorf("%s: %s not exported", c.name, k)
				}
				continue
			}
			moved[k] = true
		}
		want := maps.Clone(c.want)
		maps.DeleteFunc(want, func(_ string, v float64) bool { return v == 0 })
		if !maps.Equal(got, want) {
			t.Errorf("%s: moved %v, want %v", c.name, got, want)
		}
	}
	if after := series(t, g.reg); after["persistence_db_size_bytes"] <= 0 {
		t.Errorf("persistence_db_size_bytes = %v after writing a log", after["persistence_db_size_bytes"])
	}
	// Every folded series was moved by some case: a new metric without a
	// case here fails.
	for k := range series(t, g.reg) {
		if !isFolded(k) || slices.Contains(bookkeeping, k) || strings.HasSuffix(k, "_sum") || strings.Contains(k, "queue_depth") {
			continue
		}
		if !moved[k] {
			t.Errorf("%s is never moved by a case: give it one, or remove it if nothing feeds it", k)
		}
	}
}

// isFolded: the series comes from the projection (not Live).
func isFolded(key string) bool {
	for _, live := range liveNames {
		if strings.HasPrefix(key, live) {
			return false
		}
	}
	return true
}

// liveNames are the metrics Live holds; each has its own test in
// live_test.go.
var liveNames = []string{"mcp_jupyter_replay_duration_seconds", "mcp_jupyter_iopub_backlog_bytes",
	"mcp_jupyter_iopub_backlog_overflows_total", "mcp_jupyter_websocket_clients", "mcp_jupyter_websocket_slow_disconnects_total",
	"checkpoint_save_duration_seconds", "checkpoint_load_duration_seconds", "checkpoint_size_bytes", "zombie_process_cleanup_count"}
