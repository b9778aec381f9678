package main

import (
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
)

// registerReadiness exports mcp_jupyter_ready: what /readyz answers now,
// read from the probes' state (probestate.go), so an alert can say "not
// ready for 10 minutes" without probing the pod itself.
func (c *core) registerReadiness() error {
	ready := func() bool { return c.probes.ready(time.Now()).Status == "ready" }
	if err := c.reg.Register(metrics.NewReadyCollector(ready)); err != nil {
		return fmt.Errorf("register readiness metric: %w", err)
	}
	return nil
}
