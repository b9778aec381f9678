package mcpserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// toolScopes is the one table of which scope each tool needs. A tool the
// caller's scopes do not hold is not listed to it (tools/list) and is
// refused when called anyway. The scope says what kind of act a tool is;
// which kernel it may act on is the backend's check (the kernel's owner
// and shares, cmd/mcp-jupyter/access.go).
//
//   - read: look, change nothing.
//   - execute: run code and author it — start kernels, execute, answer
//     input, interrupt, cancel, and write notebooks (an agent that may run
//     code may edit the cells it runs; its notebooks are in its own root).
//   - manage: a kernel's lifecycle and its saved state — restart, shut down,
//     share, and checkpoints (save, load into a kernel, delete).
//
// NB: a tool missing here is refused to everyone but admins (fail closed),
// and TestEveryToolHasAScope fails until it has an entry.
var toolScopes = map[string]auth.Scope{
	// kernels
	"list_kernelspecs": auth.ScopeRead,
	"list_kernels":     auth.ScopeRead,
	"start_kernel":     auth.ScopeExecute,
	"interrupt_kernel": auth.ScopeExecute,
	"restart_kernel":   auth.ScopeManage,
	"shutdown_kernel":  auth.ScopeManage,
	"share_kernel":     auth.ScopeManage,
	// executions
	"execute":          auth.ScopeExecute,
	"get_execution":    auth.ScopeRead,
	"list_executions":  auth.ScopeRead,
	"cancel_execution": auth.ScopeExecute,
	"send_input":       auth.ScopeExecute,
	// assets
	"list_assets": auth.ScopeRead,
	// checkpoints
	"list_checkpoints":  auth.ScopeRead,
	"save_environment":  auth.ScopeManage,
	"load_environment":  auth.ScopeManage,
	"delete_checkpoint": auth.ScopeManage,
	// notebooks
	"read_notebook":   auth.ScopeRead,
	"create_notebook": auth.ScopeExecute,
	"insert_cell":     auth.ScopeExecute,
	"edit_cell":       auth.ScopeExecute,
	"delete_cell":     auth.ScopeExecute,
	"move_cell":       auth.ScopeExecute,
	"run_cell":        auth.ScopeExecute,
	"run_all":         auth.ScopeExecute,
}

// ToolScope returns the scope a tool needs; a tool with no entry needs
// admin.
func ToolScope(tool string) auth.Scope {
	if s, ok := toolScopes[tool]; ok {
		return s
	}
	return auth.ScopeAdmin
}

// missingScope is the refusal of a tool whose scope p does not hold.
func missingScope(p auth.Principal, tool string, need auth.Scope) string {
	has := p.Scopes.String()
	if has == "" {
		has = "no scope"
	}
	return fmt.Sprintf("%s: refused: this tool needs the %s scope, and principal %q has %s. "+
		"Ask an admin for a token with %s (mcp-jupyter principal add NAME --scopes %s).",
		tool, need, p.Name, has, need, (p.Scopes | need).String())
}

// listableTools is the tools/list filter: only the tools p's scopes allow.
//
// NB: mcp-go runs the filters at call time too, with a list of exactly
// the called tool, and answers a filtered-out call with a bare protocol
// error "tool not found". A one-tool list is therefore passed through:
// the call-time check is requireScope's, which names the missing scope.
// (At list time the list holds every registered tool: ours are always
// more than one.)
func listableTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	if len(tools) == 1 {
		return tools
	}
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil
	}
	out := tools[:0:0]
	for _, t := range tools {
		if p.Scopes.Has(ToolScope(t.Name)) {
			out = append(out, t)
		}
	}
	return out
}

// requireScope checks, at every call, that the caller holds the tool's
// scope. The context already carries the caller (Guard over HTTP, the
// stdio context function), so the backend's kernel checks see who calls.
func requireScope(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := auth.Caller(ctx)
		if err != nil {
			return mcp.NewToolResultError(req.Params.Name + ": " + err.Error()), nil
		}
		if need := ToolScope(req.Params.Name); !p.Scopes.Has(need) {
			return mcp.NewToolResultError(missingScope(p, req.Params.Name, need)), nil
		}
		return next(ctx, req)
	}
}

// resourceCaller refuses resource reads (asset://) without a caller. Reading an asset
// needs the read scope; which assets the caller may read is the asset
// store's check.
func resourceCaller(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		p, err := auth.Caller(ctx)
		if err != nil {
			return nil, err
		}
		if !p.Scopes.Has(auth.ScopeRead) {
			return nil, errors.New(missingScope(p, "resources/read", auth.ScopeRead))
		}
		return next(ctx, req)
	}
}
