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
