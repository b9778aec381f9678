package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	descClusterRoutes = prometheus.NewDesc("mcp_jupyter_cluster_routes",
		"Other nodes of the cluster this node has a NATS route to now (cluster mode only): below the routes configured, a node is down or cut off.", nil, nil)
	descClusterExpected = prometheus.NewDesc("mcp_jupyter_cluster_routes_expected",
		"Other nodes this node expects routes to: the nodes the cluster's replicas need, minus itself.", nil, nil)
)

// ClusterCollector reports the node's routes, read at each scrape from
// the embedded NATS server's live route table (nothing is fed on a hot
// path).
type ClusterCollector struct {
	routes   func() int
	expected int
}

// NewClusterCollector returns the collector to register beside New's in
// cluster mode; routes must be cheap and safe for concurrent use.
func NewClusterCollector(routes func() int, expected int) *ClusterCollector {
	return &ClusterCollector{routes: routes, expected: expected}
}

// Describe implements prometheus.Collector.
func (c *ClusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClusterRoutes
	ch <- descClusterExpected
}

// Collect implements prometheus.Collector.
func (c *ClusterCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descClusterRoutes, prometheus.GaugeValue, float64(c.routes()))
	ch <- prometheus.MustNewConstMetric(descClusterExpected, prometheus.GaugeValue, float64(c.expected))
}

var (
	descHistoryPublished = prometheus.NewDesc("mcp_jupyter_cluster_history_published_total",
		"Records of this node's log sent to the cluster's history stream, repeats after a failure included (cluster mode only).", nil, nil)
	descHistoryConfirmed = prometheus.NewDesc("mcp_jupyter_cluster_history_confirmed_sequence",
		"This node's log sequence up to which its records are in the history stream (acknowledged): behind the log's newest sequence, the other nodes do not have the rest yet.", nil, nil)
	descHistoryOversize = prometheus.NewDesc("mcp_jupyter_cluster_history_oversize_total",
		"Records of this node too large for a NATS message, not published: the other nodes never see them.", nil, nil)
	descHistoryImported = prometheus.NewDesc("mcp_jupyter_cluster_history_imported_total",
		"Records of the other nodes imported into this node's log.", nil, nil)
	descHistoryCorrupt = prometheus.NewDesc("mcp_jupyter_cluster_history_import_corrupt_total",
		"History stream messages the importer could not decode and skipped: a node sends what this one cannot read.", nil, nil)
	descHistoryLost = prometheus.NewDesc("mcp_jupyter_cluster_history_import_lost_total",
		"History stream records deleted (its limits) before this node imported them: this node's answers about the cluster miss them.", nil, nil)
	descRenewFailures = prometheus.NewDesc("mcp_jupyter_cluster_lease_renew_failures_total",
		"Kernel lease renewals that failed (JetStream unreachable or slow): a kernel whose lease is not renewed within the lease time is taken over by another node.", nil, nil)
)

// ClusterWork is what a node's cluster parts counted since they started:
// the history publisher's, the importer's and the ownership's counters
// (Confirmed is a log sequence, not a count).
type ClusterWork struct {
	Published, Confirmed, Oversize uint64
	Imported, Corrupt, Lost        uint64
	RenewFailures                  uint64
}

// ClusterWorkCollector reports ClusterWork, read at each scrape.
type ClusterWorkCollector struct {
	work func() ClusterWork
}

// NewClusterWorkCollector returns the collector of the cluster parts'
// counters; work must be cheap and safe for concurrent use (zero for a
// part not started yet).
func NewClusterWorkCollector(work func() ClusterWork) *ClusterWorkCollector {
	return &ClusterWorkCollector{work: work}
}

// Describe implements prometheus.Collector.
func (c *ClusterWorkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHistoryPublished, descHistoryConfirmed, descHistoryOversize,
		descHistoryImported, descHistoryCorrupt, descHistoryLost, descRenewFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ClusterWorkCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.work()
	ch <- prometheus.MustNewConstMetric(descHistoryConfirmed, prometheus.GaugeValue, float64(w.Confirmed))
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descHistoryPublished, w.Published}, {descHistoryOversize, w.Oversize},
		{descHistoryImported, w.Imported}, {descHistoryCorrupt, w.Corrupt}, {descHistoryLost, w.Lost},
		{descRenewFailures, w.RenewFailures}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
