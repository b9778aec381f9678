package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// appPlotlyJS is the plotly.js the MCP Apps execution view inlines: Debian's
// python3-plotly (infra/jupyter/debian-packages.txt), the same file the
// console serves at /ui/vendor/plotly.js. Absent: figures show their image.
const appPlotlyJS = "/usr/share/python3-plotly/plotly.js"

// appView is the MCP Apps view of execute and get_execution
// (docs/console.md "MCP Apps"): the console's renderer, built once per
// resources/read (hosts read it once per session and cache it).
func appView() *mcpserver.AppView {
	return &mcpserver.AppView{HTML: func() ([]byte, error) { return console.AppHTML(appPlotlyJS) }}
}
