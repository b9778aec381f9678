package kernel

import (
	"context"
	"errors"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// In a cluster an execute_request leaves only once the cluster's history
// holds the execution's ExecutionStarted (Deps.ConfirmStarted): a node that
// takes the kernel over then knows it started, records it lost and never
// runs it again (at most once). Had it left on the local write path alone,
// an owner dying before the history acknowledged the record would leave
// the new owner a queued execution, which it would run a second time.
//
// The wait never blocks the mailbox: a goroutine the actor owns waits and
// reports back (startConfirmed). The execution counts as running meanwhile
// (Ready, ErrBusy and the pipeline see it), and the waiting ones leave in
// the order they came, so a pipelined one never overtakes the one it is
// behind. There is no timeout: while the history does not acknowledge (no
// quorum), the execution stays started and unsent and the kernel's queue
// waits; if this node is cut off, another takes the kernel over from the
// history it has, where the execution is queued (or started, then lost),
// and this node's actors are disowned before anything is sent.

// gatedExec is an execution whose ExecutionStarted the history has not
// confirmed yet.
type gatedExec struct {
	m         Execute
	to        *actor.PID // answered with ExecuteResult once sent or lost
	conn      Conn       // the connection it was meant for
	confirmed bool
}

// startConfirmed: the wait for an execution's ExecutionStarted ended
// (err nil: the history holds it).
type startConfirmed struct {
	execID string
	err    error
}

// gate holds m until the history confirms its ExecutionStarted; it is
// checked as a send would be first, so what cannot be sent is lost at once.
func (a *Actor) gate(ctx actor.Context, m Execute) {
	if err := a.sendable(m); err != nil {
		a.lose(ctx, m.ExecutionID, m.By, "could not be sent to the kernel: "+err.Error())
		ctx.Respond(ExecuteResult{ExecutionID: m.ExecutionID, Err: err})
		return
	}
	a.running = append(a.running, m.ExecutionID)
	a.gated = append(a.gated, gatedExec{m: m, to: ctx.Sender(), conn: a.conn})
	if a.gateCancel == nil {
		a.gateCtx, a.gateCancel = context.WithCancel(context.Background())
	}
	// NB: owned: the actor's Stopping/Restarting cancels gateCtx, and
	// ConfirmStarted returns when its ctx ends.
	gctx, confirm, self, root := a.gateCtx, a.deps.ConfirmStarted, ctx.Self(), ctx.ActorSystem().Root
	kernelID, execID, seq := a.id, m.ExecutionID, m.Seq
	go func() { root.Send(self, startConfirmed{execID: execID, err: confirm(gctx, kernelID, seq)}) }()
}

// confirmedStart sends the executions confirmed at the head of the line.
func (a *Actor) confirmedStart(ctx actor.Context, m startConfirmed) {
	i := slices.IndexFunc(a.gated, func(g gatedExec) bool { return g.m.ExecutionID == m.execID })
	if i < 0 {
		return // cancelled meanwhile
	}
	if m.err != nil {
		// NB: only when the actor stops (its ctx ended): nothing sent,
		// nothing recorded; recovery finds it started.
		a.deps.Logger.Warn("an execution's start was not confirmed by the cluster history; not sent", "execution_id", m.execID, "err", m.err)
		return
	}
	a.gated[i].confirmed = true
	for len(a.gated) > 0 && a.gated[0].confirmed {
		g := a.gated[0]
		a.gated = a.gated[1:]
		// NB: the waiting ones are the tail of running (the line is in
		// order): without them, send's checks see what the kernel has,
		// and a sent one goes back before them.
		var rest []string
		for _, w := range a.gated {
			rest = append(rest, w.m.ExecutionID)
		}
		a.running = slices.DeleteFunc(a.running, func(id string) bool { return id == g.m.ExecutionID || slices.Contains(rest, id) })
		var err error
		if g.conn != a.conn {
			err = errRestartedWhileGated
		} else {
			err = a.send(g.m)
		}
		a.running = append(a.running, rest...)
		if err != nil {
			a.lose(ctx, g.m.ExecutionID, g.m.By, "could not be sent to the kernel: "+err.Error())
		}
		if g.to != nil {
			ctx.Send(g.to, ExecuteResult{ExecutionID: g.m.ExecutionID, Err: err})
		}
	}
}

// abortGated cancels a pipelined execution not sent yet: the kernel never
// saw it. It reports whether m named one.
func (a *Actor) abortGated(ctx actor.Context, m Abort) bool {
	i := slices.IndexFunc(a.gated, func(g gatedExec) bool { return g.m.ExecutionID == m.ExecutionID })
	if i < 0 {
		return false
	}
	g := a.gated[i]
	a.gated = slices.Delete(a.gated, i, i+1)
	a.running = slices.DeleteFunc(a.running, func(id string) bool { return id == m.ExecutionID })
	a.appendAsync(events.Draft{Stream: events.ExecutionStream(m.ExecutionID), Kernel: a.id, Principal: m.By,
		Payload: events.ExecutionCancelled{ExecutionID: m.ExecutionID, Reason: m.Reason}})
	a.notify(ctx, ExecutionEnded{ExecutionID: m.ExecutionID, Status: "cancelled"})
	if g.to != nil {
		ctx.Send(g.to, ExecuteResult{ExecutionID: m.ExecutionID, Err: ErrCancelledWhileGated})
	}
	ctx.Respond(Result{State: a.state})
	return true
}

// interruptGated ends the running execution if it is still waiting: the
// kernel never saw it, so the interrupt meant for it must stop it here
// (the one pipelined behind it goes on, as after a real interrupt).
func (a *Actor) interruptGated(ctx actor.Context, by string) {
	if len(a.gated) == 0 || a.first() != a.gated[0].m.ExecutionID {
		return
	}
	g := a.gated[0]
	a.gated = a.gated[1:]
	a.running = a.running[1:]
	a.appendAsync(events.Draft{Stream: events.ExecutionStream(g.m.ExecutionID), Kernel: a.id, Principal: by,
		Payload: events.ExecutionInterrupted{ExecutionID: g.m.ExecutionID}})
	a.notify(ctx, ExecutionEnded{ExecutionID: g.m.ExecutionID, Status: "interrupted"})
	if g.to != nil {
		ctx.Send(g.to, ExecuteResult{ExecutionID: g.m.ExecutionID, Err: ErrInterruptedWhileGated})
	}
}

// stopGates ends the waits of this instance (Stopping, Restarting).
func (a *Actor) stopGates() {
	if a.gateCancel != nil {
		a.gateCancel()
		a.gateCancel = nil
	}
}

var (
	// errRestartedWhileGated: the kernel's process changed (restart,
	// death) while the execution waited for the history.
	errRestartedWhileGated = errors.New("the kernel restarted or stopped while this node waited for the cluster history to record the execution's start")
	// ErrCancelledWhileGated answers an Execute cancelled before it was
	// sent (the kernel never saw it).
	ErrCancelledWhileGated = errors.New("kernel: cancelled before it was sent (waiting for the cluster history)")
	// ErrInterruptedWhileGated answers an Execute interrupted before it
	// was sent.
	ErrInterruptedWhileGated = errors.New("kernel: interrupted before it was sent (waiting for the cluster history)")
)
