package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Deps are what a scheduler needs from outside.
type Deps struct {
	Log    actors.Log
	Logger *slog.Logger
	// MaxQueue bounds the executions waiting per kernel (default 1000).
	MaxQueue int
	// Recovered is the kernel's queue as the read model has it after
	// replay (zero for a new kernel).
	Recovered State
}

// Commands, answered with SubmitResult / CancelResult.
type (
	// SetKernel tells the scheduler its kernel actor.
	SetKernel struct{ PID *actor.PID }
	Cancel    struct{ ExecutionID, Reason string }
	// Snapshot is answered with the State.
	Snapshot struct{}
)

// SubmitResult answers Submit.
type SubmitResult struct {
	Execution queue.Execution
	Err       error
}

// CancelResult answers Cancel.
type CancelResult struct{ Err error }

// Actor is the protoactor shell of one kernel's scheduler.
type Actor struct {
	deps   Deps
	state  State
	kernel *actor.PID
	ready  bool // the kernel can take executions
	gone   string
	// sent is true while the active execution's Execute is with the kernel.
	sent bool
}

// Props returns the props of kernel id's scheduler.
func Props(id string, deps Deps) *actor.Props {
	if deps.MaxQueue <= 0 {
		deps.MaxQueue = 1000
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Logger = deps.Logger.With("component", "scheduler", "kernel_id", id)
	deps.Recovered.KernelID = id
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{deps: deps, state: deps.Recovered} })
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case SetKernel:
		a.kernel = m.PID
	case Submit:
		ctx.Respond(a.submit(ctx, m))
	case Cancel:
		drafts, err := DecideCancel(a.state, m.ExecutionID, m.Reason)
		if err == nil {
			a.append(drafts)
		}
		ctx.Respond(CancelResult{Err: err})
	case Snapshot:
		ctx.Respond(a.state)
	case kernel.Ready:
		a.ready, a.gone = true, ""
		a.kernelReady(ctx, m)
	case kernel.Stopped:
		a.ready, a.sent = false, false
		if m.Status != kernel.StatusRunning { // running: a restart is under way
			a.gone = fmt.Sprintf("kernel %s is %s (%s)", a.state.KernelID, m.Status, m.Reason)
			if a.state.Active != nil {
				a.catchUp(a.state.Active.ID) // the kernel side recorded its end
			}
			a.append(DecideLoseAll(a.state, a.gone))
		}
	case kernel.ExecutionEnded:
		if a.state.Active != nil && a.state.Active.ID == m.ExecutionID {
			a.catchUp(m.ExecutionID)
		}
		a.sent = false
		a.next(ctx)
	case kernel.ExecuteResult:
		if m.Err != nil && a.state.Active != nil && a.state.Active.ID == m.ExecutionID {
			a.sent = false
			a.append([]events.Draft{{Stream: events.ExecutionStream(m.ExecutionID), Kernel: a.state.KernelID,
				Payload: events.ExecutionLost{ExecutionID: m.ExecutionID, Reason: "could not be sent to the kernel: " + m.Err.Error()}}})
			a.next(ctx)
		}
	}
}

func (a *Actor) submit(ctx actor.Context, c Submit) SubmitResult {
	if a.gone != "" && !a.ready {
		return SubmitResult{Err: fmt.Errorf("%w: %s", ErrKernelGone, a.gone)}
	}
	msgID := events.NewID(time.Now())
	drafts, err := DecideSubmit(a.state, c, a.deps.MaxQueue, a.ready && !a.sent, msgID)
	if err != nil {
		return SubmitResult{Err: err}
	}
	a.append(drafts)
	x := a.find(c.ExecutionID)
	if len(drafts) > 1 {
		a.send(ctx, x)
	}
	return SubmitResult{Execution: x}
}

func (a *Actor) find(id string) queue.Execution {
	if a.state.Active != nil && a.state.Active.ID == id {
		return *a.state.Active
	}
	for _, x := range a.state.Pending {
		if x.ID == id {
			return x
		}
	}
	return queue.Execution{ID: id, KernelID: a.state.KernelID}
}

func (a *Actor) kernelReady(ctx actor.Context, m kernel.Ready) {
	if act := a.state.Active; act != nil {
		if m.Reattached && act.MsgID != "" {
			// Running when the server stopped: re-adopt it, never resend.
			ctx.Send(a.kernel, kernel.Resume{ExecutionID: act.ID, MsgID: act.MsgID})
			a.sent = true
			return
		}
		// A fresh process (restart) cannot finish what the old one ran;
		// the kernel actor recorded it lost.
		a.catchUp(act.ID)
	}
	a.next(ctx)
}

// catchUp folds the final events the kernel side appended for an execution.
func (a *Actor) catchUp(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var x queue.Execution
	if a.state.Active != nil && a.state.Active.ID == id {
		x = *a.state.Active
	}
	err := a.deps.Log.ReadStream(ctx, events.ExecutionStream(id), x.LastSeq, func(e events.Event) error {
		if queue.IsExecutionEvent(e.Type) {
			a.state = Apply(a.state, e)
		}
		return nil
	})
	if err != nil {
		panic(fmt.Errorf("scheduler %s: read execution %s: %w", a.state.KernelID, id, err))
	}
}

func (a *Actor) next(ctx actor.Context) {
	if !a.ready || a.sent || a.state.Active != nil {
		return
	}
	drafts := DecideNext(a.state, events.NewID(time.Now()))
	if drafts == nil {
		return
	}
	a.append(drafts)
	a.send(ctx, *a.state.Active)
}

func (a *Actor) send(ctx actor.Context, x queue.Execution) {
	a.sent = true
	ctx.Request(a.kernel, kernel.Execute{ExecutionID: x.ID, MsgID: x.MsgID, Code: x.Code, AllowStdin: x.AllowStdin})
}

// append makes drafts durable and applies them; a log failure stops the
// actor (supervision rebuilds it).
func (a *Actor) append(drafts []events.Draft) {
	if len(drafts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evs, err := a.deps.Log.Append(ctx, drafts...)
	if err != nil {
		panic(fmt.Errorf("scheduler %s: append: %w", a.state.KernelID, err))
	}
	for _, e := range evs {
		a.state = Apply(a.state, e)
	}
}
