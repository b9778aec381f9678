package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/projections/restores"
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
	last    func() uint64
	queue   *queue.Model
	execs   *executions.Model
	kernels *kernels.Model
	// restores says which execution was queued first after each kernel's
	// last restore (nil: no execution is told about restores); with
	// kernels.Kernel.Restored, what execute and get_execution tell an
	// agent about a kernel relaunched at start (restore_notice.go).
	restores *restores.Model
	launcher *jupyter.Launcher
	// pool holds --prewarm's pre-started kernels (nil: none): StartKernel
	// claims one before anything else, so its id is the kernel's.
	pool *jupyter.Pool
	// access is who may do what with which kernel (access.go): every
	// method checks the caller that ctx carries.
	access access
	// principals lists the token store's principals, to refuse a share with
	// a name that is none (nil: not checked).
	principals func() ([]auth.Record, error)
	// older explains an id the models do not know when it is older than
	// the retained log (an error naming the retention setting), or nil.
	older func(id string) error
	// draining is set when a shutdown began: new executions and kernels
	// are refused; running ones finish.
	draining atomic.Bool
	// notebookPath confines a notebook path given to start_kernel to the
	// caller's notebook root, as the notebook tools do (notebookroot.go),
	// and returns its root-relative form; nil until the notebooks are open.
	notebookPath func(ctx context.Context, path string) (rel string, err error)
	// space refuses new work while the disk is (nearly) full
	// (eventlog.Log.CheckSpace; nil: never).
	space func() error
	// quotas bounds each principal's kernels and waiting executions (nil:
	// no bounds).
	quotas *quotas
	// own is cluster mode's kernel ownership (cluster_owners.go): a
	// command for a kernel runs only while this node can prove it owns it,
	// a new kernel is claimed before it starts, a shut down one released.
	// nil: a single server, which owns every kernel.
	own *kernelOwnership
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

// awaitModelsTimeout bounds awaitModels' wait.
const awaitModelsTimeout = 5 * time.Second

// awaitModels waits (at most awaitModelsTimeout), whether or not ctx was cancelled,
// for the read models to reach seq: a quota reservation is released only
// once the models count what it reserved, or a request cancelled between
// its append and the models catching up would let the next one past the
// bound.
func (b *backend) awaitModels(ctx context.Context, seq uint64) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), awaitModelsTimeout)
	defer cancel()
	_ = b.sync(wctx, seq) // NB: past the bound the reservation goes anyway: the models are stuck
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
	p, err := auth.Caller(ctx)
	if err != nil {
		return mcpserver.KernelView{}, err
	}
	owner := p.Name
	if err := b.refuse(); err != nil {
		return mcpserver.KernelView{}, err
	}
	if req.Spec == "" {
		req.Spec = defaultKernelSpec
	}
	// NB: the id is chosen here, so the quota sees the kernel in the
	// model the moment its start is applied. A pre-started kernel keeps
	// the id it was started under: claimed first, it is given back if the
	// start is refused before it is asked for (a quota, a bad notebook).
	id, pooled := b.claimKernel(req.Spec)
	asked := false
	if pooled {
		defer func() {
			if !asked {
				b.pool.Unclaim(id)
			}
		}()
	}
	var held *reservation
	if b.quotas != nil {
		if held, err = b.quotas.reserveKernel(p, id); err != nil {
			return mcpserver.KernelView{}, err
		}
		defer held.Release() // NB: after the models reflect the start (b.sync below)
	}
	if req.Notebook != "" {
		// NB: the same confinement as the notebook tools (infra/notebook
		// Root.Resolve): "..", absolute paths elsewhere and symlinks leading
		// out of the root are refused before any kernel starts.
		if b.notebookPath == nil {
			return mcpserver.KernelView{}, errors.New("notebooks are not open yet: retry start_kernel with notebook once the server is ready")
		}
		rel, err := b.notebookPath(ctx, req.Notebook)
		if err != nil {
			return mcpserver.KernelView{}, fmt.Errorf("notebook %q: %w", req.Notebook, err)
		}
		req.Notebook = rel
	}
	if err := b.own.claim(ctx, id); err != nil {
		return mcpserver.KernelView{}, err
	}
	asked = true
	st, err := b.sys.StartKernelWithID(ctx, id, req.Spec, req.Label, req.Notebook, owner)
	if err != nil {
		b.own.release(id) // NB: nothing runs under it
		if pooled {
			b.pool.Abandon(id) // NB: nothing if the kernel actor took it
		}
		return mcpserver.KernelView{}, err
	}
	if err := b.sync(ctx, st.LastSeq); err != nil {
		b.awaitModels(ctx, st.LastSeq) // NB: the quota reservation outlives a cancelled request
		return mcpserver.KernelView{}, err
	}
	if pooled {
		// NB: the models hold its KernelStarted, so it is durable: the kernel
		// is no longer the pool's to reap (its marker stays otherwise, and
		// the next start settles it against the log).
		b.pool.Recorded(id)
	}
	if k, ok := b.kernels.Get(st.ID); ok {
		return b.view(p, k), nil
	}
	v := b.stateView(st)
	v.Owner = p.Name
	return v, nil
}

// claimKernel returns the id for a new kernel of spec: a pre-started
// kernel's (pooled true; see jupyter.Pool's contract) or a fresh one.
func (b *backend) claimKernel(spec string) (id string, pooled bool) {
	if b.pool != nil {
		if id, ok := b.pool.Claim(spec); ok {
			return id, true
		}
	}
	return events.NewID(time.Now()), false
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
// lifecycle, owner and shares, the queue model for its queue and running
// execution. Its shares are shown to p only if p may manage it (the owner,
// an admin): whom else a kernel is shared with is the owner's business.
func (b *backend) view(p auth.Principal, k kernels.Kernel) mcpserver.KernelView {
	st, ok := kernelStates[k.State]
	if !ok {
		st = string(k.State)
	}
	v := mcpserver.KernelView{ID: k.ID, Spec: k.Spec, Label: k.Label, Notebook: k.Notebook, State: st,
		Pid: k.Pid, QueueDepth: b.queue.Depth(k.ID), Reason: k.Reason, ExecutionState: "idle", Owner: k.Owner}
	if v.Owner == "" {
		v.Owner = auth.AdminName
	}
	if len(k.Shares) > 0 && p.On(ownership(k, p.Name)) >= auth.AccessManage {
		v.Shares = k.Shares // NB: k is the model's copy, ours to hand out
	}
	switch {
	case k.State != kernels.StateRunning && k.State != kernels.StateStarting:
		v.ExecutionState = "dead"
	case k.State == kernels.StateStarting:
		v.ExecutionState = "starting"
	}
	if x, ok := b.queue.Active(k.ID); ok && v.ExecutionState != "dead" {
		v.ExecutionState, v.Running = "busy", x.ID
	}
	v.RestoreNotice = kernelRestoreNotice(k)
	return v
}

// Kernels lists the kernels of the kernels read model that were not shut
// down (dead and lost ones stay listed, with their reason) and that the
// caller may read.
func (b *backend) Kernels(ctx context.Context, label string) ([]mcpserver.KernelView, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var out []mcpserver.KernelView
	for _, k := range b.access.visibleKernels(p) { // sorted by id
		if k.State == kernels.StateShutDown || label != "" && k.Label != label {
			continue
		}
		out = append(out, b.view(p, k))
	}
	return out, nil
}

// ResolveKernel turns a kernel id or a bound notebook path into the id of
// a kernel the caller may read; any other answers unknownKernel, the same
// words as for an id nobody knows.
func (b *backend) ResolveKernel(ctx context.Context, kernelOrNotebook string) (string, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return "", err
	}
	id, ok := b.resolve(ctx, p, kernelOrNotebook)
	if !ok || !b.access.canRead(p, id) {
		if err := b.culledKernel(p, kernelOrNotebook); err != nil {
			return "", err // NB: culled in an earlier process: say so, and where its variables are
		}
		return "", unknownKernel(kernelOrNotebook)
	}
	return id, nil
}

func (b *backend) resolve(ctx context.Context, p auth.Principal, kernelOrNotebook string) (string, bool) {
	if id, ok := b.sys.CanonicalKernelID(kernelOrNotebook); ok {
		return id, true // NB: either form of the id (events.UUIDForm): frontends show the UUID one
	}
	if id, ok := b.clusterKernel(kernelOrNotebook); ok {
		return id, true
	}
	// NB: a path as given names a notebook of the whole root: only admins
	// see that; others name notebooks in their own root (notebookPath).
	if p.IsAdmin() {
		if id, ok := b.sys.ResolveNotebook(kernelOrNotebook); ok {
			return id, true
		}
	}
	// A notebook bound as "a.ipynb" is also "./a.ipynb" or its absolute path.
	if b.notebookPath != nil {
		if rel, err := b.notebookPath(ctx, kernelOrNotebook); err == nil {
			if id, ok := b.sys.ResolveNotebook(rel); ok {
				return id, true
			}
		}
	}
	return "", false
}

// clusterKernel is, in cluster mode, a kernel another node runs (or ran
// until its node was lost): the kernels read model holds the whole
// cluster's history, so the tools that read it (list_executions,
// get_execution, list_kernels) answer for it here, and those that act on
// it were routed to its owner before reaching this node (cluster_route.go);
// one that was not is refused by ownership (may). A single server knows
// only the kernels its system runs, as before.
func (b *backend) clusterKernel(ref string) (string, bool) {
	if b.own == nil || b.kernels == nil {
		return "", false
	}
	id := events.CanonicalID(ref)
	k, ok := b.kernels.Get(id)
	if !ok || k.State == kernels.StateShutDown {
		return "", false
	}
	return id, true
}

// may checks that the caller may act on kernel id at level need, and
// returns its name: the events the command causes record it.
func (b *backend) may(ctx context.Context, id string, need auth.Access) (by string, err error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return "", err
	}
	if err := b.access.require(p, id, need, func() error { return unknownKernel(id) }); err != nil {
		return "", err
	}
	if err := b.own.held(id); err != nil {
		return "", err
	}
	return p.Name, nil
}

func (b *backend) InterruptKernel(ctx context.Context, id string) error {
	by, err := b.may(ctx, id, auth.AccessExecute)
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.InterruptKernel(ctx, id, by))
}
func (b *backend) RestartKernel(ctx context.Context, id string) error {
	by, err := b.may(ctx, id, auth.AccessManage)
	if err != nil {
		return err
	}
	return b.settle(ctx, b.sys.RestartKernel(ctx, id, by))
}
func (b *backend) ShutdownKernel(ctx context.Context, id string) error {
	by, err := b.may(ctx, id, auth.AccessManage)
	if err != nil {
		return err
	}
	if err := b.sys.ShutdownKernel(ctx, id, by); err != nil {
		return err
	}
	b.own.release(id) // NB: after the shutdown is durable: a kernel is never unowned while it runs
	return b.settle(ctx, nil)
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
	x, queued, held, err := b.submit(ctx, req)
	if err != nil {
		return queue.Execution{}, err
	}
	defer held.Release() // NB: after the models reflect the submit (b.sync below)
	// NB: the outcome is waited out even when the caller went away (the
	// log settles every append, failed or not): a submit that becomes
	// durable runs, and a caller told it failed would submit it again.
	if err := durable(context.WithoutCancel(ctx), req.KernelID, queued); err != nil {
		return queue.Execution{}, err // NB: never durable: the models will not count it
	}
	// NB: LastSeq is the seq of the append that queued (and maybe started)
	// it: once the runner applied it, the execution model answers for it.
	if err := b.sync(ctx, x.LastSeq); err != nil {
		b.awaitModels(ctx, x.LastSeq) // NB: the quota reservation outlives a cancelled request
		return queue.Execution{}, err
	}
	if v, ok := b.execs.Get(x.ID); ok {
		return v, nil
	}
	return accepted(x), nil
}

// Enqueue is Submit without the wait for the submit's durability: execute
// waits for the execution's end instead (the executions model closes its
// settle channel when the end is applied, which implies the submit is
// durable: the models see only durable events).
func (b *backend) Enqueue(ctx context.Context, req mcpserver.SubmitRequest) (mcpserver.Submitted, error) {
	x, queued, held, err := b.submit(ctx, req)
	if err != nil {
		return mcpserver.Submitted{}, err
	}
	settled, stop := b.execs.Settled(x.ID, x.LastSeq)
	seq := x.LastSeq
	return mcpserver.Submitted{ID: x.ID, Settled: settled,
		Durable: func(ctx context.Context) error {
			if err := durable(ctx, req.KernelID, queued); err != nil {
				return err
			}
			return b.sync(ctx, seq)
		},
		Release: func() {
			stop()
			if held != nil {
				// NB: the quota reservation goes once the models count the
				// execution (at once when it settled: its end was applied).
				b.awaitModels(ctx, seq)
				held.Release()
			}
		}}, nil
}

// durable waits for the append that queued an execution (nil: it was in
// the log already) to be durable.
func durable(ctx context.Context, kernelID string, queued *events.Pending) error {
	if queued == nil {
		return nil
	}
	if _, err := queued.Wait(ctx); err != nil {
		return fmt.Errorf("submit to kernel %s: %w", kernelID, err)
	}
	return nil
}

// submit checks and reserves, then hands the execution to its kernel's
// scheduler; queued is the append that queued it, maybe not durable yet
// (nil for an id already in the log). The caller releases the reservation
// (nil without quotas) once the models reflect the submit.
func (b *backend) submit(ctx context.Context, req mcpserver.SubmitRequest) (x scheduler.Execution, queued *events.Pending, held *reservation, err error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return x, nil, nil, err
	}
	if err := b.access.require(p, req.KernelID, auth.AccessExecute, func() error { return unknownKernel(req.KernelID) }); err != nil {
		return x, nil, nil, err
	}
	if err := b.own.held(req.KernelID); err != nil {
		return x, nil, nil, err
	}
	if err := b.refuse(); err != nil {
		return x, nil, nil, err
	}
	if req.ExecutionID == "" {
		// NB: chosen here, so the quota sees the execution in the model
		// the moment it is queued.
		req.ExecutionID = events.NewID(time.Now())
	}
	if b.quotas != nil {
		if held, err = b.quotas.reserveQueued(p, req.ExecutionID); err != nil {
			return x, nil, nil, err
		}
	}
	x, queued, err = b.sys.SubmitAsync(ctx, req.KernelID, scheduler.Submit{ExecutionID: req.ExecutionID, Code: req.Code,
		AllowStdin: req.AllowStdin, Notebook: req.Notebook, CellID: req.CellID, By: p.Name})
	if err != nil {
		held.Release()
		return x, nil, nil, b.hideForeignKernel(p, err)
	}
	return x, queued, held, nil
}

// hideForeignKernel rewrites an "execution id already used" error from the
// system so that it names the other kernel only to a caller that may read
// it: the log (not a read model, which drops old executions and lags new
// ones) decides that the id is taken, the edge decides what to tell.
func (b *backend) hideForeignKernel(p auth.Principal, err error) error {
	var used *system.ExecutionIDUsedError
	if errors.As(err, &used) && !b.access.canRead(p, used.KernelID) {
		return fmt.Errorf("execution id %q is already used: choose another id", used.ExecutionID)
	}
	return err
}

// accepted is the read model's view of an execution the scheduler queued
// (and maybe started), for one the model no longer holds in memory.
func accepted(x scheduler.Execution) queue.Execution {
	st := queue.StatusQueued
	if x.Started() && x.Behind == "" {
		st = queue.StatusRunning // NB: a pipelined one waits behind another
	}
	return queue.Execution{ID: x.ID, KernelID: x.KernelID, Code: x.Code, AllowStdin: x.AllowStdin, Notebook: x.Notebook,
		CellID: x.CellID, By: x.By, Origin: x.Origin, Status: st, MsgID: x.MsgID, Behind: x.Behind, QueuedAt: x.QueuedAt, StartedAt: x.StartedAt, LastSeq: x.LastSeq}
}

// Execution answers from the execution read model: what is new since the
// cursor, and a channel closed when this execution (only it) changes.
// An execution of a kernel the caller cannot read answers as an unknown
// id, word for word.
func (b *backend) Execution(ctx context.Context, id string, since uint64) (mcpserver.ExecutionView, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return mcpserver.ExecutionView{}, err
	}
	if !p.IsAdmin() {
		// NB: access first: nothing of another principal's execution (its
		// outputs, an error reading them) is read for a caller who may not
		// see it.
		kernel, err := b.execs.KernelOf(ctx, id)
		if errors.Is(err, executions.ErrUnknown) || err == nil && !b.access.canRead(p, kernel) {
			return mcpserver.ExecutionView{}, b.unknownExecution(id)
		}
		if err != nil {
			return mcpserver.ExecutionView{}, err
		}
	}
	v, err := b.execs.Read(ctx, id, since)
	if err != nil {
		if errors.Is(err, executions.ErrUnknown) {
			return mcpserver.ExecutionView{}, b.unknownExecution(id)
		}
		return mcpserver.ExecutionView{}, err
	}
	if !b.access.canRead(p, v.Execution.KernelID) {
		return mcpserver.ExecutionView{}, b.unknownExecution(id)
	}
	return mcpserver.ExecutionView{Execution: v.Execution, Outputs: v.Outputs, Cursor: v.Cursor, Changed: v.Changed, More: v.More,
		RestoreNotice: b.executionRestoreNotice(ctx, v.Execution)}, nil
}

// unknownExecution is the error for an execution id the models do not know
// — and for one of a kernel the caller may not read.
func (b *backend) unknownExecution(id string) error {
	if b.older != nil {
		if err := b.older(id); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w %q: list_executions shows the ids", system.ErrUnknownExecution, id)
}

// Executions lists the executions of the kernels the caller may read.
func (b *backend) Executions(ctx context.Context, kernelID string, status queue.Status) ([]queue.Execution, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if kernelID != "" && !b.access.canRead(p, kernelID) {
		return nil, nil // NB: as for a kernel nobody knows
	}
	if p.IsAdmin() || kernelID != "" {
		return b.queue.List(kernelID, status), nil
	}
	// NB: the kernels p may read, each from the model's per-kernel index:
	// the cost is p's executions, not everyone's.
	var out []queue.Execution
	for _, k := range b.access.visibleKernels(p) {
		out = append(out, b.queue.List(k.ID, status)...)
	}
	slices.SortFunc(out, func(a, b queue.Execution) int { return cmp.Compare(a.QueuedSeq, b.QueuedSeq) })
	return out, nil
}

func (b *backend) CancelExecution(ctx context.Context, id string) (mcpserver.CancelPath, error) {
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return 0, err
	}
	by, err := b.may(ctx, v.Execution.KernelID, auth.AccessExecute)
	if err != nil {
		return 0, err
	}
	path, err := b.sys.Cancel(ctx, v.Execution.KernelID, id, by)
	if err := b.settle(ctx, err); err != nil {
		return 0, err
	}
	if path == system.CancelAbortRequested {
		return mcpserver.CancelAbortRequested, nil
	}
	return mcpserver.CancelWithdrawn, nil
}

func (b *backend) SendInput(ctx context.Context, id, value string) error {
	v, err := b.Execution(ctx, id, ^uint64(0))
	if err != nil {
		return err
	}
	by, err := b.may(ctx, v.Execution.KernelID, auth.AccessExecute)
	if err != nil {
		return err
	}
	if v.Execution.Status != queue.StatusInputRequired {
		return fmt.Errorf("execution %s is %s, not waiting for input", id, v.Execution.Status)
	}
	return b.settle(ctx, b.sys.SendInput(ctx, v.Execution.KernelID, id, value, by))
}

// ShareKernel grants principal read or execute on kernel id (none
// withdraws it); the caller must own it or be an admin.
func (b *backend) ShareKernel(ctx context.Context, id, principal string, access auth.Access) error {
	by, err := b.may(ctx, id, auth.AccessManage)
	if err != nil {
		return err
	}
	if err := b.shareable(id, principal, access); err != nil {
		return err
	}
	st, err := b.sys.ShareKernel(ctx, id, by, principal, access.String())
	if err != nil {
		return err
	}
	return b.sync(ctx, st.LastSeq)
}

// shareable refuses a share that could not mean what the owner wants: with
// the admin or the owner (who have it all already), or with a name that is
// no principal of the token store (a typo would share with nobody — or
// with whoever is given that name later). OAuth subjects cannot be listed:
// "oidc:<sub>" names are taken as given. Withdrawing (none) is always
// accepted, for a revoked or removed principal too.
func (b *backend) shareable(id, principal string, access auth.Access) error {
	if access == auth.AccessNone {
		return nil
	}
	if principal == auth.AdminName {
		return errors.New("the admin reads and manages every kernel already: there is nothing to share with it")
	}
	if owner := b.access.owner(id); principal == owner {
		return fmt.Errorf("%s owns kernel %s: there is nothing to share with it", principal, id)
	}
	if sub, ok := strings.CutPrefix(principal, "oidc:"); ok {
		if sub == "" {
			return errors.New(`principal "oidc:" names no subject: give oidc:<sub>, the subject of the OAuth token`)
		}
		return nil
	}
	if err := auth.ValidateName(principal); err != nil {
		return err
	}
	if b.principals == nil {
		return nil
	}
	recs, err := b.principals()
	if err != nil {
		return fmt.Errorf("read the principals to check %q: %w", principal, err)
	}
	for _, r := range recs {
		if r.Name == principal {
			if !r.Active() {
				return fmt.Errorf("principal %q is revoked: its token no longer works; share with an active principal (mcp-jupyter principal list)", principal)
			}
			return nil
		}
	}
	return fmt.Errorf("no principal %q: `mcp-jupyter principal list` shows the names (OAuth subjects are oidc:<sub>)", principal)
}
