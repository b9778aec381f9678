package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
)

// consoleHandler builds the web console (infra/console) on the ready core:
// its reads and commands go through the MCP edge's backend, so a person's
// token is checked exactly as an agent's (console_now.go, console_steer.go),
// and its past through the server's own replay (console_then.go). Called
// once, when the first request needs it. Owned by helper consolesrv.
func (c *core) consoleHandler() *console.Handler {
	return console.New(console.Options{
		Replay: c.consoleReplay(),
		Logger: c.logger.With("component", "console"),
	})
}
