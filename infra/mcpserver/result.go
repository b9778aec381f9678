package mcpserver

import (
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// failed is a tool failure the agent should act on: what was being done,
// what was wrong, and (in the backend's or our text) what to do.
func failed(action string, err error) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("%s: %v", action, err))
}

// structured is a result whose text is the JSON of v, also sent as
// structuredContent. v must marshal to a JSON object.
func structured(v any) *mcp.CallToolResult {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return mcp.NewToolResultError(fmt.Sprintf("encode result: %v (this is a server bug; please report it)", err))
	}
	return mcp.NewToolResultStructured(v, string(b))
}
