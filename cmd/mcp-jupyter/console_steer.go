package main

import "github.com/mcp-jupyter/mcp-jupyter/infra/console"

// consoleSteerer is the console's steering on the MCP backend.
func (c *core) consoleSteerer() console.Steerer { return nil }
