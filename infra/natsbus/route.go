package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Subjects of the cluster's routing. NB: public API of the cluster's wire:
// nodes of one release must agree on them (docs/cluster.md).
const (
	// routeInbox is the prefix of the routing connection's reply inboxes:
	// under mcpjupyter.> so that no outside client may publish a forged
	// reply there, and denied to their subscriptions (auth.go) so that
	// none reads a tool's result or a tunnel's bytes.
	routeInbox = "mcpjupyter.inbox"
	// DefaultToolTimeout bounds a routed tool call whose context has no
	// deadline.
	DefaultToolTimeout = 15 * time.Minute
	// MaxToolCalls bounds the routed calls one node runs at once; beyond
	// it a call is refused (the caller's node says so) instead of queued
	// without bound.
	MaxToolCalls = 1024
)

// ToolSubject is the subject node serves routed tool calls on.
func ToolSubject(node string) string { return "mcpjupyter.node." + node + ".tool" }

// Headers of a routed tool call. The body is the MCP tools/call params as
// the client sent them (re-encoded once by the entry node), and the reply's
// body the result's JSON as the owner encoded it: neither is decoded on
// the way.
const (
	hdrTool      = "Mcp-Tool"
	hdrPrincipal = "Mcp-Principal"
	hdrClient    = "Mcp-Client"
	hdrDeadline  = "Mcp-Deadline" // Unix ms: the entry node's deadline
	hdrError     = "Mcp-Error"
)

// ToolCall is one tool call routed to the node that must run it.
type ToolCall struct {
	// Principal is who called, as the entry node authenticated them: the
	// owner acts as them (scopes, shares, kernel quota) without seeing
	// their credential.
	Principal auth.Principal
	Tool      string
	// Args is the MCP tools/call params object (arguments, _meta, request
	// state, input responses), JSON.
	Args json.RawMessage
	// Client is what the entry node knows of the MCP client that the
	// owner cannot (its session's capabilities and name), JSON owned by
	// the MCP edge.
	Client json.RawMessage
}

// ToolReply is the owner's answer: the CallToolResult's JSON.
type ToolReply struct {
	Result json.RawMessage
}

// ToolHandler runs a routed call on this node.
type ToolHandler func(ctx context.Context, call ToolCall) (ToolReply, error)

// NodeUnreachableError: no node answered on the node's subject (it is
// down, or cut off from this one), or the call timed out.
type NodeUnreachableError struct {
	Node string
	Err  error
}

func (e *NodeUnreachableError) Error() string {
	return fmt.Sprintf("node %s is unreachable: %v", e.Node, e.Err)
}

func (e *NodeUnreachableError) Unwrap() error { return e.Err }

// RemoteError is an error the owner returned instead of a result (the
// call was not run there, or could not be encoded).
type RemoteError struct {
	Node string
	Msg  string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("node %s: %s", e.Node, e.Msg) }

// Router is this node's end of the cluster's routing: routed tool calls
// (this file) and HTTP tunnels (tunnel.go). It has a connection of its own
// (its inboxes under mcpjupyter.inbox, which outside clients can neither
// read nor write), so routed traffic never waits behind the publishers'.
type Router struct {
	node string
	nc   *nats.Conn
	log  *slog.Logger

	mu      sync.Mutex
	closed  bool
	subs    []*nats.Subscription
	running sync.WaitGroup // routed calls and tunnel pumps in progress
	slots   chan struct{}  // MaxToolCalls
	cancel  context.CancelFunc
	ctx     context.Context // ends at Close: the calls' parent
	tunnels *tunnels
}

// NewRouter opens node's router on s. Close it before the server.
func NewRouter(s *Server, node string, log *slog.Logger) (*Router, error) {
	if node == "" {
		return nil, errors.New("open the router: the node has no name (--node-name)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc, err := s.Connect(nats.Name("mcp-jupyter router "+node), nats.CustomInboxPrefix(routeInbox),
		nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("open the router: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{node: node, nc: nc, log: log, slots: make(chan struct{}, MaxToolCalls), ctx: ctx, cancel: cancel}
	r.tunnels = newTunnels(r)
	return r, nil
}

// Node is this router's node name.
func (r *Router) Node() string { return r.node }

// ServeTools runs fn for every tool call routed to this node, each in its
// own goroutine (at most MaxToolCalls at once), until Close.
func (r *Router) ServeTools(fn ToolHandler) error {
	sub, err := r.nc.Subscribe(ToolSubject(r.node), func(m *nats.Msg) { r.serveTool(m, fn) })
	if err != nil {
		return fmt.Errorf("serve routed tool calls on %s: %w", ToolSubject(r.node), err)
	}
	// NB: a routed call may carry 1 MiB of code; the default pending
	// bound (64 MiB) is the queue's limit, and a call is picked up at once
	// (its goroutine), so it only fills when the node is far behind.
	return r.track(sub)
}

// track keeps sub for Close, once the server has it (active on return).
func (r *Router) track(sub *nats.Subscription) error {
	if err := r.nc.FlushTimeout(5 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", sub.Subject, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = sub.Unsubscribe()
		return errors.New("router closed")
	}
	r.subs = append(r.subs, sub)
	return nil
}

// serveTool runs one routed call. The message callback returns at once:
// the call runs in a goroutine the router waits for at Close.
func (r *Router) serveTool(m *nats.Msg, fn ToolHandler) {
	call := ToolCall{Tool: m.Header.Get(hdrTool), Args: m.Data}
	if c := m.Header.Get(hdrClient); c != "" {
		call.Client = json.RawMessage(c)
	}
	if err := json.Unmarshal([]byte(m.Header.Get(hdrPrincipal)), &call.Principal); err != nil || call.Principal.Name == "" {
		r.replyError(m, "the routed call carries no principal; nothing was run")
		return
	}
	select {
	case r.slots <- struct{}{}:
	default:
		r.replyError(m, fmt.Sprintf("node %s runs %d routed calls already; nothing was run, retry in a moment", r.node, MaxToolCalls))
		return
	}
	if !r.begin() {
		<-r.slots
		r.replyError(m, fmt.Sprintf("node %s is shutting down; nothing was run, retry (another node takes its kernels over)", r.node))
		return
	}
	deadline := time.Now().Add(DefaultToolTimeout)
	if ms, err := parseInt(m.Header.Get(hdrDeadline)); err == nil && ms > 0 {
		deadline = time.UnixMilli(ms)
	}
	go func() { // owned: Close waits for running
		defer r.running.Done()
		defer func() { <-r.slots }()
		ctx, cancel := context.WithDeadline(r.ctx, deadline)
		defer cancel()
		rep, err := fn(ctx, call)
		if err != nil {
			r.replyError(m, err.Error())
			return
		}
		if err := m.Respond(rep.Result); err != nil {
			r.log.Warn("routed tool call: reply not sent", "tool", call.Tool, "err", err)
		}
	}()
}

// begin counts one more running task unless the router is closed.
func (r *Router) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.running.Add(1)
	return true
}

func (r *Router) replyError(m *nats.Msg, msg string) {
	rep := nats.NewMsg(m.Reply)
	rep.Header.Set(hdrError, msg)
	if err := m.RespondMsg(rep); err != nil {
		r.log.Warn("routed tool call: error reply not sent", "err", err)
	}
}

// CallTool runs call on node and returns its reply: one request/reply on
// node's subject. No node listening (down, cut off) is a
// *NodeUnreachableError at once; ctx bounds the wait (DefaultToolTimeout
// when it has no deadline).
func (r *Router) CallTool(ctx context.Context, node string, call ToolCall) (ToolReply, error) {
	principal, err := json.Marshal(call.Principal)
	if err != nil {
		return ToolReply{}, fmt.Errorf("route %s to node %s: encode the principal: %w", call.Tool, node, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultToolTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	m := &nats.Msg{Subject: ToolSubject(node), Data: call.Args, Header: nats.Header{
		hdrTool:      {call.Tool},
		hdrPrincipal: {string(principal)},
		hdrDeadline:  {strconv.FormatInt(deadline.UnixMilli(), 10)},
	}}
	if len(call.Client) > 0 {
		m.Header[hdrClient] = []string{string(call.Client)}
	}
	rep, err := r.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return ToolReply{}, &NodeUnreachableError{Node: node, Err: err}
		}
		return ToolReply{}, fmt.Errorf("route %s to node %s: %w", call.Tool, node, err)
	}
	if msg := rep.Header.Get(hdrError); msg != "" {
		return ToolReply{}, &RemoteError{Node: node, Msg: msg}
	}
	return ToolReply{Result: rep.Data}, nil
}

// Close stops serving, ends the routed calls' contexts and the tunnels,
// and waits for them (bounded by ctx). Idempotent.
func (r *Router) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	subs := r.subs
	r.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, err)
		}
	}
	r.tunnels.closeAll()
	r.cancel()
	done := make(chan struct{})
	go func() { r.running.Wait(); close(done) }() // ends when the calls end: their contexts are cancelled
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close the router: routed calls still running: %w", ctx.Err()))
	}
	// NB: a router whose server is gone has nothing to flush to.
	if r.nc.IsConnected() {
		if err := flush(ctx, r.nc); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
	}
	r.nc.Close()
	return errors.Join(errs...)
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
