package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// backend adapts the actor system and the read models to what the MCP edge
// needs. NB: it never reads the log: commands go to actors, answers come
// from read models, and after a command it waits for the runner to have
// applied what the command appended (read your writes).
type backend struct {
	sys    *system.System
	runner applied // the runner feeding the models below
	// last is the log's end (a position, not a read): after a command
	// that answers no seq, waiting for it makes the models reflect what
	// the command appended.
	last     func() uint64
	queue    *queue.Model
	execs    *executions.Model
	kernels  *kernels.Model
	launcher *jupyter.Launcher
	// older explains an id the models do not know when it is older than
	// the retained log (an error naming the retention setting), or nil.
	older func(id string) error
	// draining is set when a shutdown began: new executions and kernels
	// are refused; running ones finish.
	draining atomic.Bool
	// notebookPath confines a notebook path given to start_kernel to the
	// notebook root, as the notebook tools do, and returns its
	// root-relative form; nil until the notebooks are open.
	notebookPath func(path string) (rel string, err error)
	// space refuses new work while the disk is (nearly) full
	// (eventlog.Log.CheckSpace; nil: never).
	space func() error
	// quotas bounds each principal's kernels and waiting executions (nil:
	// no bounds).
	quotas *quotas
}

// refuse says why new work cannot be taken now, or nil.
func (b *backend) refuse() error {
	if b.draining.Load() {
		return errDraining
	}
	if b.space != nil {
		return b.space()
	}
	return nil
}

// errNoPrincipal: a request reached the backend without an authenticated
// principal in its context. Every edge puts one there (the HTTP middleware,
// stdio as the admin); reaching this is a wiring fault, refused rather than
// attributed to anyone.
var errNoPrincipal = errors.New("the request carries no authenticated principal (an edge that skipped authentication): " +
	"nothing was done; report this as a bug")

// caller returns the name of the principal ctx carries: the events a
// command causes record it. Absent, the command is refused.
func caller(ctx context.Context) (string, error) {
	p, err := callerPrincipal(ctx)
	return p.Name, err
}

// callerPrincipal is caller's principal whole (its quotas).
func callerPrincipal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Name == "" {
		return auth.Principal{}, errNoPrincipal
	}
	return p, nil
}

// errDraining: the server is shutting down.
var errDraining = errors.New("the server is shutting down and accepts no new work; " +
	"retry once it is back (executions already accepted are kept in the log and finish or resume after the restart)")

var _ mcpserver.Backend = (*backend)(nil)

// applied is the projections runner's read-your-writes wait.
type applied interface {
	WaitFor(ctx context.Context, seq uint64) error
}

// sync waits until the read models reflect event seq.
func (b *backend) sync(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	if err := b.runner.WaitFor(ctx, seq); err != nil {
		return fmt.Errorf("wait for the read models: %w", err)
	}
	return nil
}

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
	p, err := callerPrincipal(ctx)
	if err != nil {
		return mcpserver.KernelView{}, err
	}
	owner := p.Name
	if err := b.refuse(); err != nil {
		return mcpserver.KernelView{}, err
	}
	if b.quotas != nil {
		release, err := b.quotas.reserveKernel(p)
		if err != nil {
			return mcpserver.KernelView{}, err
		}
		defer release() // NB: after the models reflect the start (b.sync below)
	}
	if req.Spec == "" {
		req.Spec = "python3"
	}
	if req.Notebook != "" {
		// NB: the same confinement as the notebook tools (infra/notebook
		// Root.Resolve): "..", absolute paths elsewhere and symlinks leading
		// out of the root are refused before any kernel starts.
		if b.notebookPath == nil {
			return mcpserver.KernelView{}, errors.New("notebooks are not open yet: retry start_kernel with notebook once the server is ready")
		}
		rel, err := b.notebookPath(req.Notebook)
		if err != nil {
			return mcpserver.KernelView{}, fmt.Errorf("notebook %q: %w", req.Notebook, err)
		}
		req.Notebook = rel
	}
	st, err := b.sys.StartKernel(ctx, req.Spec, req.Label, req.Notebook, owner)
	if err != nil {
		return mcpserver.KernelView{}, err
	}
	if err := b.sync(ctx, st.LastSeq); err != nil {
		return mcpserver.KernelView{}, err
	}
	if k, ok := b.kernels.Get(st.ID); ok {
		return b.view(k), nil
	}
	return b.stateView(st), nil
}

// stateView is the kernel as its actor answered (the model does not know
// it: the start failed before anything about it was recorded).
func (b *backend) stateView(st kernel.State) mcpserver.KernelView {
	return mcpserver.KernelView{ID: st.ID, Spec: st.Spec, Label: st.Label, Notebook: st.Notebook, State: string(st.Status),
		Pid: st.Process.Pid, Reason: st.Reason, ExecutionState: "dead"}
}

// kernelStates maps the kernels model's states to what list_kernels shows.
var kernelStates = map[kernels.State]string{
	kernels.StateStarting: "starting", kernels.StateRunning: string(kernel.StatusRunning), kernels.StateDead: string(kernel.StatusDead),
	kernels.StateLost: string(kernel.StatusLost), kernels.StateShutDown: string(kernel.StatusShutDown),
}

// view is a kernel as the read models tell it: the kernels model for its
// lifecycle, the queue model for its queue and running execution.
func (b *backend) view(k kernels.Kernel) mcpserver.KernelView {
	st, ok := kernelStates[k.State]
	if !ok {
		st = string(k.State)
	}
	v := mcpserver.KernelView{ID: k.ID, Spec: k.Spec, Label: k.Label, Notebook: k.Notebook, State: st,
		Pid: k.Pid, QueueDepth: b.queue.Depth(k.ID), Reason: k.Reason, ExecutionState: "idle"}
	switch {
	case k.State != kernels.StateRunning && k.State != kernels.StateStarting:
		v.ExecutionState = "dead"
	case k.State == kernels.StateStarting:
		v.ExecutionState = "starting"
	}
	if x, ok := b.queue.Active(k.ID); ok && v.ExecutionState != "dead" {
		v.ExecutionState, v.Running = "busy", x.ID
	}
	return v
}

// Kernels lists the kernels of the kernels read model that were not shut
// down (dead and lost ones stay listed, with their reason).
func (b *backend) Kernels(ctx context.Context, label string) ([]mcpserver.KernelView, error) {
	var out []mcpserver.KernelView
	for _, k := range b.kernels.List() { // sorted by id
		if k.State == kernels.StateShutDown || label != "" && k.Label != label {
			continue
		}
		out = append(out, b.view(k))
	}
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
	// A notebook bound as "a.ipynb" is also "./a.ipynb" or its absolute path.
	if b.notebookPath != nil {
		if rel, err := b.notebookPath(kernelOrNotebook); err == nil {
			if id, ok := b.sys.ResolveNotebook(rel); ok {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("no kernel or bound notebook %q: call list_kernels for the ids, or start_kernel", kernelOrNotebook)
}

func (b *backend) InterruptKernel(ctx context.Context, id string) error {
	by, err := caller(ctx)
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.InterruptKernel(ctx, id, by))
}
func (b *backend) RestartKernel(ctx context.Context, id string) error {
	by, err := caller(ctx)
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.RestartKernel(ctx, id, by))
}
func (b *backend) ShutdownKernel(ctx context.Context, id string) error {
	by, err := caller(ctx)
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.ShutdownKernel(ctx, id, by))
}

// ShareKernel grants principal access ("read", "execute") to kernel id, or
// withdraws it (auth.AccessNone), as the caller. Whether the caller may
// share it (the owner, an admin) is the access checks' (access.go); the
// kernel actor refuses what makes no sense.
func (b *backend) ShareKernel(ctx context.Context, id, principal string, access auth.Access) (kernels.Kernel, error) {
	by, err := caller(ctx)
	if err != nil {
		return kernels.Kernel{}, err
	}
	st, err := b.sys.ShareKernel(ctx, id, by, principal, access.String())
	if err != nil {
		return kernels.Kernel{}, err
	}
	if err := b.sync(ctx, st.LastSeq); err != nil {
		return kernels.Kernel{}, err
	}
	k, _ := b.kernels.Get(id)
	return k, nil
}

// settle returns err, after waiting (when the command succeeded) for the
// read models to reflect everything appended until now.
func (b *backend) settle(ctx context.Context, err error) error {
	if err != nil || b.last == nil {
		return err
	}
	return b.sync(ctx, b.last())
}

func (b *backend) Submit(ctx context.Context, req mcpserver.SubmitRequest) (queue.Execution, error) {
	p, err := callerPrincipal(ctx)
	if err != nil {
		return queue.Execution{}, err
	}
	by := p.Name
	if err := b.refuse(); err != nil {
		return queue.Execution{}, err
	}
	if b.quotas != nil {
		release, err := b.quotas.reserveQueued(p)
		if err != nil {
			return queue.Execution{}, err
		}
		defer release() // NB: after the models reflect the submit (b.sync below)
	}
	x, err := b.sys.Submit(ctx, req.KernelID, scheduler.Submit{ExecutionID: req.ExecutionID, Code: req.Code,
		AllowStdin: req.AllowStdin, Notebook: req.Notebook, CellID: req.CellID, By: by})
	if err != nil {
		return queue.Execution{}, err
	}
	// NB: LastSeq is the seq of the append that queued (and maybe started)
	// it: once the runner applied it, the execution model answers for it.
	if err := b.sync(ctx, x.LastSeq); err != nil {
		return queue.Execution{}, err
	}
	if v, ok := b.execs.Get(x.ID); ok {
		return v, nil
	}
	return accepted(x), nil
}

// accepted is the read model's view of an execution the scheduler queued
// (and maybe started), for one the model no longer holds in memory.
func accepted(x scheduler.Execution) queue.Execution {
	st := queue.StatusQueued
	if x.Started() {
		st = queue.StatusRunning
	}
	return queue.Execution{ID: x.ID, KernelID: x.KernelID, Code: x.Code, AllowStdin: x.AllowStdin, Notebook: x.Notebook,
		CellID: x.CellID, Status: st, MsgID: x.MsgID, QueuedAt: x.QueuedAt, StartedAt: x.StartedAt, LastSeq: x.LastSeq}
}

// Execution answers from the execution read model: what is new since the
// cursor, and a channel closed when this execution (only it) changes.
func (b *backend) Execution(ctx context.Context, id string, since uint64) (mcpserver.ExecutionView, error) {
	v, err := b.execs.Read(ctx, id, since)
	if err != nil {
		if errors.Is(err, executions.ErrUnknown) {
			if b.older != nil {
				if err := b.older(id); err != nil {
					return mcpserver.ExecutionView{}, err
				}
			}
			return mcpserver.ExecutionView{}, fmt.Errorf("%w %q: list_executions shows the ids", system.ErrUnknownExecution, id)
		}
		return mcpserver.ExecutionView{}, err
	}
	return mcpserver.ExecutionView{Execution: v.Execution, Outputs: v.Outputs, Cursor: v.Cursor, Changed: v.Changed, More: v.More}, nil
}

func (b *backend) Executions(ctx context.Context, kernelID string, status queue.Status) ([]queue.Execution, error) {
	return b.queue.List(kernelID, status), nil
}

func (b *backend) CancelExecution(ctx context.Context, id string) error {
	by, err := caller(ctx)
	if err != nil {
		return err
	}
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.Cancel(ctx, v.Execution.KernelID, id, by))
}

func (b *backend) SendInput(ctx context.Context, id, value string) error {
	by, err := caller(ctx)
	if err != nil {
		return err
	}
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return err
	}
	if v.Execution.Status != queue.StatusInputRequired {
		return fmt.Errorf("execution %s is %s, not waiting for input", id, v.Execution.Status)
	}
	return b.settle(ctx, b.sys.SendInput(ctx, v.Execution.KernelID, id, value, by))
}
