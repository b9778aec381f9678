package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Forwarder decides, for each tool call, whether another node of the
// cluster must run it (the kernel's owner), and runs it there. It sees
// every call after the caller's scope and arguments were checked here,
// before the policy and the handler: those run on the node that runs the
// call (CallLocal), as the same principal.
type Forwarder interface {
	// Forward runs call on another node and returns its result's JSON as
	// that node encoded it (handled true), or returns handled false for
	// this node to run it. An error is the caller's tool error: it says
	// which node could not be reached and what to do.
	Forward(ctx context.Context, call ForwardCall) (result json.RawMessage, handled bool, err error)
}

// ForwardCall is one tool call as the Forwarder sees it.
type ForwardCall struct {
	Tool string
	// Args are the call's arguments under their documented names
	// (aliases already resolved). Read only.
	Args map[string]any
	req  mcp.CallToolRequest
	ctx  context.Context
}

// Encode is what another node needs to run the call: the tools/call
// params as the client sent them (with the arguments canonical), and what
// this node knows of the client (its session's capabilities and name).
func (c ForwardCall) Encode() (params, client json.RawMessage, err error) {
	if params, err = json.Marshal(c.req.Params); err != nil {
		return nil, nil, fmt.Errorf("encode the call: %w", err)
	}
	rc := routedClient{CanAsk: canAsk(c.ctx), Apps: clientRendersApps(c.ctx, c.req), By: by(c.ctx)}
	if client, err = json.Marshal(rc); err != nil {
		return nil, nil, fmt.Errorf("encode the client: %w", err)
	}
	return params, client, nil
}

// routedClient is the MCP client of a call another node received: what
// the node running it cannot learn from a session of its own.
type routedClient struct {
	CanAsk bool   `json:"can_ask,omitempty"`
	Apps   bool   `json:"apps,omitempty"`
	By     string `json:"by,omitempty"`
}

type routedClientKey struct{}

func routedFrom(ctx context.Context) (routedClient, bool) {
	rc, ok := ctx.Value(routedClientKey{}).(routedClient)
	return rc, ok
}

// forward is the Forwarder's middleware, inside requireScope and
// checkArguments, outside the policy.
func (s *Server) forward(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f := s.opts.Forward
		if f == nil {
			return next(ctx, req)
		}
		if _, routed := routedFrom(ctx); routed {
			return next(ctx, req) // NB: CallLocal: never forwarded twice
		}
		m, _ := req.Params.Arguments.(map[string]any)
		raw, handled, err := f.Forward(ctx, ForwardCall{Tool: req.Params.Name, Args: m, req: req, ctx: ctx})
		if err != nil {
			return mcp.NewToolResultError(req.Params.Name + ": " + err.Error()), nil
		}
		if !handled {
			return next(ctx, req)
		}
		res, err := mcp.ParseCallToolResult(&raw)
		if err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: the owner's reply could not be read (%v); the call may have run there: check with list_executions", req.Params.Name, err)), nil
		}
		return res, nil
	}
}

// CallLocal runs a call another node received and forwarded here, as p:
// the same chain as a call of this node's own clients (scope, arguments,
// policy, handler), without forwarding it again. params and client are
// ForwardCall.Encode's. The result is the CallToolResult's JSON; an
// error means the call was not run (an unknown tool, unreadable params).
func (s *Server) CallLocal(ctx context.Context, p auth.Principal, tool string, params, client json.RawMessage) (_ json.RawMessage, err error) {
	defer func() {
		// NB: as server.WithRecovery does for this node's own clients: a
		// handler's panic is that call's error, not the node's end.
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in tool %s: %v", tool, v)
		}
	}()
	var req mcp.CallToolRequest
	req.Method = string(mcp.MethodToolsCall)
	if err := json.Unmarshal(params, &req.Params); err != nil {
		return nil, fmt.Errorf("read the routed call's params: %w", err)
	}
	if req.Params.Name != tool {
		return nil, fmt.Errorf("the routed call names tool %q and carries params of %q", tool, req.Params.Name)
	}
	st := s.mcp.GetTool(tool)
	if st == nil {
		return nil, fmt.Errorf("no tool %q on this node (a node of another version?)", tool)
	}
	var rc routedClient
	if len(client) > 0 {
		if err := json.Unmarshal(client, &rc); err != nil {
			return nil, fmt.Errorf("read the routed call's client: %w", err)
		}
	}
	ctx = context.WithValue(auth.WithPrincipal(ctx, p), routedClientKey{}, rc)
	h := requireScope(s.checkArguments(s.forward(s.applyPolicy(st.Handler))))
	res, err := h(ctx, req)
	if err != nil {
		// NB: as mcp-go answers a handler's error: a tool error the agent reads.
		res = mcp.NewToolResultError(err.Error())
	}
	if res == nil {
		return nil, errors.New("the tool returned no result")
	}
	return json.Marshal(res)
}
