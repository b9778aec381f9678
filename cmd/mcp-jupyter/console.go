package main

import (
	"net"
	"net/url"

	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
)

// consoleHandler builds the web console (infra/console) on the ready core:
// its reads and commands go through the MCP edge's backend, so a person's
// token is checked exactly as an agent's (console_now.go, console_steer.go),
// and its past through the server's own replay (console_then.go). Called
// once, when the first request needs it (the core is ready then); the
// core closes it at shutdown.
func (c *core) consoleHandler() *console.Handler {
	c.mu.RLock()
	back, runner, lv := c.back, c.runner, c.live
	c.mu.RUnlock()
	src := consoleSource{b: back, applied: runner.Applied, log: c.log}
	if lv != nil {
		src.assets = lv.assets(c)
		src.resumeBacklog = lv.backlog
	}
	h := console.New(console.Options{
		Source:   src,
		Steerer:  c.consoleSteerer(),
		Replay:   c.consoleReplay(),
		PlotlyJS: c.cfg.PlotlyJS,
		Logger:   c.logger.With("component", "console"),
	})
	c.mu.Lock()
	c.console = h // NB: core.close closes it (its background work)
	c.mu.Unlock()
	return h
}

// consoleURL is the console's address on a server listening on addr,
// with token in ?token= when given (as `jupyter server list` shows its
// URLs): what a person pastes into a browser once; the page drops the
// token from the address bar and keeps it in the tab. A wildcard host is
// shown as localhost. NB: printed to the terminal only, never logged.
func consoleURL(addr, token string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	u := "http://" + host + "/ui/"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}
