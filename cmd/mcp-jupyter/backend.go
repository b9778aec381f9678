package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// backend adapts the actor system, the queue read model and the log to what
// the MCP edge needs.
type backend struct {
	sys      *system.System
	log      *eventlog.Log
	queue    *queue.Model
	launcher *jupyter.Launcher
	// draining is set when a shutdown began: new executions and kernels
	// are refused; running ones finish.
	draining atomic.Bool
}

// errDraining: the server is shutting down.
var errDraining = errors.New("the server is shutting down and accepts no new work; " +
	"retry once it is back (executions already accepted are kept in the log and finish or resume after the restart)")

var _ mcpserver.Backend = (*backend)(nil)

func (b *backend) KernelSpecs(ctx context.Context) ([]mcpserver.KernelSpec, error) {
	specs, err := b.launcher.Specs()
	if err != nil {
		return nil, err
	}
	out := make([]mcpserver.KernelSpec, 0, len(specs.Specs))
	for _, s := range specs.Specs {
		out = append(out, mcpserver.KernelSpec{Name: s.Name, DisplayName: s.DisplayName, Language: s.Language, InterruptMode: s.InterruptMode})
	}
	return out, nil
}

func (b *backend) StartKernel(ctx context.Context, req mcpserver.StartKernelRequest) (mcpserver.KernelView, error) {
	if b.draining.Load() {
		return mcpserver.KernelView{}, errDraining
	}
	if req.Spec == "" {
		req.Spec = "python3"
	}
	st, err := b.sys.StartKernel(ctx, req.Spec, req.Label, req.Notebook)
	if err != nil {
		return mcpserver.KernelView{}, err
	}
	return b.view(st), nil
}

func (b *backend) view(st kernel.State) mcpserver.KernelView {
	v := mcpserver.KernelView{ID: st.ID, Spec: st.Spec, Label: st.Label, Notebook: st.Notebook, State: string(st.Status),
		Pid: st.Process.Pid, QueueDepth: b.queue.Depth(st.ID), Reason: st.Reason, ExecutionState: "idle"}
	if !st.Status.Alive() {
		v.ExecutionState = "dead"
	} else if x, ok := b.queue.Active(st.ID); ok {
		v.ExecutionState, v.Running = "busy", x.ID
	}
	return v
}

func (b *backend) Kernels(ctx context.Context, label string) ([]mcpserver.KernelView, error) {
	var out []mcpserver.KernelView
	for _, id := range b.sys.KernelIDs() {
		st, err := b.sys.Kernel(ctx, id)
		if err != nil {
			if errors.Is(err, system.ErrUnknownKernel) {
				continue
			}
			return nil, err
		}
		if label != "" && st.Label != label {
			continue
		}
		out = append(out, b.view(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (b *backend) ResolveKernel(ctx context.Context, kernelOrNotebook string) (string, error) {
	for _, id := range b.sys.KernelIDs() {
		if id == kernelOrNotebook {
			return id, nil
		}
	}
	if id, ok := b.sys.ResolveNotebook(kernelOrNotebook); ok {
		return id, nil
	}
	return "", fmt.Errorf("no kernel or bound notebook %q: call list_kernels for the ids, or start_kernel", kernelOrNotebook)
}

func (b *backend) InterruptKernel(ctx context.Context, id string) error {
	return b.sys.InterruptKernel(ctx, id)
}
func (b *backend) RestartKernel(ctx context.Context, id string) error {
	return b.sys.RestartKernel(ctx, id)
}
func (b *backend) ShutdownKernel(ctx context.Context, id string) error {
	return b.sys.ShutdownKernel(ctx, id)
}

func (b *backend) Submit(ctx context.Context, req mcpserver.SubmitRequest) (queue.Execution, error) {
	if b.draining.Load() {
		return queue.Execution{}, errDraining
	}
	return b.sys.Submit(ctx, req.KernelID, scheduler.Submit{ExecutionID: req.ExecutionID, Code: req.Code,
		AllowStdin: req.AllowStdin, Notebook: req.Notebook, CellID: req.CellID})
}

// Execution folds the execution's own stream: the log is the truth, so a
// caller sees its own submission at once and outputs in log order.
func (b *backend) Execution(ctx context.Context, id string, since uint64) (mcpserver.ExecutionView, error) {
	changed := b.log.Changed() // NB: taken before reading, so no commit is missed
	var v mcpserver.ExecutionView
	v.Cursor = since
	read := 0
	err := b.log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		read++
		if queue.IsExecutionEvent(e.Type) {
			v.Execution = queue.ApplyExecution(v.Execution, e)
		} else if p, ok := e.Payload.(events.IOPubMessageReceived); ok && e.Seq > since {
			v.Outputs = append(v.Outputs, queue.Output{Seq: e.Seq, MsgType: p.MsgType, Content: append([]byte(nil), p.Content...)})
		}
		if e.Seq > v.Cursor {
			v.Cursor = e.Seq
		}
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read execution %s: %w", id, err)
	}
	if v.Execution.ID == "" {
		if err := truncatedExecution(b.log, id, read > 0); err != nil {
			return v, err
		}
		return v, fmt.Errorf("%w %q: list_executions shows the ids", system.ErrUnknownExecution, id)
	}
	v.Changed = changed
	return v, nil
}

func (b *backend) Executions(ctx context.Context, kernelID string, status queue.Status) ([]queue.Execution, error) {
	return b.queue.List(kernelID, status), nil
}

func (b *backend) CancelExecution(ctx context.Context, id string) error {
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return err
	}
	return b.sys.Cancel(ctx, v.Execution.KernelID, id)
}

func (b *backend) SendInput(ctx context.Context, id, value string) error {
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return err
	}
	if v.Execution.Status != queue.StatusInputRequired {
		return fmt.Errorf("execution %s is %s, not waiting for input", id, v.Execution.Status)
	}
	return b.sys.SendInput(ctx, v.Execution.KernelID, id, value)
}
