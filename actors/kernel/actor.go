package kernel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
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
	// PanicOn, for tests only, makes the actor panic on the messages it
	// selects, as a crash in the middle of work would.
	PanicOn func(msg any) bool
	// Faults, in the kill -9 tests, kills the process at this actor's
	// fault points (infra/fault); nil in production.
	Faults actors.Faults
	// Written is shared with the kernel's scheduler: a (re)started actor
	// waits for the appends either put in the write path before it reads
	// the log (nil: Props makes one for this actor's instances).
	Written *actors.Written
	// AutoRestore: a kernel the log says runs, whose process cannot be
	// re-attached at recovery, is relaunched under its id (same kernelspec
	// and owner) instead of being recorded lost (see relaunch).
	AutoRestore bool
	// RestoreName names the checkpoint a relaunched kernel is restored
	// from (KernelRestarted.Restore); nil or "": none, and no hold.
	RestoreName func(kernelID string) string
	// Node is this node's name in a cluster ("" on a single server: every
	// record of the log is then the server's own, whatever its Node). A
	// kernel whose recorded process is another node's is never attached
	// to nor signalled (see takeOver).
	Node string
	// Adopt, set by System.Adopt, takes over a kernel whose process is
	// another node's: the actor appends KernelAdopted and relaunches it
	// (nil: such a kernel is left alone, nothing recorded).
	Adopt *AdoptFrom
	// AbortReplyTimeout bounds the wait for the kernel's abort_reply before
	// an Abort is answered anyway (default AbortReplyTimeout).
	AbortReplyTimeout time.Duration
	// ConfirmStarted, in a cluster, returns once the cluster's history
	// holds this node's record at log sequence seq (an execution's
	// ExecutionStarted) and the node still owns kernelID, or with ctx's
	// error: an execute_request leaves only after it (gate.go). Nil on a
	// single server: sent as soon as the start is in the write path.
	ConfirmStarted func(ctx context.Context, kernelID string, seq uint64) error

	// relaunching is held (a one-slot semaphore shared by the actor's
	// instances, made by Props) while a relaunch stops and starts the
	// kernel's process: an instance rebuilt mid-relaunch starts its own
	// only once the crashed one's has ended, so two launches never share
	// the kernel's directory.
	relaunching chan struct{}
}

// AdoptFrom is why a node takes a kernel over (KernelAdopted's From,
// Reason and Through).
type AdoptFrom struct {
	From, Reason string
	// Through is the newest of From's records imported before the
	// adoption (KernelAdopted.Through).
	Through uint64
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
	// out is what the current connection has in flight (output.go).
	out OutputState
	// expectExit is set when the actor itself stops the kernel (shutdown,
	// restart): the connection's end is then not a death.
	expectExit bool

	// op names the lifecycle operation in progress ("starting", ...): other
	// lifecycle commands are refused until it ends.
	op      string
	opReply *actor.PID
	opBy    string // the principal whose command the operation carries out
	// opShutdown is the Shutdown being carried out (its reason, a cull).
	opShutdown Shutdown
	// running are the executions sent and not yet ended, in the order
	// sent: the running one and, pipelined behind it, at most one more.
	running []string
	// pipeline: the kernel honours abort_request (ipykernel), so the next
	// execution may be sent behind the running one.
	pipeline bool
	// pumpStart starts the pump of a connection held unread (adoptHeld).
	pumpStart func()
	// frontends are the frontend sessions this instance recorded
	// (FrontendAttached once per session and incarnation; bounded).
	frontends seenFrontends
	// relayRepliesLost counts replies to relayed requests dropped because
	// the asker's channel was full.
	relayRepliesLost int
	// disowned: another node took the kernel over (Disown); nothing is
	// recorded or sent any more.
	disowned bool
	// aborts are the Aborts sent and not yet answered, by the
	// abort_request's msg_id (at most MaxRelays: they wait as relays).
	aborts map[string]pendingAbort
	// gated are the executions started and not sent yet, waiting for
	// ConfirmStarted, in the order they came (at most two: the running
	// one and the one pipelined behind it; gate.go). gateCtx ends their
	// waits when this instance stops.
	gated      []gatedExec
	gateCtx    context.Context
	gateCancel context.CancelFunc
}

// AbortReplyTimeout is how long an Abort waits for the kernel's
// abort_reply (ipykernel answers on its control thread, in milliseconds,
// even while an execution runs) before it is answered without it.
const AbortReplyTimeout = 10 * time.Second

// pendingAbort is an Abort whose abort_request the kernel has not
// acknowledged yet: to is the canceller, replies the relay its
// abort_reply is delivered to.
type pendingAbort struct {
	to      *actor.PID
	replies chan Reply
}

// Implementer is what a Conn tells of its kernel's kernel_info
// implementation ("ipython" for ipykernel); a Conn without it is not
// pipelined.
type Implementer interface{ Implementation() string }

func (a *Actor) isRunning(id string) bool { return slices.Contains(a.running, id) }

func (a *Actor) first() string {
	if len(a.running) == 0 {
		return ""
	}
	return a.running[0]
}

func (a *Actor) pipelined() string {
	if len(a.running) < 2 {
		return ""
	}
	return a.running[1]
}

// ready is the Ready the scheduler is told.
func (a *Actor) ready(r Ready) Ready {
	r.Running, r.Pipelined, r.Pipeline = a.first(), a.pipelined(), a.pipeline
	r.Restore, r.RestoreSeq = a.state.Restore, a.state.RestoreSeq
	return r
}

// Props returns the props of kernel id's actor, reporting to listener.
func Props(id string, deps Deps, listener *actor.PID) *actor.Props {
	if deps.OpTimeout <= 0 {
		deps.OpTimeout = 60 * time.Second
	}
	if deps.AbortReplyTimeout <= 0 {
		deps.AbortReplyTimeout = AbortReplyTimeout
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Logger = deps.Logger.With("kernel_id", id) // NB: the caller's logger names the component
	if deps.Written == nil {
		deps.Written = &actors.Written{}
	}
	deps.relaunching = make(chan struct{}, 1)
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
		by   *Actor // the instance that asked: a crashed one's result is stale
		conn Conn
		err  error
	}
	restartDone struct {
		conn     Conn
		launched Launched
		err      error
	}
	// relaunchDone: the fresh process of a kernel found gone at recovery.
	relaunchDone struct {
		by        *Actor // the instance that asked (see attachDone)
		adopted   *Adoption
		attachErr error
		conn      Conn
		launched  Launched
		err       error
	}
	shutdownDone struct {
		forced bool
		err    error
	}
	// pumpHoldExpired: a held connection (adoptHeld) waited long enough.
	pumpHoldExpired struct{ conn Conn }
	// idleProbeDue: a deferred idle probe's grace (IdleProbeGrace) is over.
	idleProbeDue struct {
		conn  Conn
		probe string
	}
	// abortDue: an abort_request's AbortReplyTimeout is over.
	abortDue struct{ ask string }
)

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.deps.PanicOn != nil && a.deps.PanicOn(ctx.Message()) {
		panic(fmt.Sprintf("kernel %s: test hook: panic on %T", a.id, ctx.Message()))
	}
	if a.disowned {
		a.afterDisown(ctx)
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.recover(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.stopGates()
		a.release()
	case Start:
		a.start(ctx, m)
	case launchDone:
		a.launched(ctx, m)
	case attachDone:
		a.attached(ctx, m)
	case relaunchDone:
		a.relaunched(ctx, m)
	case FinishRestore:
		drafts, err := DecideFinishRestore(a.state, m)
		if err == nil {
			a.append(drafts...)
			a.notify(ctx, RestoreEnded{})
		}
		ctx.Respond(Result{State: a.state, Err: err})
	case Execute:
		if a.deps.ConfirmStarted != nil && m.Seq > 0 {
			a.gate(ctx, m)
			break
		}
		ctx.Respond(ExecuteResult{ExecutionID: m.ExecutionID, Err: a.execute(ctx, m)})
	case startConfirmed:
		a.confirmedStart(ctx, m)
	case Resume:
		a.resume(ctx, m)
	case Reconcile:
		a.reconcile(ctx, m)
	case Abort:
		a.abort(ctx, m)
	case Watch:
		a.watch(ctx)
	case Interrupt:
		a.interrupt(ctx, m)
	case Share:
		a.share(ctx, m)
	case Restart:
		a.restart(ctx, m)
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
	case Disown:
		a.disown(ctx)
	case Relay:
		ctx.Respond(Result{State: a.state, Err: a.relay(m)})
	case AttachFrontend:
		a.attachFrontend(ctx, m)
	case OpenSession:
		drafts, err := DecideOpenSession(a.state, m)
		a.record(ctx, drafts, err)
	case CloseSession:
		drafts, err := DecideCloseSession(a.state, m)
		a.record(ctx, drafts, err)
	case pumpBatch:
		a.output(ctx, m)
	case pumpDied:
		a.died(ctx, m)
	case pumpHoldExpired:
		if m.conn == a.conn {
			a.startPump()
		}
	case abortDue:
		a.abortTimedOut(ctx, m.ask)
	case idleProbeDue:
		if m.conn == a.conn {
			var effs []Effect
			a.out, effs = IdleProbeDue(a.out, m.probe)
			a.perform(ctx, effs)
		}
	}
	// NB: any command from the scheduler or an edge means the re-adoptions
	// it implies are registered: a held connection is read from now on.
	switch ctx.Message().(type) {
	case Reconcile, Resume, Execute, Watch, Interrupt, SendInput, Abort, Restart, Shutdown:
		a.startPump()
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
	var evs []events.Event
	// NB: a log refusing for space stays usable: wait for the space (with a
	// backoff, bounded by OpTimeout) rather than crash into a restart loop.
	err := appendBackoff(ctx.Done(), func() (err error) {
		evs, err = a.deps.Log.Append(ctx, drafts...)
		return err
	})
	if err != nil {
		panic(fmt.Errorf("kernel %s: append: %w", a.id, err))
	}
	for _, e := range evs {
		if e.Stream == events.KernelStream(a.id) {
			a.state = Apply(a.state, e)
		}
	}
}

// appendAsync puts drafts in the log's write path and applies them at
// once, without waiting for their fsync: for what only the kernel and the
// scheduler act on before it is durable (outputs, ends, losses). Nothing a
// user is told rests on it: the projections see only durable events, and a
// crash before the fsync is what recovery (the count probe) is for. A
// failure later makes the log inoperable: the next append fails and the
// actor panics, as append does.
func (a *Actor) appendAsync(drafts ...events.Draft) {
	if len(drafts) == 0 {
		return
	}
	ctx, cancel := a.opContext()
	defer cancel()
	var p *events.Pending
	err := appendBackoff(ctx.Done(), func() (err error) {
		p, err = a.deps.Log.AppendAsync(ctx, drafts...)
		return err
	})
	if err != nil {
		panic(fmt.Errorf("kernel %s: append: %w", a.id, err))
	}
	a.deps.Written.Track(p)
	for _, e := range p.Events() {
		if e.Stream == events.KernelStream(a.id) {
			a.state = Apply(a.state, e)
		}
	}
}

// recover rebuilds the state from the kernel's stream, on every (re)start:
// the producer makes a fresh Actor each time. Replay performs no effect;
// what to do next is derived from the state (re-attach a running kernel,
// tell the scheduler a dead one takes no work).
func (a *Actor) recover(ctx actor.Context) {
	rctx, cancel := a.opContext()
	defer cancel()
	if err := a.deps.Written.Wait(rctx); err != nil {
		panic(fmt.Errorf("kernel %s: recover: wait for appends in the write path: %w", a.id, err))
	}
	s, _, err := actors.Recover(rctx, a.deps.Log, events.KernelStream(a.id), State{}, 0, Apply)
	if err != nil {
		panic(fmt.Errorf("kernel %s: %w", a.id, err))
	}
	a.state = s
	if a.state.Status == StatusNew {
		return
	}
	if a.deps.Node != "" && a.takeOver(ctx) {
		return
	}
	switch a.state.Status {
	case StatusRunning:
	default:
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
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
		root.Send(self, attachDone{by: a, conn: conn, err: err})
	}()
}

func (a *Actor) attached(ctx actor.Context, m attachDone) {
	if m.by != a {
		// Asked by an instance that crashed since: this one attaches itself.
		if m.conn != nil {
			_ = m.conn.Close()
		}
		return
	}
	a.op = ""
	if m.err != nil {
		if grace, ok := a.deps.Launcher.Orphaned(a.id); ok {
			a.endOrphaned(ctx, grace)
			return
		}
		if a.deps.AutoRestore {
			a.relaunch(ctx, m.err)
			return
		}
		a.append(draft(a.id, events.KernelLost{KernelID: a.id, Reason: m.err.Error()}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		return
	}
	a.append(draft(a.id, events.KernelReattached{KernelID: a.id, Pid: a.state.Process.Pid}))
	a.adoptHeld(ctx, m.conn)
	a.notify(ctx, a.ready(Ready{Reattached: true}))
}

// endOrphaned records the end of a kernel its guard ended on purpose
// (--orphan-grace) while no server ran: a cull, never relaunched (that
// would bring back, at every start, every kernel ever left behind). Its
// queued executions end as for a shutdown.
func (a *Actor) endOrphaned(ctx actor.Context, grace time.Duration) {
	reason := OrphanedReason(grace, "")
	if a.deps.RestoreName != nil {
		reason = OrphanedReason(grace, a.deps.RestoreName(a.id))
	}
	shut, why := shutDownEvent(a.id, true, Shutdown{Culled: true, Reason: reason})
	a.append(draft(a.id, shut))
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: why})
}

// OrphanedReason is the KernelShutDown reason of a kernel its guard ended
// after grace; checkpoint ("": none) holds its variables.
func OrphanedReason(grace time.Duration, checkpoint string) string {
	r := fmt.Sprintf("ended by its guard after --orphan-grace (%s) without a server", grace)
	if checkpoint != "" {
		r += "; its variables are in checkpoint " + checkpoint + ": start_kernel and load_environment it"
	}
	return r
}

// Why the executions sent to a kernel process found gone at recovery are
// recorded lost: the one running, and the one sent behind it (pipelined),
// which the process may have run after the server stopped recording (at
// most once: it is not sent again).
const (
	RelaunchLostReason         = "the kernel process was gone when the server started (the pod was replaced?): it is not run again"
	RelaunchLostPipelineReason = "it was sent to the kernel process behind the running execution, and that process was gone when the server started " +
		"(the pod was replaced?): it may have run there, so it is not run again; submit it again if it should run"
)

// takeOver handles, in a cluster, a kernel this node does not run per its
// stream, and reports whether it did (false: the kernel's process is this
// node's; recover as on a single server). Another node's process runs on
// another machine: it is never attached to or killed. With Deps.Adopt the
// actor appends KernelAdopted (once: an instance rebuilt mid-takeover finds
// it in the stream) and relaunches a running kernel as --auto-restore does;
// a dead or lost one stays so, this node's to restart. Without it (or once
// another node adopted the kernel) the kernel is not this node's: nothing
// is recorded, nothing is sent, and lifecycle commands are refused.
func (a *Actor) takeOver(ctx actor.Context) bool {
	node, st := a.deps.Node, a.state
	switch {
	case st.Adopted != nil && st.Adopted.By == node:
		// Adopted by this node: its relaunch, if any, is still to come.
	case st.Adopted != nil:
		a.notOurs(st.Adopted.By)
		return true
	case st.ProcessNode == node:
		return false
	case a.deps.Adopt == nil || st.Status == StatusShutDown || st.Status == StatusFailed:
		a.notOurs(st.ProcessNode)
		return true
	default:
		restore := ""
		if st.Status == StatusRunning && a.deps.RestoreName != nil {
			restore = a.deps.RestoreName(a.id)
		}
		a.append(draft(a.id, events.KernelAdopted{KernelID: a.id, From: a.deps.Adopt.From, Reason: a.deps.Adopt.Reason, Restore: restore,
			Through: a.deps.Adopt.Through}))
	}
	if a.state.Status != StatusRunning {
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		return true
	}
	a.relaunchAdopted(ctx)
	return true
}

// notOurs leaves a kernel node runs alone: a lifecycle operation that never
// ends refuses every command (beginOp), and the scheduler is never told it
// is ready.
func (a *Actor) notOurs(node string) {
	a.op = "run by node " + node
	a.deps.Logger.Warn("kernel runs on another node: left alone", "node", node)
}

// AdoptedLostReason and AdoptedLostPipelineReason say why an execution
// sent to the process of node from, which a takeover replaced, is lost.
func AdoptedLostReason(from, why string) string {
	return fmt.Sprintf("node %s, which ran it, was lost (%s): another node took the kernel over; it is not run again", from, why)
}

func AdoptedLostPipelineReason(from, why string) string {
	return fmt.Sprintf("it was sent to the kernel process on node %s behind the running execution, and node %s was lost (%s): "+
		"it may have run there, so it is not run again; submit it again if it should run", from, from, why)
}

// relaunchAdopted starts a fresh process of an adopted kernel under its id
// (relaunched records it). NB: the recorded process is another node's: it
// is not killed.
func (a *Actor) relaunchAdopted(ctx actor.Context) {
	a.op = "relaunching"
	spec, adopted := a.state.Spec, a.state.Adopted
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		select {
		case a.deps.relaunching <- struct{}{}:
			defer func() { <-a.deps.relaunching }()
		case <-octx.Done():
			root.Send(self, relaunchDone{by: a, adopted: adopted, err: fmt.Errorf("wait for an earlier relaunch: %w", octx.Err())})
			return
		}
		conn, l, err := a.deps.Launcher.Launch(octx, a.id, spec)
		root.Send(self, relaunchDone{by: a, adopted: adopted, conn: conn, launched: l, err: err})
	}()
}

// relaunch starts a fresh process of the kernel's kernelspec under its id,
// when the recorded one cannot be re-attached at recovery (AutoRestore):
// the pod that ran it was replaced, so its variables are gone but the
// kernel id, its owner, shares and queue stay. The recorded process is
// killed first if it still runs but did not answer (Kill never signals a
// pid whose start time differs): one id never has two processes.
func (a *Actor) relaunch(ctx actor.Context, attachErr error) {
	a.op = "relaunching"
	proc, spec := a.state.Process, a.state.Spec
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		select {
		case a.deps.relaunching <- struct{}{}:
			// NB: released after the outcome is sent: a stale one reaches
			// the rebuilt instance before that instance's own launch begins.
			defer func() { <-a.deps.relaunching }()
		case <-octx.Done():
			root.Send(self, relaunchDone{by: a, attachErr: attachErr, err: fmt.Errorf("wait for an earlier relaunch: %w", octx.Err())})
			return
		}
		if err := a.deps.Launcher.Kill(proc); err != nil {
			root.Send(self, relaunchDone{by: a, attachErr: attachErr, err: fmt.Errorf("stop the unreachable process: %w", err)})
			return
		}
		conn, l, err := a.deps.Launcher.Launch(octx, a.id, spec)
		root.Send(self, relaunchDone{by: a, attachErr: attachErr, conn: conn, launched: l, err: err})
	}()
}

// relaunched records a relaunch's outcome: KernelRestarted{Reason,
// Restore} and a held kernel (State.Restore) whose scheduler records the
// executions of the gone process lost (Ready.Gone) and keeps its queue
// until FinishRestore; or, when no process could be started, KernelLost
// with both reasons.
func (a *Actor) relaunched(ctx actor.Context, m relaunchDone) {
	if m.by != a {
		// Asked by an instance that crashed since: this one recovers on its
		// own. NB: the process is stopped without touching the kernel's
		// directory, which this instance's own relaunch may be using.
		if m.conn != nil {
			_ = m.conn.Close()
			p := m.launched.Process
			p.ConnFile = ""
			_ = a.deps.Launcher.Kill(p)
		}
		return
	}
	a.op = ""
	if ad := m.adopted; ad != nil {
		a.relaunchedAdopted(ctx, m, ad)
		return
	}
	if m.err != nil {
		a.append(draft(a.id, events.KernelLost{KernelID: a.id,
			Reason: m.attachErr.Error() + "; starting a fresh process under the same id failed: " + m.err.Error()}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		return
	}
	restore := ""
	if a.deps.RestoreName != nil {
		restore = a.deps.RestoreName(a.id)
	}
	a.append(draft(a.id, events.KernelRestarted{KernelID: a.id, Process: m.launched.Process, Restore: restore,
		Reason: fmt.Sprintf("the kernel process was gone when the server started (%v): a fresh process of kernelspec %q runs under the same id", m.attachErr, a.state.Spec)}))
	a.adopt(ctx, m.conn)
	a.notify(ctx, a.ready(Ready{Fresh: true, Gone: RelaunchLostReason, GoneBehind: RelaunchLostPipelineReason}))
}

// relaunchedAdopted records the relaunch of a kernel taken over from node
// ad.From: KernelRestarted{Restore} and the hold, as relaunched; the
// executions that node had started are lost with a reason naming it.
func (a *Actor) relaunchedAdopted(ctx actor.Context, m relaunchDone, ad *Adoption) {
	if m.err != nil {
		a.append(draft(a.id, events.KernelLost{KernelID: a.id, Reason: fmt.Sprintf("node %s, which ran the kernel, was lost (%s); "+
			"starting a fresh process under the same id on node %s failed: %v", ad.From, ad.Reason, a.deps.Node, m.err)}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		return
	}
	a.append(draft(a.id, events.KernelRestarted{KernelID: a.id, Process: m.launched.Process, Restore: ad.Restore,
		Reason: fmt.Sprintf("node %s, which ran the kernel, was lost (%s): node %s took it over; a fresh process of kernelspec %q runs under the same id",
			ad.From, ad.Reason, a.deps.Node, a.state.Spec)}))
	a.adopt(ctx, m.conn)
	a.notify(ctx, a.ready(Ready{Fresh: true, Gone: AdoptedLostReason(ad.From, ad.Reason), GoneBehind: AdoptedLostPipelineReason(ad.From, ad.Reason)}))
}

// ownProcess reports whether the recorded process is this node's to
// signal (always on a single server).
func (a *Actor) ownProcess() bool { return a.deps.Node == "" || a.state.ProcessNode == a.deps.Node }

// disown lets go of a kernel another node took over while this one was cut
// off: nothing is appended (the stream is the other node's now), the
// connection is closed and this node's process of it killed (it is no
// longer the kernel's). The system stops the actors after.
func (a *Actor) disown(ctx actor.Context) {
	proc, own := a.state.Process, a.ownProcess()
	var err error
	if own {
		if err = a.deps.Launcher.Kill(proc); err != nil {
			err = fmt.Errorf("kill the process of kernel %s (pid %d): %w", a.id, proc.Pid, err)
		}
	}
	if own && err == nil && a.conn != nil {
		// NB: killed before the connection is released: the connection's
		// exit watcher reaps this node's child (a zombie otherwise, whose
		// pid stays taken), and Dead closes once it did. Bounded: a
		// disown is rare, the actor may block for it.
		select {
		case <-a.conn.Dead():
		case <-time.After(disownReap):
			a.deps.Logger.Warn("the killed process of a kernel taken over by another node did not exit in time", "pid", proc.Pid, "waited", disownReap)
		}
	}
	a.release()
	a.op, a.disowned = "disowned", true
	ctx.Respond(Result{State: a.state, Err: err})
}

// disownReap bounds the wait for a disowned kernel's killed process.
const disownReap = 5 * time.Second

// afterDisown handles what reaches a disowned actor: the outcome of an
// operation begun before (an attach, a launch) is let go of — a process
// this node launched is killed —, every command refused, nothing recorded.
func (a *Actor) afterDisown(ctx actor.Context) {
	drop := func(conn Conn, launched *Launched) {
		killed := false
		if launched != nil && launched.Process.Pid > 0 {
			killed = a.deps.Launcher.Kill(launched.Process) == nil
		}
		if conn != nil {
			if killed { // NB: reaped by the connection's watcher before it closes (see disown)
				select {
				case <-conn.Dead():
				case <-time.After(disownReap):
				}
			}
			_ = conn.Close()
		}
	}
	switch m := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Restarting, *actor.Stopped:
	case attachDone:
		drop(m.conn, nil)
	case relaunchDone:
		drop(m.conn, &m.launched)
	case launchDone:
		drop(m.conn, &m.launched)
	case restartDone:
		drop(m.conn, &m.launched)
	case pumpBatch:
		close(m.ack)
	case GetState:
		ctx.Respond(Result{State: a.state})
	default:
		if ctx.Sender() != nil {
			ctx.Respond(Result{State: a.state, Err: fmt.Errorf("%w: kernel %s was taken over by another node", ErrNotRunning, a.id)})
		}
	}
}

// beginOp starts a lifecycle operation if the decision allows it and no
// other one is in progress; otherwise it answers the sender and reports
// false.
func (a *Actor) beginOp(ctx actor.Context, op, by string, refused error) bool {
	if refused == nil && a.op != "" {
		refused = fmt.Errorf("%w: kernel %s is %s", ErrNotRunning, a.id, a.op)
	}
	if refused != nil {
		ctx.Respond(Result{State: a.state, Err: refused})
		return false
	}
	a.op, a.opReply, a.opBy = op, ctx.Sender(), by
	return true
}

func (a *Actor) start(ctx actor.Context, cmd Start) {
	if !a.beginOp(ctx, "starting", cmd.Owner, DecideStart(a.state)) {
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
		a.notify(ctx, a.ready(Ready{Fresh: true}))
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
	a.adoptHeld(ctx, conn)
	a.startPump()
}

// adoptHeld makes conn the kernel's connection without reading it yet: a
// re-attached connection is read only once the scheduler has said which
// executions to re-adopt (Reconcile, Resume, or a later command), so that
// their replies and outputs, which may already be arriving, are theirs and
// not the kernel's. The connection's queue (bounded, back-pressuring the
// kernel) holds them meanwhile; pumpHoldExpired bounds the wait.
func (a *Actor) adoptHeld(ctx actor.Context, conn Conn) {
	pctx, cancel := context.WithCancel(context.Background())
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.conn, a.cancel, a.out, a.expectExit, a.running = conn, cancel, NewOutputState(a.id), false, nil
	impl, ok := conn.(Implementer)
	a.pipeline = ok && impl.Implementation() == "ipython"
	a.pumpStart = func() { a.pump = startPump(pctx, conn, func(msg any) { root.Send(self, msg) }) }
	go func() {
		t := time.NewTimer(pumpHold)
		defer t.Stop()
		select {
		case <-t.C:
			root.Send(self, pumpHoldExpired{conn: conn})
		case <-pctx.Done():
		}
	}()
}

// pumpHold bounds how long a re-attached connection waits for the
// scheduler's word before it is read anyway.
const pumpHold = 10 * time.Second

// startPump starts reading the connection, if it is held.
func (a *Actor) startPump() {
	if a.pumpStart != nil {
		f := a.pumpStart
		a.pumpStart = nil
		f()
	}
}

// release stops the pump and lets go of the connection; the kernel keeps
// running (kernels outlive the server). It returns the messages the
// connection had queued that the pump never forwarded.
func (a *Actor) release() []Incoming {
	if a.conn == nil {
		return nil
	}
	a.cancel() // NB: first: the pump may be waiting for an ack
	var rest []Incoming
	if a.pump != nil {
		<-a.pump.done
		rest = a.pump.left
	}
	rest = append(rest, drain(a.conn.Messages())...)
	_ = a.conn.Close()
	a.conn, a.pump, a.cancel, a.pumpStart = nil, nil, nil, nil
	return rest
}

// output decides what a batch of kernel messages means, makes it durable,
// then performs the effects: the probes it asks for, and telling the
// scheduler which executions ended.
func (a *Actor) output(ctx actor.Context, m pumpBatch) {
	if m.conn != a.conn {
		close(m.ack) // a pump of a connection already replaced
		return
	}
	var drafts []events.Draft
	var effs []Effect
	a.out, drafts, effs = Step(a.out, shedOutput(a.deps.Log, m.msgs))
	close(m.ack) // NB: Step copied what it needs; the pump may read on
	a.appendAsync(drafts...)
	actors.Hit(a.deps.Faults, "kernel.output")
	a.perform(ctx, effs)
	a.answerAborts(ctx)
}

// died records a connection's end: the rest of what it sent, the loss of
// what was in flight, and (unless we stopped the kernel) its death.
func (a *Actor) died(ctx actor.Context, m pumpDied) {
	if m.conn != a.conn {
		return // a connection already replaced
	}
	rest := m.rest
	if a.op == "" {
		// NB: during a restart or shutdown the operation's goroutine still
		// uses the connection; its end releases it (retire).
		rest = append(rest, a.release()...)
	}
	var drafts []events.Draft
	var effs []Effect
	a.out, drafts, effs = Died(a.out, rest, m.death, a.expectExit, "")
	a.append(drafts...)
	if a.op != "" {
		// The operation reports the kernel's state when it ends.
		a.perform(ctx, effs)
		return
	}
	// NB: the death first, so the scheduler stops dispatching before it
	// hears that the executions in flight ended.
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason, Ending: endedIDs(effs)})
	a.perform(ctx, effs)
}

// retire lets go of a connection the actor stopped itself (restart,
// shutdown) if its end was not recorded yet: what it had in flight is lost.
// It returns the effects to perform once the caller has told the scheduler.
//
// by stopped it: the losses it causes carry that principal.
func (a *Actor) retire(by string) []Effect {
	if a.conn == nil {
		return nil
	}
	rest := a.release()
	var drafts []events.Draft
	var effs []Effect
	a.out, drafts, effs = Died(a.out, rest, Death{}, true, by)
	a.append(drafts...)
	return effs
}

// perform carries out effects whose events are in the log's write path
// (not necessarily durable: the scheduler may start the next execution
// before an end is durable; WAL order makes that start durable only after
// it).
func (a *Actor) perform(ctx actor.Context, effs []Effect) {
	for _, e := range effs {
		switch e := e.(type) {
		case SendRequest:
			if a.conn == nil {
				continue
			}
			if e.After > 0 {
				// NB: the timer is bounded by After; a connection replaced
				// meanwhile makes its message moot (idleProbeDue).
				conn, probe, self, root := a.conn, e.MsgID, ctx.Self(), ctx.ActorSystem().Root
				time.AfterFunc(e.After, func() { root.Send(self, idleProbeDue{conn: conn, probe: probe}) })
				continue
			}
			if err := a.conn.Send(e.Channel, e.MsgType, e.MsgID, e.Content); err != nil {
				a.deps.Logger.Warn("send request to the kernel", "msg_type", e.MsgType, "err", err)
			}
		case Ended:
			a.running = slices.DeleteFunc(a.running, func(id string) bool { return id == e.ExecutionID })
			actors.Hit(a.deps.Faults, "kernel.ended")
			a.notify(ctx, ExecutionEnded{ExecutionID: e.ExecutionID, Status: e.Status, ExecutionCount: e.Count})
		case ReconcileDone:
			a.notify(ctx, Reconciled{ExecutionCount: e.Count})
		case WarnUnknownIOPub:
			a.deps.Logger.Warn("dropped IOPub messages of an unknown type", "msg_type", e.MsgType)
		case DeliverReply:
			a.deliver(e)
		}
	}
}

func endedIDs(effs []Effect) []string {
	var ids []string
	for _, e := range effs {
		if e, ok := e.(Ended); ok {
			ids = append(ids, e.ExecutionID)
		}
	}
	return ids
}

// watch answers a scheduler that (re)started: what can the kernel take?
// Nothing is answered while an operation is under way: its end notifies.
func (a *Actor) watch(ctx actor.Context) {
	switch {
	case a.op != "" || a.state.Status == StatusNew || a.out.Reconcile != nil:
		// NB: a reconciliation's end notifies Reconciled.
	case a.state.Status.Alive() && a.conn != nil:
		ctx.Respond(a.ready(Ready{}))
	case !a.state.Status.Alive():
		ctx.Respond(Stopped{Status: a.state.Status, Reason: a.state.Reason})
	}
}

// execute sends an execution the scheduler started. From here on the
// kernel actor is the only writer of its stream: if it cannot be sent, the
// actor records it lost and tells the scheduler it ended.
func (a *Actor) execute(ctx actor.Context, m Execute) error {
	err := a.send(m)
	if err != nil {
		a.lose(ctx, m.ExecutionID, m.By, "could not be sent to the kernel: "+err.Error())
	}
	return err
}

func (a *Actor) send(m Execute) error {
	if err := a.sendable(m); err != nil {
		return err
	}
	a.out = Expect(a.out, m.MsgID, m.ExecutionID, m.By)
	return a.transmit(m)
}

// sendable says why m cannot be sent now (nil: it can).
func (a *Actor) sendable(m Execute) error {
	if !a.state.Status.Alive() || a.conn == nil {
		return notRunning(a.state)
	}
	if a.op != "" {
		return fmt.Errorf("%w: kernel %s is %s", ErrNotRunning, a.id, a.op)
	}
	switch {
	case len(a.running) == 0:
	case len(a.running) == 1 && a.pipeline && m.Behind == a.running[0]:
		// NB: sent behind the running one; the kernel runs it next.
	default:
		return fmt.Errorf("%w: %s", ErrBusy, strings.Join(a.running, ", "))
	}
	return nil
}

// transmit sends m's execute_request (sendable checked it).
func (a *Actor) transmit(m Execute) error {
	exprs := map[string]string{}
	maps.Copy(exprs, m.UserExpressions)
	// NB: stop_on_error false always: ipykernel would abort whatever is
	// pipelined behind, whoever sent it; the scheduler applies a frontend's
	// stop_on_error to that frontend's executions only.
	content := map[string]any{"code": m.Code, "silent": m.Silent, "store_history": !m.SkipHistory && !m.Silent, "user_expressions": exprs,
		"allow_stdin": m.AllowStdin, "stop_on_error": false}
	if err := a.conn.Send(ChannelShell, "execute_request", m.MsgID, content); err != nil {
		a.out = Forget(a.out, m.MsgID)
		return fmt.Errorf("send execute_request to kernel %s: %w", a.id, err)
	}
	actors.Hit(a.deps.Faults, "kernel.sent")
	a.running = append(a.running, m.ExecutionID)
	return nil
}

// lose records an execution that started but that this kernel will never
// run or report, and tells the scheduler it ended. by is the principal
// whose command lost it ("" when the server found it lost on its own).
func (a *Actor) lose(ctx actor.Context, execID, by, reason string) {
	a.appendAsync(events.Draft{Stream: events.ExecutionStream(execID), Kernel: a.id, Principal: by,
		Payload: events.ExecutionLost{ExecutionID: execID, Reason: reason}})
	a.notify(ctx, ExecutionEnded{ExecutionID: execID, Status: "lost"})
}

// reconcile probes the kernel's execution count after a re-attach (see
// Reconcile and StartReconcile).
func (a *Actor) reconcile(ctx actor.Context, m Reconcile) {
	m.Active = slices.DeleteFunc(m.Active, func(r Resume) bool { return a.isRunning(r.ExecutionID) }) // already re-adopted
	if a.conn == nil || a.op != "" || a.out.Reconcile != nil {
		for _, r := range m.Active {
			a.resume(ctx, r)
		}
		a.notify(ctx, Reconciled{})
		return
	}
	var act []Readoption
	for _, r := range m.Active {
		act = append(act, Readoption{MsgID: r.MsgID, ExecutionID: r.ExecutionID, By: r.By, Away: a.away(r.ExecutionID)})
		a.running = append(a.running, r.ExecutionID)
	}
	var effs []Effect
	a.out, effs = StartReconcile(a.out, events.NewID(time.Now()), m.LastCount, act, m.Pending)
	a.perform(ctx, effs)
}

// abort asks the kernel not to run a pipelined execution (abort_request
// on control). ipykernel checks its aborted ids when it takes the request
// up: if it had not, it answers the execute_request "aborted" and Step
// records ExecutionCancelled; if it already had, the execution runs and
// its real outcome is recorded.
//
// The canceller is answered once the kernel acknowledged (abort_reply):
// ipykernel adds the id to its aborted ones before it replies, so from
// then on the request cannot run, whatever the caller does next. NB: an
// interrupt right after (a signal, which overtakes the control message
// still on its way) would otherwise end the running execution first, and
// the kernel would take the pipelined one up before reading the abort.
// The wait is bounded (AbortReplyTimeout): a kernel that does not answer
// on control (stopped, or not ipykernel) leaves the outcome to its
// execute_reply, as before.
func (a *Actor) abort(ctx actor.Context, m Abort) {
	if a.abortGated(ctx, m) {
		return
	}
	if a.conn == nil || a.pipelined() != m.ExecutionID {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("%w: %s is not waiting behind the running execution of kernel %s", ErrNotPipelined, m.ExecutionID, a.id)})
		return
	}
	var msgID string
	a.out, msgID = RequestAbort(a.out, m.ExecutionID, m.Reason, m.By)
	ask, replies := events.NewID(time.Now()), make(chan Reply, 1)
	a.out, _ = ExpectRelay(a.out, ask, replies) // NB: its abort_reply is delivered to replies (answerAborts)
	if err := a.conn.Send(ChannelControl, "abort_request", ask, map[string]any{"msg_ids": []string{msgID}}); err != nil {
		a.out = ForgetRelay(a.out, ask)
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("send abort_request to kernel %s: %w", a.id, err)})
		return
	}
	if a.aborts == nil {
		a.aborts = map[string]pendingAbort{}
	}
	a.aborts[ask] = pendingAbort{to: ctx.Sender(), replies: replies}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(a.deps.AbortReplyTimeout, func() { root.Send(self, abortDue{ask: ask}) })
}

// answerAborts answers the cancellers whose abort_request the kernel
// acknowledged in the batch just stepped.
func (a *Actor) answerAborts(ctx actor.Context) {
	for ask, p := range a.aborts {
		select {
		case <-p.replies:
			delete(a.aborts, ask)
			ctx.Send(p.to, Result{State: a.state})
		default:
		}
	}
}

// abortTimedOut answers a canceller whose abort_request the kernel did not
// acknowledge within AbortReplyTimeout: it was sent, and the execution's
// own reply says whether the kernel honoured it.
func (a *Actor) abortTimedOut(ctx actor.Context, ask string) {
	p, ok := a.aborts[ask]
	if !ok {
		return // acknowledged in time
	}
	delete(a.aborts, ask)
	a.out = ForgetRelay(a.out, ask)
	a.deps.Logger.Warn("the kernel did not acknowledge an abort_request in time; the execution's reply says whether it was aborted",
		"timeout", a.deps.AbortReplyTimeout.String())
	ctx.Send(p.to, Result{State: a.state})
}

// resume re-adopts an execution that was running when this actor (or the
// server) stopped, or records it lost if there is no connection to find it
// on.
func (a *Actor) resume(ctx actor.Context, m Resume) {
	if a.isRunning(m.ExecutionID) {
		return // already re-adopted
	}
	if m.Gone != "" {
		a.lose(ctx, m.ExecutionID, "", m.Gone)
		return
	}
	if a.conn == nil || a.op != "" {
		reason := "the kernel stopped while this execution ran"
		if a.state.Reason != "" {
			reason += ": " + a.state.Reason
		}
		a.lose(ctx, m.ExecutionID, "", reason)
		return
	}
	var effs []Effect
	a.out, effs = Readopt(a.out, m.MsgID, m.ExecutionID, m.By, events.NewID(time.Now()), a.away(m.ExecutionID))
	a.running = append(a.running, m.ExecutionID)
	a.perform(ctx, effs)
}

// away reads what the log recorded of a re-adopted execution's output: the
// msg_id of its last message, and when, so that what the kernel printed
// while the server was away is recorded as a gap. It is a recovery read (the
// only time the kernel actor reads an execution's stream).
func (a *Actor) away(execID string) Away {
	rctx, cancel := a.opContext()
	defer cancel()
	var last string
	var at time.Time
	err := a.deps.Log.ReadStream(rctx, events.ExecutionStream(execID), 0, func(e events.Event) error {
		at = e.Time
		if e.Type != events.TypeIOPubMessageReceived {
			return nil
		}
		if id, ok := rawMsgID(e.Raw); ok {
			last = id
		}
		return nil
	})
	if err != nil {
		a.deps.Logger.Warn("read the re-adopted execution's stream", "execution_id", execID, "err", err)
		last = ""
	}
	until := a.state.ReattachedAt
	if until.IsZero() {
		until = time.Now()
	}
	return Away{LastMsgID: last, Reason: fmt.Sprintf("outputs printed while the server was down from %s to %s are missing",
		at.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}
}

// share records a grant (or its withdrawal) of access to the kernel.
func (a *Actor) share(ctx actor.Context, m Share) {
	drafts, err := DecideShare(a.state, m)
	if err != nil {
		ctx.Respond(Result{State: a.state, Err: err})
		return
	}
	a.append(drafts...)
	ctx.Respond(Result{State: a.state})
}

func (a *Actor) interrupt(ctx actor.Context, m Interrupt) {
	drafts, err := DecideInterrupt(a.state, m.By)
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
	a.interruptGated(ctx, m.By)
	ctx.Respond(Result{State: a.state})
}

func (a *Actor) restart(ctx actor.Context, m Restart) {
	if !a.beginOp(ctx, "restarting", m.By, DecideRestart(a.state)) {
		return
	}
	a.notify(ctx, Stopped{Status: StatusRunning, Reason: "restarting"})
	old, oldProc, spec, own := a.conn, a.state.Process, a.state.Spec, a.ownProcess()
	a.expectExit = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		if old != nil {
			if _, err := old.Shutdown(octx); err != nil {
				root.Send(self, restartDone{err: fmt.Errorf("stop kernel for restart: %w", err)})
				return
			}
		} else if own {
			_ = a.deps.Launcher.Kill(oldProc)
		}
		conn, l, err := a.deps.Launcher.Launch(octx, a.id, spec)
		root.Send(self, restartDone{conn: conn, launched: l, err: err})
	}()
}

func (a *Actor) restarted(ctx actor.Context, m restartDone) {
	a.op = ""
	// The old process's in-flight work is lost; the scheduler, told
	// "restarting", dispatches nothing meanwhile.
	a.perform(ctx, a.retire(a.opBy))
	if m.err != nil {
		a.append(draftBy(a.id, a.opBy, events.KernelDied{KernelID: a.id, Reason: "restart failed: " + m.err.Error(), StderrTail: stderrTail(m.err)}))
		a.notify(ctx, Stopped{Status: a.state.Status, Reason: a.state.Reason})
		a.reply(ctx, Result{State: a.state, Err: m.err})
		return
	}
	a.append(draftBy(a.id, a.opBy, events.KernelRestarted{KernelID: a.id, Process: m.launched.Process}))
	a.adopt(ctx, m.conn)
	a.notify(ctx, a.ready(Ready{Fresh: true}))
	a.reply(ctx, Result{State: a.state})
}

func (a *Actor) shutdown(ctx actor.Context, m Shutdown) {
	if !a.beginOp(ctx, "shutting down", m.By, decideShutdownOf(a.state, m, len(a.running))) {
		return
	}
	a.opShutdown = m
	conn, proc, own := a.conn, a.state.Process, a.ownProcess()
	a.expectExit = true
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: "shutting down"})
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		octx, cancel := a.opContext()
		defer cancel()
		if conn == nil {
			var err error
			if own { // NB: another node's process runs on another machine
				err = a.deps.Launcher.Kill(proc)
			}
			root.Send(self, shutdownDone{forced: true, err: err})
			return
		}
		forced, err := conn.Shutdown(octx)
		root.Send(self, shutdownDone{forced: forced, err: err})
	}()
}

func (a *Actor) shutDown(ctx actor.Context, m shutdownDone) {
	a.op = ""
	if m.err != nil && a.state.Status.Alive() {
		a.expectExit = false // it still runs: a later exit is a death
		a.notify(ctx, a.ready(Ready{}))
		a.reply(ctx, Result{State: a.state, Err: fmt.Errorf("shut down kernel %s: %w", a.id, m.err)})
		return
	}
	effs := a.retire(a.opBy)
	shut, why := shutDownEvent(a.id, m.forced, a.opShutdown)
	a.append(draftBy(a.id, a.opBy, shut))
	a.notify(ctx, Stopped{Status: a.state.Status, Reason: why, Ending: endedIDs(effs)})
	a.perform(ctx, effs)
	a.reply(ctx, Result{State: a.state})
}

func (a *Actor) sendInput(ctx actor.Context, m SendInput) {
	if a.conn == nil || a.first() != m.ExecutionID {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("execution %s is not running on kernel %s", m.ExecutionID, a.id)})
		return
	}
	if err := a.conn.Send(ChannelStdin, "input_reply", events.NewID(time.Now()), map[string]string{"value": m.Value}); err != nil {
		ctx.Respond(Result{State: a.state, Err: fmt.Errorf("send input to kernel %s: %w", a.id, err)})
		return
	}
	a.append(events.Draft{Stream: events.ExecutionStream(m.ExecutionID), Kernel: a.id, Principal: m.By,
		Payload: events.ExecutionInputSent{ExecutionID: m.ExecutionID}})
	ctx.Respond(Result{State: a.state})
}

// relay sends a frontend's request to the kernel under the server's msg
// id; what the kernel answers with that parent on shell or control goes to
// m.Replies (DeliverReply).
func (a *Actor) relay(m Relay) error {
	if err := DecideRelay(a.state, m); err != nil {
		return err
	}
	if a.conn == nil || a.op != "" {
		return fmt.Errorf("%w: kernel %s is %s", ErrNotRunning, a.id, cmp.Or(a.op, "not connected"))
	}
	if a.out.Relays.Waiting(m.MsgID) {
		return fmt.Errorf("%w: msg_id %s is already waiting for its reply", ErrNotRelayed, m.MsgID)
	}
	if RelayAnswered(m.MsgType) && m.Replies != nil {
		var forgotten int
		a.out, forgotten = ExpectRelay(a.out, m.MsgID, m.Replies)
		if forgotten > 0 {
			a.deps.Logger.Warn("forgot the oldest relayed requests: too many wait for their reply", "forgotten", forgotten, "limit", MaxRelays)
		}
	}
	content := json.RawMessage(m.Content)
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	if err := a.conn.Send(m.Channel, m.MsgType, m.MsgID, content); err != nil {
		a.out = ForgetRelay(a.out, m.MsgID)
		return fmt.Errorf("send %s to kernel %s: %w", m.MsgType, a.id, err)
	}
	return nil
}

// deliver hands a reply to its relayed request's asker without ever
// waiting: a full channel loses it (counted).
func (a *Actor) deliver(e DeliverReply) {
	select {
	case e.Replies <- e.Msg:
	default:
		a.relayRepliesLost++
		if a.relayRepliesLost == 1 || a.relayRepliesLost%1000 == 0 {
			a.deps.Logger.Warn("dropped a reply to a relayed request: its asker's channel is full", "msg_type", e.Msg.MsgType,
				"dropped_total", a.relayRepliesLost)
		}
	}
}

// attachFrontend records a frontend's session once per incarnation.
func (a *Actor) attachFrontend(ctx actor.Context, m AttachFrontend) {
	drafts, err := DecideAttachFrontend(a.state, m, a.frontends.has(m.Session))
	if err == nil {
		a.frontends.add(m.Session)
	}
	a.record(ctx, drafts, err)
}

// record makes a decision's events durable and answers with the state.
func (a *Actor) record(ctx actor.Context, drafts []events.Draft, err error) {
	if err != nil {
		ctx.Respond(Result{State: a.state, Err: err})
		return
	}
	if len(drafts) > 0 {
		a.append(drafts...)
	}
	ctx.Respond(Result{State: a.state})
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
