package mcpserver

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// AssetInfo describes one stored asset for list_assets.
type AssetInfo struct {
	URI       string        `json:"uri"`
	MIME      string        `json:"mime"`
	Size      int64         `json:"size"`
	Origins   []AssetOrigin `json:"origins"`
	ExpiresAt time.Time     `json:"expires_at"`
	HTTPPath  string        `json:"http_path"`
}

// AssetBackend lists stored assets (cmd/mcp-jupyter adapts the leases read
// model). ListAssets returns the assets produced by the kernel and/or the
// execution (empty: any), in the order they were stored. It is called
// concurrently.
type AssetBackend interface {
	ListAssets(ctx context.Context, kernelID, executionID string) ([]AssetInfo, error)
}

// AddAssetTools registers list_assets.
func (s *Server) AddAssetTools(b AssetBackend) {
	s.mcp.AddTool(mcp.NewTool("list_assets",
		mcp.WithDescription("List the stored outputs (asset:// resources: full texts, HTML, SVG, Plotly figures, large images) "+
			"of a kernel or an execution, with MIME type, size and when their lease expires. Read one with resources/read; "+
			"every read renews its lease."),
		mcp.WithString("kernel", mcp.Description("Optional: only assets produced by this kernel_id.")),
		mcp.WithString("execution_id", mcp.Description("Optional: only assets produced by this execution.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		kernel := a.str("kernel", false, "a kernel_id from list_kernels")
		exec := a.str("execution_id", false, "an execution_id from execute")
		if a.err != nil {
			return failed("list assets", a.err), nil
		}
		list, err := b.ListAssets(ctx, kernel, exec)
		if err != nil {
			return failed("list assets", err), nil
		}
		if list == nil {
			list = []AssetInfo{}
		}
		return structured(map[string]any{"assets": list, "count": len(list)}), nil
	})
}
