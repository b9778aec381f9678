package metrics

import "github.com/prometheus/client_golang/prometheus"

// PoolFigures is one kernelspec's pool of pre-started kernels (--prewarm)
// as a scrape sees it.
type PoolFigures struct {
	Spec   string
	Target int
	Ready  int
	// Handouts, Misses and Failures only grow: kernels handed over, starts
	// that found none ready, pre-starts that failed (or kernels that died
	// idle).
	Handouts, Misses, Failures uint64
	// BackingOff: the last pre-start failed and the pool waits before the
	// next one (a broken kernelspec shows here and in the logs).
	BackingOff bool
	// IdleRSSBytes is the resident memory of the ready kernels.
	IdleRSSBytes int64
}

var (
	poolTarget   = prometheus.NewDesc("mcp_jupyter_pool_target_kernels", "Kernels --prewarm keeps ready for this kernelspec.", []string{"kernelspec"}, nil)
	poolReady    = prometheus.NewDesc("mcp_jupyter_pool_ready_kernels", "Pre-started kernels ready to be handed out now.", []string{"kernelspec"}, nil)
	poolHandouts = prometheus.NewDesc("mcp_jupyter_pool_handouts_total", "start_kernel calls answered with a pre-started kernel.", []string{"kernelspec"}, nil)
	poolMisses   = prometheus.NewDesc("mcp_jupyter_pool_misses_total", "start_kernel calls of a pooled kernelspec that found no kernel ready (a fresh one was started).", []string{"kernelspec"}, nil)
	poolFailures = prometheus.NewDesc("mcp_jupyter_pool_start_failures_total", "Pre-starts that failed, and pre-started kernels that died while idle.", []string{"kernelspec"}, nil)
	poolBackoff  = prometheus.NewDesc("mcp_jupyter_pool_backing_off", "1 while the pool waits to retry a kernelspec whose last pre-start failed (see the logs for why).", []string{"kernelspec"}, nil)
	poolRSS      = prometheus.NewDesc("mcp_jupyter_pool_idle_rss_bytes", "Resident memory of the ready pre-started kernels: what the pool costs while unused.", []string{"kernelspec"}, nil)
)

// PoolCollector reports the kernel pool's figures, read at each scrape
// from figures (the pool's own counters: nothing is fed on a hot path).
type PoolCollector struct{ figures func() []PoolFigures }

// NewPoolCollector returns the collector to register beside New's.
func NewPoolCollector(figures func() []PoolFigures) *PoolCollector {
	return &PoolCollector{figures: figures}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTarget, poolReady, poolHandouts, poolMisses, poolFailures, poolBackoff, poolRSS} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.figures() {
		backoff := 0.0
		if f.BackingOff {
			backoff = 1
		}
		ch <- prometheus.MustNewConstMetric(poolTarget, prometheus.GaugeValue, float64(f.Target), f.Spec)
		ch <- prometheus.MustNewConstMetric(poolReady, prometheus.GaugeValue, float64(f.Ready), f.Spec)
		ch <- prometheus.MustNewConstMetric(poolHandouts, prometheus.CounterValue, float64(f.Handouts), f.Spec)
		ch <- prometheus.MustNewConstMetric(poolMisses, prometheus.CounterValue, float64(f.Misses), f.Spec)
		ch <- prometheus.MustNewConstMetric(poolFailures, prometheus.CounterValue, float64(f.Failures), f.Spec)
		ch <- prometheus.MustNewConstMetric(poolBackoff, prometheus.GaugeValue, backoff, f.Spec)
		ch <- prometheus.MustNewConstMetric(poolRSS, prometheus.GaugeValue, float64(f.IdleRSSBytes), f.Spec)
	}
}
