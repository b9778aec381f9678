package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
)

// jupyterChannels implements jupyterapi.Channels (the channels WebSocket
// of the Jupyter Server API) on the actor system, the read models and the
// /ws hub's subscriptions: a frontend's execute_request is an execution
// like an agent's (queued, durable, in list_executions, with its Origin),
// its other requests are relayed by the kernel actor, and what it sees is
// the kernel's durable events.
type jupyterChannels struct {
	c *core
	// startSeq is the last event recorded before this process started: a
	// session that attached in an earlier process resumes after it.
	startSeq uint64
}

func newJupyterChannels(c *core, startSeq uint64) *jupyterChannels {
	return &jupyterChannels{c: c, startSeq: startSeq}
}

// need checks the caller's access to kernel id: a kernel it cannot read
// is ErrNoKernel, one it can read but not act on as need ErrNoAccess, and
// so is a token without the scope the MCP tool doing the same needs
// (tool; "" for reading).
func (j *jupyterChannels) need(ctx context.Context, id string, need auth.Access, tool string) (auth.Principal, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return p, fmt.Errorf("%w: %v", jupyterapi.ErrNoAccess, err)
	}
	if tool != "" {
		if scope := mcpserver.ToolScope(tool); !p.Scopes.Has(scope) {
			return p, fmt.Errorf("%w: this needs the %s scope (as the MCP tool %s) and principal %q's token has %s: ask an admin for a token with %s",
				jupyterapi.ErrNoAccess, scope, tool, p.Name, p.Scopes, scope)
		}
	}
	if _, ok := j.c.kernels.Get(id); !ok && !p.IsAdmin() {
		return p, jupyterapi.ErrNoKernel
	}
	hidden := errors.New("hidden")
	if err := j.c.back.access.require(p, id, need, func() error { return hidden }); err != nil {
		if err == hidden {
			return p, jupyterapi.ErrNoKernel
		}
		return p, fmt.Errorf("%w: %v", jupyterapi.ErrNoAccess, err)
	}
	return p, nil
}

func (j *jupyterChannels) Kernel(ctx context.Context, id string) (jupyterapi.ChannelKernel, error) {
	if _, err := j.need(ctx, id, auth.AccessRead, ""); err != nil {
		return jupyterapi.ChannelKernel{}, err
	}
	k, ok := j.c.kernels.Get(id)
	if !ok {
		return jupyterapi.ChannelKernel{}, jupyterapi.ErrNoKernel
	}
	session, _ := events.UUIDForm(id)
	return jupyterapi.ChannelKernel{ID: id, Session: session, ExecutionState: executionState(string(k.State), k.ExecutionState), Seq: k.Seq}, nil
}

// executionState is Jupyter's execution_state of a kernel in the kernels
// read model.
func executionState(state, last string) string {
	switch state {
	case "running":
		if last == "" {
			return "idle"
		}
		return last
	case "starting", "restarting":
		return state
	}
	return "dead"
}

func (j *jupyterChannels) Attach(ctx context.Context, id string, a jupyterapi.Attach) (uint64, bool, error) {
	p, err := j.need(ctx, id, auth.AccessRead, "")
	if err != nil {
		return 0, false, err
	}
	seen := j.seenBefore(id, a.Session)
	_, err = j.c.sys.AttachFrontend(ctx, id, kernel.AttachFrontend{Session: a.Session, Username: a.Username, Client: a.Client,
		Framing: a.Framing, By: p.Name})
	return j.startSeq, seen, err
}

// seenBefore reports whether the session attached to the kernel in an
// earlier process (its FrontendAttached before startSeq).
func (j *jupyterChannels) seenBefore(kernelID, session string) bool {
	f, ok := j.c.kernels.Frontend(kernelID, session)
	return ok && f.Seq <= j.startSeq
}

func (j *jupyterChannels) Execute(ctx context.Context, id string, req jupyterapi.ExecuteRequest) (string, error) {
	p, err := j.need(ctx, id, auth.AccessExecute, "execute")
	if err != nil {
		return "", err
	}
	b := j.c.back
	if err := b.refuse(); err != nil {
		return "", err
	}
	execID := events.NewID(time.Now())
	var held *reservation
	if b.quotas != nil {
		if held, err = b.quotas.reserveQueued(p, execID); err != nil {
			return "", err
		}
	}
	o := req.Origin
	x, err := j.c.sys.Submit(ctx, id, scheduler.Submit{ExecutionID: execID, Code: req.Code, AllowStdin: req.AllowStdin, By: p.Name, Origin: &o,
		Silent: req.Silent, SkipHistory: req.SkipHistory, StopOnError: req.StopOnError, UserExpressions: req.UserExpressions})
	if err != nil {
		held.Release()
		return "", err
	}
	if held != nil {
		// NB: the quota reservation goes once the models count it.
		b.awaitModels(ctx, x.LastSeq)
		held.Release()
	}
	return x.ID, nil
}

func (j *jupyterChannels) Execution(ctx context.Context, id, executionID string) (*events.Origin, string, error) {
	x, ok := j.c.queue.Get(executionID)
	if !ok || x.KernelID != id {
		return nil, "", fmt.Errorf("no execution %s on kernel %s in the read model", executionID, id)
	}
	return x.Origin, x.By, nil
}

func (j *jupyterChannels) Relay(ctx context.Context, id string, r jupyterapi.RelayRequest) error {
	need, tool := auth.AccessExecute, "execute"
	if r.MsgType == "kernel_info_request" {
		need, tool = auth.AccessRead, "" // attaching is reading
	}
	p, err := j.need(ctx, id, need, tool)
	if err != nil {
		return err
	}
	err = j.c.sys.Relay(ctx, id, kernel.Relay{Channel: r.Channel, MsgType: r.MsgType, MsgID: r.MsgID, Content: r.Content,
		By: p.Name, Replies: r.Replies})
	if errors.Is(err, kernel.ErrNotRunning) {
		return fmt.Errorf("%w: %v", jupyterapi.ErrNotRunning, err)
	}
	return err
}

func (j *jupyterChannels) SendInput(ctx context.Context, id, executionID, value string) error {
	p, err := j.need(ctx, id, auth.AccessExecute, "send_input")
	if err != nil {
		return err
	}
	return j.c.sys.SendInput(ctx, id, executionID, value, p.Name)
}

func (j *jupyterChannels) Interrupt(ctx context.Context, id string) error {
	p, err := j.need(ctx, id, auth.AccessExecute, "interrupt_kernel")
	if err != nil {
		return err
	}
	return j.c.sys.InterruptKernel(ctx, id, p.Name)
}

// Restart and Shutdown need what the MCP tools need: the owner's (or an
// admin's) access.
func (j *jupyterChannels) Restart(ctx context.Context, id string) error {
	p, err := j.need(ctx, id, auth.AccessManage, "restart_kernel")
	if err != nil {
		return err
	}
	return j.c.sys.RestartKernel(ctx, id, p.Name)
}

func (j *jupyterChannels) Shutdown(ctx context.Context, id string) error {
	p, err := j.need(ctx, id, auth.AccessManage, "shutdown_kernel")
	if err != nil {
		return err
	}
	return j.c.sys.ShutdownKernel(ctx, id, p.Name)
}

func (j *jupyterChannels) Readable(ctx context.Context, id string, asOf uint64) error {
	j.c.back.awaitModels(ctx, asOf)
	_, err := j.need(ctx, id, auth.AccessRead, "")
	return err
}

func (j *jupyterChannels) Subscribe(id string, after uint64, live bool) (jupyterapi.Feed, error) {
	s, err := j.c.live.hub.Subscribe(id, ws.SubscribeOptions{After: after, Live: live, QueueBytes: channelsFeedBytes})
	if err != nil {
		return nil, err
	}
	return feed{s}, nil
}

// channelsFeedBytes bounds the events waiting for one channels connection
// in the hub (besides its send queue, jupyterapi's): past it the frontend
// is closed as a slow consumer and resumes from its cursor.
const channelsFeedBytes = 8 << 20

// feed adapts a ws.Subscription: falling behind is jupyterapi's
// ErrFeedBehind.
type feed struct{ s *ws.Subscription }

func (f feed) Next(ctx context.Context) ([]events.Event, error) {
	evs, err := f.s.Next(ctx)
	if errors.Is(err, ws.ErrSlowSubscriber) {
		return evs, fmt.Errorf("%w: %v", jupyterapi.ErrFeedBehind, err)
	}
	return evs, err
}

func (f feed) Cursor() uint64 { return f.s.Cursor() }

func (f feed) Close() { f.s.Close() }
