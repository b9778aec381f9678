package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// clusterRoute sends what concerns a kernel to the node that owns it
// (docs/cluster.md, "Routing"): MCP tool calls as one NATS request/reply
// (the mcpserver.Forwarder), HTTP requests through a tunnel
// (cluster_http.go). Until openRouting ran (cluster mode only) it
// forwards nothing.
type clusterRoute struct {
	c     *core
	state atomic.Pointer[routeState]
}

// routeState is what openRouting wires in.
type routeState struct {
	router *natsbus.Router
	// owner is the kernel's owner node (O's Owners.Owner); false: no
	// node holds it (this node answers, "unknown kernel").
	owner func(kernel string) (node string, ok bool)
	// place picks the node a new kernel starts on (O's placement); ""
	// or this node: here.
	place func(spec string) string
	// lease is the ownership lease, named in the refusals.
	lease time.Duration
	// tunnels serves the HTTP requests other nodes route here
	// (cluster_http.go).
	tunnels *http.Server
	// served is closed when the tunnel listener's Serve returned.
	served <-chan struct{}
}

// Tools whose kernel argument names the kernel they act on; those whose
// execution_id does. The others (lists, kernelspecs, checkpoints by name,
// assets, notebooks) run where they are received: the history they read
// is the whole cluster's (imported), and notebooks are this node's files.
var (
	kernelTools = map[string]bool{"execute": true, "interrupt_kernel": true, "restart_kernel": true,
		"shutdown_kernel": true, "share_kernel": true, "save_environment": true, "load_environment": true}
	executionTools = map[string]bool{"get_execution": true, "cancel_execution": true, "send_input": true}
)

// forwarder is the MCP edge's Forwarder (a typed nil would not read as
// nil to the edge).
func (c *core) forwarder() mcpserver.Forwarder {
	if c.route == nil {
		return nil
	}
	return c.route
}

// openRouting serves this node's routed calls and tunnels and starts
// forwarding as node: owner and place are the ownership's (cluster_owners.go).
func (c *core) openRouting(nb *natsbus.Server, node string, owner func(string) (string, bool), place func(string) string, lease time.Duration) error {
	r, err := natsbus.NewRouter(nb, node, c.logger.With("component", "cluster"))
	if err != nil {
		return err
	}
	if err := r.ServeTools(c.serveRoutedTool); err != nil {
		_ = r.Close(context.Background())
		return err
	}
	tunnels, served, err := c.serveTunnels(r)
	if err != nil {
		_ = r.Close(context.Background())
		return err
	}
	c.route.state.Store(&routeState{router: r, owner: owner, place: place, lease: lease, tunnels: tunnels, served: served})
	return nil
}

// closeRouting stops serving routed calls (waiting for those running,
// bounded by ctx).
func (c *core) closeRouting(ctx context.Context) error {
	if c.route == nil {
		return nil
	}
	st := c.route.state.Swap(nil)
	if st == nil {
		return nil
	}
	// NB: Shutdown leaves hijacked connections (WebSockets) alone: the
	// router's Close ends their tunnels.
	err := errors.Join(st.tunnels.Shutdown(ctx), st.router.Close(ctx))
	select {
	case <-st.served:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("wait for the tunnel listener to stop: %w", ctx.Err()))
	}
	return err
}

// serveRoutedTool runs a call another node received for a kernel this
// node owns, as the principal that node authenticated.
func (c *core) serveRoutedTool(ctx context.Context, call natsbus.ToolCall) (natsbus.ToolReply, error) {
	p := call.Principal
	if !p.Expires.IsZero() && time.Now().After(p.Expires) {
		return natsbus.ToolReply{}, fmt.Errorf("the credentials of principal %q expired at %s; nothing was run: sign in again", p.Name, p.Expires.Format(time.RFC3339))
	}
	c.mu.RLock()
	srv := c.mcp
	c.mu.RUnlock()
	if srv == nil {
		return natsbus.ToolReply{}, errors.New("this node is still starting; nothing was run: retry in a moment")
	}
	res, err := srv.CallLocal(ctx, p, call.Tool, call.Args, call.Client)
	if err != nil {
		return natsbus.ToolReply{}, err
	}
	return natsbus.ToolReply{Result: res}, nil
}

// node is where call must run: "" or this node's name for here.
func (r *clusterRoute) node(st *routeState, call mcpserver.ForwardCall) string {
	str := func(name string) string { s, _ := call.Args[name].(string); return s }
	switch {
	case call.Tool == "start_kernel":
		// NB: a kernel bound to a notebook starts here: notebooks are this
		// node's files, and run_cell/run_all run where they are received.
		if st.place == nil || str("notebook") != "" {
			return ""
		}
		spec := str("kernelspec")
		if spec == "" {
			spec = "python3"
		}
		return st.place(spec)
	case kernelTools[call.Tool]:
		if n, ok := st.owner(str("kernel")); ok {
			return n
		}
	case executionTools[call.Tool]:
		if k := r.kernelOfExecution(str("execution_id")); k != "" {
			if n, ok := st.owner(k); ok {
				return n
			}
		}
	}
	return ""
}

// kernelOfExecution is the kernel an execution ran on, from this node's
// read model (which holds the whole cluster's history); "" when unknown.
func (r *clusterRoute) kernelOfExecution(id string) string {
	if id == "" {
		return ""
	}
	r.c.mu.RLock()
	xm := r.c.execs
	r.c.mu.RUnlock()
	if xm == nil {
		return ""
	}
	x, ok := xm.Get(id)
	if !ok {
		return ""
	}
	return x.KernelID
}

// routedCallBound bounds a routed call that names no wait of its own
// (timeout_s, wait_s: those get it plus a minute).
const routedCallBound = 2 * time.Minute

// Forward implements mcpserver.Forwarder.
func (r *clusterRoute) Forward(ctx context.Context, call mcpserver.ForwardCall) (json.RawMessage, bool, error) {
	st := r.state.Load()
	if st == nil {
		return nil, false, nil
	}
	node := r.node(st, call)
	if node == "" || node == st.router.Node() {
		return nil, false, nil
	}
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	params, client, err := call.Encode()
	if err != nil {
		return nil, false, err
	}
	// NB: bounded by what the call itself may wait (plus a margin): a call
	// sent while this node still saw a dead owner's subscription gets no
	// reply at all, and must not hang the agent.
	bound := routedCallBound
	for _, name := range []string{"timeout_s", "wait_s"} {
		if v, ok := call.Args[name].(float64); ok && v > 0 && v < 24*3600 {
			bound = max(bound, time.Duration(v*float64(time.Second))+time.Minute)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	rep, err := st.router.CallTool(ctx, node, natsbus.ToolCall{Principal: p, Tool: call.Tool, Args: params, Client: client})
	if err != nil {
		return nil, false, r.explain(st, node, call, err)
	}
	return rep.Result, true, nil
}

// explain is a routed call's failure as the agent reads it: which node,
// whether anything ran, what to do.
func (r *clusterRoute) explain(st *routeState, node string, call mcpserver.ForwardCall, err error) error {
	var remote *natsbus.RemoteError
	if errors.As(err, &remote) {
		return fmt.Errorf("on node %s (the kernel's owner): %s", node, remote.Msg)
	}
	what := "the kernel's owner"
	if call.Tool == "start_kernel" {
		what = "the node chosen for the new kernel"
	}
	var unreachable *natsbus.NodeUnreachableError
	if errors.As(err, &unreachable) && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("node %s (%s) did not answer in time (%v); the call may still have run there: "+
			"check with list_executions or get_execution before running it again", node, what, err)
	}
	if errors.As(err, &unreachable) {
		return fmt.Errorf("node %s (%s) cannot be reached from node %s: %v. Nothing was run. Retry in a few seconds: "+
			"if node %s is down, another node takes its kernels over within %s (the ownership lease), under the same ids",
			node, what, st.router.Node(), unreachable.Err, node, st.lease)
	}
	return fmt.Errorf("route to node %s (%s): %w", node, what, err)
}
