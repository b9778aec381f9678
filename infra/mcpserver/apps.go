package mcpserver

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// MCP Apps (the io.modelcontextprotocol/ui extension, specification
// 2026-01-26): execute and get_execution name a ui:// resource in their
// tools/list _meta; a host that renders MCP Apps reads that resource (an
// HTML document) once, shows it in a sandboxed frame beside the tool call and
// hands it each call's result over postMessage. The view is the console's
// own output renderer (infra/console AppHTML); what it draws comes from the
// result alone (the host's frame has no token and no network).
const (
	// AppExtension is the extension id clients and servers advertise.
	AppExtension = "io.modelcontextprotocol/ui"
	// AppResourceURI is the execution view.
	AppResourceURI = "ui://mcp-jupyter/execution"
	// AppMIMEType is the only content type the specification defines.
	AppMIMEType = "text/html;profile=mcp-app"
	// AppResultMetaKey names, in a CallToolResult's _meta, the raw outputs
	// the view renders (see appResultData).
	AppResultMetaKey = "io.github.mcp-jupyter/execution"
	// appLegacyToolMetaKey is the flat key of the spec's drafts, still read
	// by older hosts (deprecated by the spec; cheap to keep).
	appLegacyToolMetaKey = "ui/resourceUri"
)

// AppView is the MCP Apps execution view: Options.App.
type AppView struct {
	// HTML returns the view's self-contained document. Called on each
	// resources/read of AppResourceURI (hosts read it once and cache it).
	HTML func() ([]byte, error)
}

// appServerOptions advertises the extension when the view is configured.
func appServerOptions(v *AppView) []server.ServerOption {
	if v == nil || v.HTML == nil {
		return nil
	}
	// NB: the server's settings object is empty: the spec defines settings
	// for clients (mimeTypes) only.
	return []server.ServerOption{server.WithExtensions(map[string]any{AppExtension: map[string]any{}})}
}

// withApp links tool to the execution view in its _meta (the spec's
// _meta.ui.resourceUri and the drafts' flat "ui/resourceUri"). Without a
// view, tool is returned unchanged.
func (s *Server) withApp(tool mcp.Tool) mcp.Tool {
	if s.opts.App == nil || s.opts.App.HTML == nil {
		return tool
	}
	if tool.Meta == nil {
		tool.Meta = &mcp.Meta{AdditionalFields: map[string]any{}}
	}
	if tool.Meta.AdditionalFields == nil {
		tool.Meta.AdditionalFields = map[string]any{}
	}
	tool.Meta.AdditionalFields["ui"] = map[string]any{"resourceUri": AppResourceURI}
	tool.Meta.AdditionalFields[appLegacyToolMetaKey] = AppResourceURI
	return tool
}

// addAppResource registers the execution view.
func (s *Server) addAppResource() {
	if s.opts.App == nil || s.opts.App.HTML == nil {
		return
	}
	res := mcp.NewResource(AppResourceURI, "Execution view",
		mcp.WithResourceTitle("mcp-jupyter execution"),
		mcp.WithResourceDescription("MCP Apps view of an execute / get_execution result: its outputs as a notebook shows them "+
			"(text with colours, tracebacks, images, HTML in a sandboxed frame, Plotly figures interactive)."),
		mcp.WithMIMEType(AppMIMEType))
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"ui": appResourceUIMeta()}}
	s.mcp.AddResource(res, func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		html, err := s.opts.App.HTML()
		if err != nil {
			return nil, fmt.Errorf("build the execution view: %w", err)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{
			URI: AppResourceURI, MIMEType: AppMIMEType, Text: string(html),
			Meta: map[string]any{"ui": appResourceUIMeta()},
		}}, nil
	})
}

// appResourceUIMeta is the view's _meta.ui: no external origin at all (every
// script and style is inline, every output comes in the tool result), and a
// border, as a notebook cell has.
func appResourceUIMeta() map[string]any {
	return map[string]any{
		"csp":           map[string]any{"connectDomains": []string{}, "resourceDomains": []string{}},
		"prefersBorder": true,
	}
}

// clientRendersApps reports whether the caller advertised the MCP Apps
// extension: per request (protocol 2026-07-28 carries the capabilities in
// _meta) or at initialize (earlier revisions, kept by the session).
func clientRendersApps(ctx context.Context, req mcp.CallToolRequest) bool {
	if req.Params.Meta != nil {
		if caps := req.Params.Meta.ClientCapabilities(); caps != nil {
			_, ok := caps.Extensions[AppExtension]
			return ok
		}
	}
	if rc, ok := routedFrom(ctx); ok {
		return rc.Apps // the client is another node's (forward.go)
	}
	if sess, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		_, ok := sess.GetClientCapabilities().Extensions[AppExtension]
		return ok
	}
	return false
}

// appResultData is what the view needs beyond the text: the execution's
// raw IOPub outputs (the kernel's MIME bundles: Plotly JSON, images, HTML),
// exactly as the console's /ui/api/executions/{id} gives them.
type appResultData struct {
	Execution appExecution `json:"execution"`
	// Outputs after Since, up to the reply's byte bound (More: get_execution
	// since=Cursor has the rest).
	Outputs []queue.Output `json:"outputs"`
	Since   uint64         `json:"since"`
	Cursor  uint64         `json:"cursor"`
	More    bool           `json:"more,omitempty"`
}

type appExecution struct {
	ID             string       `json:"execution_id"`
	KernelID       string       `json:"kernel_id"`
	Status         queue.Status `json:"status"`
	ExecutionCount int          `json:"execution_count,omitempty"`
	Code           string       `json:"code,omitempty"`
	ErrorName      string       `json:"ename,omitempty"`
	ErrorValue     string       `json:"evalue,omitempty"`
	Incomplete     string       `json:"outputs_incomplete,omitempty"`
}

// withAppData puts the outputs the view renders in res._meta, for callers
// that render MCP Apps only: _meta is what the spec keeps out of the
// model's context, and other agents are not sent the outputs twice. The
// outputs are bounded by the reply's (maxFollowBytes).
func (s *Server) withAppData(ctx context.Context, req mcp.CallToolRequest, res *mcp.CallToolResult, f followed, since uint64) *mcp.CallToolResult {
	if res == nil || res.IsError || s.opts.App == nil || !clientRendersApps(ctx, req) {
		return res
	}
	x := f.Execution
	outs := f.Outputs
	if outs == nil {
		outs = []queue.Output{}
	}
	d := appResultData{
		Execution: appExecution{ID: x.ID, KernelID: x.KernelID, Status: x.Status, ExecutionCount: x.ExecutionCount,
			Code: x.Code, ErrorName: x.ErrorName, ErrorValue: x.ErrorValue, Incomplete: x.Incomplete()},
		Outputs: outs, Since: since, Cursor: f.Cursor, More: f.More,
	}
	if res.Meta == nil {
		res.Meta = &mcp.Meta{AdditionalFields: map[string]any{}}
	}
	if res.Meta.AdditionalFields == nil {
		res.Meta.AdditionalFields = map[string]any{}
	}
	res.Meta.AdditionalFields[AppResultMetaKey] = d
	return res
}
