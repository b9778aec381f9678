package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
)

// consoleHandler builds the web console (infra/console) on the ready core:
// its reads and commands go through the MCP edge's backend, so a person's
// token is checked exactly as an agent's (console_now.go, console_steer.go),
// and its past through the server's own replay (console_then.go). Called
// once, when the first request needs it (the core is ready then).
func (c *core) consoleHandler() *console.Handler {
	c.mu.RLock()
	back, runner, lv := c.back, c.runner, c.live
	c.mu.RUnlock()
	src := consoleSource{b: back, applied: runner.Applied}
	if lv != nil {
		src.assets = lv.assets(c)
	}
	return console.New(console.Options{
		Source:   src,
		Steerer:  c.consoleSteerer(),
		Replay:   c.consoleReplay(),
		PlotlyJS: c.cfg.PlotlyJS,
		Logger:   c.logger.With("component", "console"),
	})
}
