package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// appView is the MCP Apps view of execute and get_execution
// (docs/console.md "MCP Apps"): the console's renderer with --plotly-js
// inlined (the file the console serves at /ui/vendor/plotly.js; absent:
// figures show their image), built on each resources/read (hosts read it
// once per session and cache it).
func appView(plotlyJS string) *mcpserver.AppView {
	return &mcpserver.AppView{HTML: func() ([]byte, error) { return console.AppHTML(plotlyJS) }}
}
