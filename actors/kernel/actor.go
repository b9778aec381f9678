package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Deps are what a kernel actor needs from outside.
type Deps struct {
	Log      actors.Log
	Launcher Launcher
	Logger   *slog.Logger
	// OpTimeout bounds a start, restart, attach or shutdown (default 60 s).
	OpTimeout time.Duration
}

// Actor is the protoactor shell around one kernel's State.
type Actor struct {
	id    string
	deps  Deps
	state State

	// Listener receives Ready, Stopped and ExecutionEnded (the scheduler).
	listener *actor.PID

	conn   Conn
	pump   *pump
	cancel context.CancelFunc

	// op names the lifecycle operation in progress ("starting", ...): other
	// lifecycle commands are refused until it ends.
	op      string
	opReply *actor.PID
	running string // the execution sent and not yet ended
}

// Props returns the props of kernel id's actor, reporting to listener.
func Props(id string, deps Deps, listener *actor.PID) *actor.Props {
	if deps.OpTimeout <= 0 {
		deps.OpTimeout = 60 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Logger = deps.Logger.With("component", "kernel", "kernel_id", id)
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{id: id, deps: deps, listener: listener} })
}

// internal messages, from goroutines the actor owns
type (
	launchDone struct {
		cmd      Start
		conn     Conn
		launched Launched
		err      error
	}
	attachDone struct {
		conn Conn
		err  error
	}
	restartDone struct {
		conn     Conn
		launched Launched
		err      error
	}
	shutdownDone struct {
		forced bool
		err    error
	}
)

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.recover(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.release()
	case Start:
		a.start(ctx, m)
	case launchDone:
		a.launched(ctx, m)
	case attachDone:
		a.attached(ctx, m)
	case Execute:
		ctx.Respond(ExecuteResult{ExecutionID: m.ExecutionID, Err: a.execute(m)})
	case Resume:
		a.resume(m)
	case Interrupt:
		a.interrupt(ctx)
	case Restart:
		a.restart(ctx)
	case restartDone:
		a.restarted(ctx, m)
	case Shutdown:
		a.shutdown(ctx, m)
	case shutdownDone:
		a.shutDown(ctx, m)
	case SendInput:
		a.sendInput(ctx, m)
	case GetState:
		ctx.Respond(Result{State: a.state})
	case ended:
		if a.running == m.execID {
			a.running = ""
		}
		a.notify(ctx, ExecutionEnded{ExecutionID: m.execID, Status: m.status})
	case pumpStopped:
		a.pumpStopped(ctx, m)
	}
}

func (a *Actor) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.deps.OpTimeout)
}

// append makes drafts durable and applies them. On a log failure the actor
// panics so that supervision rebuilds it from the log: a storage error makes
// the instance inoperable.
func (a *Actor) append(drafts ...events.Draft) {
	ctx, cancel := a.opContext()
	defer cancel()
	evs, err := a.deps.Log.Append(ctx, drafts...)
	if err != nil {
		panic(fmt.Errorf("kernel %s: append: %w", a.id, err))
	}
	for _, e := range evs {
		if e.Stream == events.KernelStream(a.id) {
			a.state = Apply(a.state, e)
		}
	}
}

// catchUp folds events other writers (the pump) appended to the stream.
func (a *Actor) catchUp() {
	ctx, cancel := a.opContext()
	defer cancel()
	s, _, err := actors.Recover(ctx, a.deps.Log, events.KernelStream(a.id), a.state, a.state.LastSeq, Apply)
	if err != nil {
		panic(err)
	}
	a.state = s
}

func (a *Actor) recover(ctx actor.Context) {
	a.catchUp()
	if a.state.Status != StatusRunning {
		return
	}
	// The log says the kernel runs: find it again.
	a.op = "attaching"
	proc := a.state.Process
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		conn, err := a.deps.Launcher.Attach(octx, a.id, proc)
		root.Send(self, attachDone{conn: conn, err: err})
	}()
}

func (a *Actor) attached(ctx actor.Context, m attachDone) {
	a.op = ""
	if m.err != nil {
		a.append(draft(a.id, events.KernelLost{KernelID: a.id, Reason: m.err.Error()}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		return
	}
	a.append(draft(a.id, events.KernelReattached{KernelID: a.id, Pid: a.state.Process.Pid}))
	a.adopt(ctx, m.conn)
	a.notify(ctx, Ready{Reattached: true})
}

// beginOp starts a lifecycle operation if the decision allows it and no
// other one is in progress; otherwise it answers the sender and reports
// false.
func (a *Actor) beginOp(ctx actor.Context, op string, refused error) bool {
	if refused == nil && a.op != "" {
		refused = fmt.Errorf("%w: kernel %s is %s", ErrNotRunning, a.id, a.op)
	}
	if refused != nil {
		ctx.Respond(Result{State: a.state, Err: refused})
		return false
	}
	a.op, a.opReply = op, ctx.Sender()
	return true
}

func (a *Actor) start(ctx actor.Context, cmd Start) {
	if !a.beginOp(ctx, "starting", DecideStart(a.state)) {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		conn, l, err := a.deps.Launcher.Launch(octx, a.id, cmd.Spec)
		root.Send(self, launchDone{cmd: cmd, conn: conn, launched: l, err: err})
	}()
}

func (a *Actor) launched(ctx actor.Context, m launchDone) {
	a.op = ""
	a.append(StartedEvents(a.id, m.cmd, m.launched, m.err, stderrTail(m.err))...)
	if m.err == nil {
		a.adopt(ctx, m.conn)
		a.notify(ctx, Ready{})
	}
	a.reply(ctx, Result{State: a.state, Err: m.err})
}

func stderrTail(err error) string {
	var t interface{ Tail() string }
	if errors.As(err, &t) {
		return t.Tail()
	}
	return ""
}

// adopt makes conn the kernel's connection and starts its pump.
func (a *Actor) adopt(ctx actor.Context, conn Conn) {
	pctx, cancel := context.WithCancel(context.Background())
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.conn, a.cancel = conn, cancel
	a.pump = startPump(pctx, a.id, a.deps.Log, conn, a.deps.Logger, func(msg any) { root.Send(self, msg) })
}

// release stops the pump and lets go of the connection; the kernel keeps
// running (kernels outlive the server).
func (a *Actor) release() {
	if a.conn == nil {
		return
	}
	_ = a.conn.Close()
	a.cancel()
	<-a.pump.done
	a.conn, a.pump, a.cancel = nil, nil, nil
}

func (a *Actor) execute(m Execute) error {
	if !a.state.Status.Alive() || a.conn == nil {
		return notRunning(a.state)
	}
	if a.op != "" {
		return fmt.Errorf("%w: kernel %s is %s", ErrNotRunning, a.id, a.op)
	}
	if a.running != "" {
		return fmt.Errorf("%w: %s", ErrBusy, a.running)
	}
	a.pump.expect(m.MsgID, m.ExecutionID)
	content := map[string]any{"code": m.Code, "silent": false, "store_history": true, "user_expressions": map[string]any{},
		"allow_stdin": m.AllowStdin, "stop_on_error": false}
	if err := a.conn.Send(ChannelShell, "execute_request", m.MsgID, content); err != nil {
		a.pump.forget(m.MsgID)
		return fmt.Errorf("send execute_request to kernel %s: %w", a.id, err)
	}
	a.running = m.ExecutionID
	return nil
}

func (a *Actor) resume(m Resume) {
	if a.conn == nil {
		return
	}
	barrier := events.NewID(time.Now())
	a.pump.resume(m.MsgID, m.ExecutionID, barrier)
	a.running = m.ExecutionID
	// The barrier: a kernel_info_request on shell is answered only after the
	// running execution's reply, so if its reply comes first the execution
	// was already over before we re-attached.
	if err := a.conn.Send(ChannelShell, "kernel_info_request", barrier, nil); err != nil {
		a.deps.Logger.Warn("send resume barrier", "err", err)
	}
}

func (a *Actor) interrupt(ctx actor.Context) {
	drafts, err := DecideInterrupt(a.state)
	if err == nil && a.conn == nil {
		err = notRunning(a.state)
	}
	if err != nil {
		ctx.Respond(Result{State: a.state, Err: err})
		return
	}
	if err := a.conn.Interrupt(); err != nil {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("interrupt kernel %s: %w", a.id, err)})
		return
	}
	a.append(drafts...)
	ctx.Respond(Result{State: a.state})
}

func (a *Actor) restart(ctx actor.Context) {
	if !a.beginOp(ctx, "restarting", DecideRestart(a.state)) {
		return
	}
	a.notify(ctx, Stopped{Status: StatusRunning, Reason: "restarting"})
	old, oldProc, spec := a.conn, a.state.Process, a.state.Spec
	if a.pump != nil {
		a.pump.setExpectExit()
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		if old != nil {
			if _, err := old.Shutdown(octx); err != nil {
				root.Send(self, restartDone{err: fmt.Errorf("stop kernel for restart: %w", err)})
				return
			}
		} else {
			_ = a.deps.Launcher.Kill(oldProc)
		}
		conn, l, err := a.deps.Launcher.Launch(octx, a.id, spec)
		root.Send(self, restartDone{conn: conn, launched: l, err: err})
	}()
}

func (a *Actor) restarted(ctx actor.Context, m restartDone) {
	a.op = ""
	if a.pump != nil {
		<-a.pump.done // the old pump recorded the old process's in-flight work
		a.release()
		a.catchUp()
	}
	if m.err != nil {
		a.append(draft(a.id, events.KernelDied{KernelID: a.id, Reason: "restart failed: " + m.err.Error(), StderrTail: stderrTail(m.err)}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		a.reply(ctx, Result{State: a.state, Err: m.err})
		return
	}
	a.append(draft(a.id, events.KernelRestarted{KernelID: a.id, Process: m.launched.Process}))
	a.running = ""
	a.adopt(ctx, m.conn)
	a.notify(ctx, Ready{})
	a.reply(ctx, Result{State: a.state})
}

func (a *Actor) shutdown(ctx actor.Context, m Shutdown) {
	if !a.beginOp(ctx, "shutting down", DecideShutdown(a.state)) {
		return
	}
	conn, proc := a.conn, a.state.Process
	if a.pump != nil {
		a.pump.setExpectExit()
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		if conn == nil {
			err := a.deps.Launcher.Kill(proc)
			root.Send(self, shutdownDone{forced: true, err: err})
			return
		}
		forced, err := conn.Shutdown(octx)
		root.Send(self, shutdownDone{forced: forced, err: err})
	}()
}

func (a *Actor) shutDown(ctx actor.Context, m shutdownDone) {
	a.op = ""
	if a.pump != nil {
		<-a.pump.done
		a.release()
		a.catchUp()
	}
	if m.err != nil && a.state.Status.Alive() {
		a.reply(ctx, Result{State: a.state, Err: fmt.Errorf("shut down kernel %s: %w", a.id, m.err)})
		return
	}
	a.append(draft(a.id, events.KernelShutDown{KernelID: a.id, Forced: m.forced, Reason: "requested"}))
	a.running = ""
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: "shut down"})
	a.reply(ctx, Result{State: a.state})
}

func (a *Actor) sendInput(ctx actor.Context, m SendInput) {
	if a.conn == nil || a.running != m.ExecutionID {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("execution %s is not running on kernel %s", m.ExecutionID, a.id)})
		return
	}
	if err := a.conn.Send(ChannelStdin, "input_reply", events.NewID(time.Now()), map[string]string{"value": m.Value}); err != nil {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("send input to kernel %s: %w", a.id, err)})
		return
	}
	a.append(events.Draft{Stream: events.ExecutionStream(m.ExecutionID), Kernel: a.id,
		Payload: events.ExecutionInputSent{ExecutionID: m.ExecutionID}})
	ctx.Respond(Result{State: a.state})
}

func (a *Actor) pumpStopped(ctx actor.Context, m pumpStopped) {
	if m.conn != a.conn {
		return // a pump of a connection already replaced
	}
	if m.err != nil {
		panic(fmt.Errorf("kernel %s: %w", a.id, m.err))
	}
	if a.op != "" {
		return // restart or shutdown in progress handles it
	}
	a.release()
	a.catchUp()
	a.running = ""
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
}

func (a *Actor) notify(ctx actor.Context, msg any) {
	if a.listener != nil {
		ctx.Send(a.listener, msg)
	}
}

func (a *Actor) reply(ctx actor.Context, r Result) {
	if a.opReply != nil {
		ctx.Send(a.opReply, r)
		a.opReply = nil
	}
}
