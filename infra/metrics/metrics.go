package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is every metric of one server, registered on one registry.
type Metrics struct {
	proj *Projection
	// Live are the figures fed by the components that know them.
	Live *Live
}

// New registers the metrics on reg: the projection's, the log's (when log
// is not nil), the live ones, and the Go runtime and process collectors.
// It fails if any name is taken on reg.
func New(reg prometheus.Registerer, log Log) (*Metrics, error) {
	m := &Metrics{proj: NewProjection(), Live: newLive()}
	cs := append([]prometheus.Collector{m.proj,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})},
		m.Live.collectors()...)
	if log != nil {
		cs = append(cs, logCollector{log: log})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// Projection returns the projection to run with the other read models.
func (m *Metrics) Projection() *Projection { return m.proj }
