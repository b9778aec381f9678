package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// Live holds the figures that are not facts in the log. Each is a plain
// client_golang collector, safe for concurrent use, for the component that
// knows the figure to feed: the IOPub broadcaster (backlog, WebSocket
// clients), the checkpoint service (durations), preflight (orphans reaped),
// the server (replay time).
type Live struct {
	// ReplaySeconds: how long the last start took to replay the log until
	// the read models were ready.
	ReplaySeconds prometheus.Gauge
	// BacklogBytes: bytes held in the IOPub broadcast backlog.
	BacklogBytes prometheus.Gauge
	// BacklogOverflows: times the backlog bound was hit and a slow reader
	// was cut off or sent to the log for catch-up.
	BacklogOverflows prometheus.Counter
	// WebSocketClients: WebSocket subscribers connected now.
	WebSocketClients prometheus.Gauge
	// WebSocketSlowDisconnects: subscribers disconnected for falling behind.
	WebSocketSlowDisconnects prometheus.Counter
	// CheckpointSave and CheckpointLoad: wall time of a save or a load,
	// observed by the checkpoint actor (see CheckpointObserver) for every
	// save and every load it started, whatever the outcome: a tampered file
	// refused by verification is a load attempt too (it is counted apart in
	// security_signature_failures_total).
	CheckpointSave prometheus.Histogram
	CheckpointLoad prometheus.Histogram
	// CheckpointSize: size of each checkpoint file saved.
	CheckpointSize prometheus.Histogram
	// ZombiesReaped: orphaned kernel processes of a previous run reaped.
	ZombiesReaped prometheus.Counter
}

func newLive() *Live {
	durations := []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	return &Live{
		ReplaySeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_replay_duration_seconds",
			Help: "Time the last start took to replay the event log until the read models were ready."}),
		BacklogBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_iopub_backlog_bytes",
			Help: "Bytes held in the IOPub broadcast backlog."}),
		BacklogOverflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcp_jupyter_iopub_backlog_overflows_total",
			Help: "Times the IOPub broadcast backlog hit its bound."}),
		WebSocketClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_websocket_clients",
			Help: "WebSocket subscribers connected."}),
		WebSocketSlowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcp_jupyter_websocket_slow_disconnects_total",
			Help: "WebSocket subscribers disconnected for falling behind."}),
		CheckpointSave: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_save_duration_seconds",
			Help: "Wall time of a checkpoint save.", Buckets: durations}),
		CheckpointLoad: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_load_duration_seconds",
			Help: "Wall time of a checkpoint load.", Buckets: durations}),
		CheckpointSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_size_bytes",
			Help: "Size of the checkpoint files saved.", Buckets: SizeBuckets}),
		ZombiesReaped: prometheus.NewCounter(prometheus.CounterOpts{Name: "zombie_process_cleanup_count",
			Help: "Orphaned kernel processes of a previous run reaped at start."}),
	}
}

func (l *Live) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.ReplaySeconds, l.BacklogBytes, l.BacklogOverflows, l.WebSocketClients,
		l.WebSocketSlowDisconnects, l.CheckpointSave, l.CheckpointLoad, l.CheckpointSize, l.ZombiesReaped}
}

// CheckpointObserver returns what the checkpoint actor reports its work
// to (it implements checkpoint.Observer).
func (l *Live) CheckpointObserver() CheckpointObserver { return CheckpointObserver{l: l} }

// CheckpointObserver feeds the checkpoint histograms. Safe for concurrent
// use; it never blocks.
type CheckpointObserver struct{ l *Live }

// SaveObserved observes a save's wall time and, when it produced a file,
// the file's size.
func (o CheckpointObserver) SaveObserved(d time.Duration, size int64) {
	o.l.CheckpointSave.Observe(d.Seconds())
	if size > 0 {
		o.l.CheckpointSize.Observe(float64(size))
	}
}

// LoadObserved observes a load attempt's wall time, whatever its outcome.
func (o CheckpointObserver) LoadObserved(d time.Duration, _ string) {
	o.l.CheckpointLoad.Observe(d.Seconds())
}

// Log is what the log collector reads (infra/eventlog implements it). Both
// calls are cheap: DiskUsage reads Pebble's in-memory metrics.
type Log interface {
	DiskUsage() uint64
	Stats() eventlog.Stats
}

var (
	descDBSize  = prometheus.NewDesc("persistence_db_size_bytes", "Bytes the event log's files take on disk.", nil, nil)
	descAppend  = prometheus.NewDesc("mcp_jupyter_log_commit_duration_seconds", "Event log group commits (write and fsync): count and total time; the mean append latency is sum/count.", nil, nil)
	descAppends = prometheus.NewDesc("mcp_jupyter_log_appends_total", "Append calls served by the event log.", nil, nil)
	descWritten = prometheus.NewDesc("mcp_jupyter_log_events_written_total", "Events written to the event log by this process.", nil, nil)
)

// logCollector reads the log's own counters at scrape time.
type logCollector struct{ log Log }

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDBSize
	ch <- descAppend
	ch <- descAppends
	ch <- descWritten
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.log.Stats()
	ch <- prometheus.MustNewConstMetric(descDBSize, prometheus.GaugeValue, float64(c.log.DiskUsage()))
	ch <- prometheus.MustNewConstSummary(descAppend, st.Commits, st.CommitLatency.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(descAppends, prometheus.CounterValue, float64(st.Appends))
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(st.Events))
}
