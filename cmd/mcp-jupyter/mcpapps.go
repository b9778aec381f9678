package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// appView is the MCP Apps view of execute and get_execution
// (docs/console.md "MCP Apps"): the console's renderer with --plotly-js
// inlined (the file the console serves at /ui/vendor/plotly.js; absent:
// figures show their image), built once and kept while that file is
// unchanged (hosts read it once per session).
func appView(plotlyJS string) *mcpserver.AppView {
	doc := &console.AppDocument{PlotlyJS: plotlyJS}
	return &mcpserver.AppView{HTML: doc.HTML}
}
