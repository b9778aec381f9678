package metrics

import "github.com/prometheus/client_golang/prometheus"

var descReady = prometheus.NewDesc("mcp_jupyter_ready",
	"1 while /readyz answers 200 (replay done, log writable, disk not full, NATS up, kernels launchable, not shutting down), 0 otherwise: /readyz says why.", nil, nil)

// ReadyCollector reports whether the server is ready, read at each scrape
// from the state the probes answer from (nothing is fed on a hot path).
type ReadyCollector struct{ ready func() bool }

// NewReadyCollector returns the collector to register beside New's; ready
// must be cheap and safe for concurrent use.
func NewReadyCollector(ready func() bool) *ReadyCollector { return &ReadyCollector{ready: ready} }

// Describe implements prometheus.Collector.
func (c *ReadyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descReady }

// Collect implements prometheus.Collector.
func (c *ReadyCollector) Collect(ch chan<- prometheus.Metric) {
	v := 0.0
	if c.ready() {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, v)
}
