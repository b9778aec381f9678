package main

import "github.com/mcp-jupyter/mcp-jupyter/infra/console"

// consoleReplay is the console's past: the server's own replay of the log
// (events_replay.go). Owned by helper consolethen.
func (c *core) consoleReplay() console.Replayer { return nil }
