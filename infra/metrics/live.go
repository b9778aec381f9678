package metrics

import (
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// Live holds the figures that are not facts in the log. The components that
// know a figure are handed *Live as a small observer interface they declare
// themselves (ws.Observer, backlog.Observer) or calls it directly, so none of them imports
// this package and nothing is global. Every method is safe for concurrent
// use and costs an atomic operation: it may be called on hot paths.
//
// Who feeds what (wired in cmd/mcp-jupyter):
//
//	mcp_jupyter_replay_duration_seconds          ObserveReplay            core.open, once the read models are ready
//	mcp_jupyter_iopub_backlog_bytes              Backlog().Held           projections/backlog, on every apply/restore
//	mcp_jupyter_iopub_backlog_overflows_total    Backlog().Evicted        projections/backlog, when its bound evicts
//	mcp_jupyter_websocket_clients                WebSocket().ClientJoined infra/ws hub, per connection (and ClientLeft)
//	mcp_jupyter_websocket_slow_disconnects_total WebSocket().SlowConsumerClosed  infra/ws, on a 4008 close
//	checkpoint_save_duration_seconds             CheckpointObserver()     the checkpoint actor, per save (and checkpoint_size_bytes)
//	checkpoint_load_duration_seconds             CheckpointObserver()     the checkpoint actor, per load attempt
//	zombie_process_cleanup_count                 ZombiesReaped            core.open, after reaping orphans
type Live struct {
	replaySeconds    prometheus.Gauge
	backlogBytes     prometheus.Gauge
	backlogOverflows prometheus.Counter
	wsClients        prometheus.Gauge
	wsSlow           prometheus.Counter
	checkpointSave   prometheus.Histogram
	checkpointLoad   prometheus.Histogram
	checkpointSize   prometheus.Histogram
	zombiesReaped    prometheus.Counter
}

// DurationBuckets are the upper bounds (seconds) of the checkpoint duration
// histograms.
var DurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newLive() *Live {
	return &Live{
		replaySeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_replay_duration_seconds",
			Help: "Time the last start took to replay the event log until the read models were ready."}),
		backlogBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_iopub_backlog_bytes",
			Help: "Bytes held in the IOPub backlog (every kernel's ring of recent output)."}),
		backlogOverflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcp_jupyter_iopub_backlog_overflows_total",
			Help: "IOPub messages the backlog's bound pushed out (readers further behind catch up from the log)."}),
		wsClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_jupyter_websocket_clients",
			Help: "WebSocket subscribers connected."}),
		wsSlow: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcp_jupyter_websocket_slow_disconnects_total",
			Help: "WebSocket subscribers disconnected for falling behind (close code 4008)."}),
		checkpointSave: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_save_duration_seconds",
			Help: "Wall time of a checkpoint save, observed for every save the checkpoint actor started, whatever its outcome.", Buckets: DurationBuckets}),
		checkpointLoad: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_load_duration_seconds",
			Help: "Wall time of a checkpoint load attempt, whatever its outcome (a refused tampered file is an attempt too; refusals are also counted by mcp_jupyter_checkpoints_rejected_total).", Buckets: DurationBuckets}),
		checkpointSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkpoint_size_bytes",
			Help: "Size of each checkpoint file saved by this process.", Buckets: SizeBuckets}),
		zombiesReaped: prometheus.NewCounter(prometheus.CounterOpts{Name: "zombie_process_cleanup_count",
			Help: "Orphaned kernel processes of a previous run reaped at start."}),
	}
}

func (l *Live) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.replaySeconds, l.backlogBytes, l.backlogOverflows, l.wsClients,
		l.wsSlow, l.checkpointSave, l.checkpointLoad, l.checkpointSize, l.zombiesReaped}
}

// ObserveReplay records how long the start took to replay the log until
// the read models were ready.
func (l *Live) ObserveReplay(d time.Duration) { l.replaySeconds.Set(d.Seconds()) }

// ZombiesReaped adds n orphaned kernel processes reaped at start.
func (l *Live) ZombiesReaped(n int) {
	if n > 0 {
		l.zombiesReaped.Add(float64(n))
	}
}

// Backlog returns the observer to hand projections/backlog
// (backlog.Options.Observer).
func (l *Live) Backlog() BacklogObserver { return BacklogObserver{l} }

// BacklogObserver feeds mcp_jupyter_iopub_backlog_bytes and
// mcp_jupyter_iopub_backlog_overflows_total; it implements backlog.Observer.
type BacklogObserver struct{ l *Live }

// Held sets the bytes the IOPub backlog holds now, over all kernels.
func (o BacklogObserver) Held(bytes int) { o.l.backlogBytes.Set(float64(bytes)) }

// Evicted adds n messages the backlog's bound pushed out.
func (o BacklogObserver) Evicted(n int) {
	if n > 0 {
		o.l.backlogOverflows.Add(float64(n))
	}
}

// WebSocket returns the observer to hand the WebSocket hub
// (ws.Options.Observer).
func (l *Live) WebSocket() WebSocketObserver { return WebSocketObserver{l} }

// WebSocketObserver feeds mcp_jupyter_websocket_clients and
// mcp_jupyter_websocket_slow_disconnects_total; it implements ws.Observer.
type WebSocketObserver struct{ l *Live }

// ClientJoined: one more subscriber connected.
func (o WebSocketObserver) ClientJoined() { o.l.wsClients.Inc() }

// ClientLeft: a subscriber's connection ended (the hub calls it exactly
// once per ClientJoined).
func (o WebSocketObserver) ClientLeft() { o.l.wsClients.Dec() }

// SlowConsumerClosed: a subscriber was closed with 4008 for falling behind.
func (o WebSocketObserver) SlowConsumerClosed() { o.l.wsSlow.Inc() }

// CheckpointObserver returns what the checkpoint actor reports its work
// to (it implements checkpoint.Observer).
func (l *Live) CheckpointObserver() CheckpointObserver { return CheckpointObserver{l: l} }

// CheckpointObserver feeds the checkpoint histograms. Every save and every
// load the actor started is one duration sample, whatever its outcome.
type CheckpointObserver struct{ l *Live }

// SaveObserved observes a save's wall time and, when it produced a file,
// the file's size.
func (o CheckpointObserver) SaveObserved(d time.Duration, size int64) {
	o.l.checkpointSave.Observe(d.Seconds())
	if size > 0 {
		o.l.checkpointSize.Observe(float64(size))
	}
}

// LoadObserved observes a load attempt's wall time, whatever its outcome.
func (o CheckpointObserver) LoadObserved(d time.Duration, _ string) {
	o.l.checkpointLoad.Observe(d.Seconds())
}

// Log is what the log collector reads (infra/eventlog implements it). Every
// call is cheap: DiskUsage reads Pebble's in-memory metrics, Space the
// level its monitor keeps current; the collector adds one statfs of Dir
// per scrape.
type Log interface {
	DiskUsage() uint64
	Stats() eventlog.Stats
	Space() eventlog.Space
	Dir() string
}

var (
	descDBSize  = prometheus.NewDesc("persistence_db_size_bytes", "Bytes the event log's files take on disk.", nil, nil)
	descAppend  = prometheus.NewDesc("mcp_jupyter_log_commit_duration_seconds", "Event log group commits (write and fsync): count and total time; the mean append latency is sum/count.", nil, nil)
	descAppends = prometheus.NewDesc("mcp_jupyter_log_appends_total", "Append calls served by the event log.", nil, nil)
	descWritten = prometheus.NewDesc("mcp_jupyter_log_events_written_total", "Events written to the event log by this process.", nil, nil)
	// NB: the disk figures are the data dir's volume as the server sees it
	// (the file system holding the event log); the level is the log's own
	// state (see docs/operations.md, "Disk full").
	descDiskFree  = prometheus.NewDesc("mcp_jupyter_disk_free_bytes", "Bytes available to the server on the file system of the data dir (statfs at scrape; root's reserve not counted).", nil, nil)
	descDiskSize  = prometheus.NewDesc("mcp_jupyter_disk_size_bytes", "Size of the file system of the data dir.", nil, nil)
	descDiskMin   = prometheus.NewDesc("mcp_jupyter_disk_min_free_bytes", "Free space the server keeps (--min-free-disk; 0: the check is off).", nil, nil)
	descDiskLevel = prometheus.NewDesc("mcp_jupyter_disk_full_level", "Disk-full state of the event log: 0 ok, 1 new work refused (below --min-free-disk), 2 output of running executions dropped too (below 3/4 of it), 3 nothing more written (below 1/4 of it).", nil, nil)
)

// logCollector reads the log's own counters at scrape time.
type logCollector struct{ log Log }

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDBSize
	ch <- descAppend
	ch <- descAppends
	ch <- descWritten
	ch <- descDiskFree
	ch <- descDiskSize
	ch <- descDiskMin
	ch <- descDiskLevel
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.log.Stats()
	ch <- prometheus.MustNewConstMetric(descDBSize, prometheus.GaugeValue, float64(c.log.DiskUsage()))
	ch <- prometheus.MustNewConstSummary(descAppend, st.Commits, st.CommitLatency.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(descAppends, prometheus.CounterValue, float64(st.Appends))
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(st.Events))
	sp := c.log.Space()
	ch <- prometheus.MustNewConstMetric(descDiskMin, prometheus.GaugeValue, float64(sp.Min))
	ch <- prometheus.MustNewConstMetric(descDiskLevel, prometheus.GaugeValue, float64(sp.Level))
	// NB: a failed statfs leaves the two series out of this scrape rather
	// than reporting a full (or an empty) disk.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.log.Dir(), &fs); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(fs.Bavail*uint64(fs.Bsize)))
		ch <- prometheus.MustNewConstMetric(descDiskSize, prometheus.GaugeValue, float64(fs.Blocks*uint64(fs.Bsize)))
	}
}
