package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Log is what a scheduler needs from the event log (infra/eventlog
// implements it): appends, and the per-kernel index it recovers from.
// ScanKernel calls fn for every event about one kernel (its stream, its
// executions, their output) with seq > after, in order, with the envelope
// decoded and the payload raw (Event.DecodePayload decodes it).
type Log interface {
	actors.Log
	ScanKernel(ctx context.Context, kernel string, after uint64, fn func(events.Event) error) error
}

// Deps are what a scheduler needs from outside.
type Deps struct {
	Log    Log
	Logger *slog.Logger
	// MaxQueue bounds the executions waiting per kernel (default 1000).
	MaxQueue int
	// Kernel is the kernel actor's PID. NB: kernel actors are spawned under
	// a known name (see actors/system), so the PID is known before the
	// actor exists and stays the same across its restarts.
	Kernel *actor.PID
	// KernelSpawned closes once the kernel actor exists. NB: the scheduler
	// is spawned first; a message to a PID whose actor is still being
	// spawned races inside protoactor, so a first start waits for
	// KernelSpawned (the system then also sends it as a message).
	KernelSpawned <-chan struct{}
	// PanicOn, for tests only, makes the actor panic on the messages it
	// selects, as a crash in the middle of work would.
	PanicOn func(msg any) bool
	// Faults, in the kill -9 tests, kills the process at this actor's
	// fault points (infra/fault); nil in production.
	Faults actors.Faults
	// Written is shared with the kernel actor: a (re)started scheduler
	// waits for the appends either put in the write path before it reads
	// the log (nil: Props makes one for this actor's instances).
	Written *actors.Written
	// Held, in a cluster, says whether this node may act for the kernel
	// now (its ownership lease renewed recently enough); nil on a single
	// server. It is checked before each queued execution is started:
	// while it fails nothing is started (the queue waits), so a node cut
	// off from the cluster never starts what the kernel's new owner runs
	// after its takeover. HeldChanged asks for a new check.
	Held func(kernelID string) error
}

// Commands, answered with SubmitResult / CancelResult.
type (
	// KernelSpawned tells the scheduler its kernel actor exists.
	KernelSpawned struct{}
	Cancel        struct{ ExecutionID, Reason, By string }
	// Snapshot is answered with the State.
	Snapshot struct{}
	// HeldChanged: Deps.Held may answer differently now (the lease was
	// lost, or renewed again): the queue is checked again.
	HeldChanged struct{}
	// Disown: node By took the kernel over while this node (Node) was cut
	// off, knowing this node's records up to Through (KernelAdopted):
	// what this node queued after them is recorded lost (DecideDisown), and
	// from then on nothing is started nor taken. Answered with a
	// DisownResult once that is durable.
	Disown struct {
		Node, By string
		Through  uint64
	}
	// Outcome is answered with an OutcomeResult once the kernel's recovery
	// has an outcome: it takes work (re-attached, started or relaunched;
	// for a relaunched one held for its restore, once the executions of
	// the gone process are recorded lost), or it is gone (lost, dead).
	Outcome struct{}
)

// OutcomeResult answers Outcome.
type OutcomeResult struct {
	// Gone says why the kernel takes no work ("" when it does).
	Gone string
	// Hold is its restore under way (nil: none).
	Hold *Hold
}

// SubmitResult answers Submit. Durable settles once the execution's
// ExecutionQueued (and ExecutionStarted) are durable: the scheduler hands
// the execution to the kernel before that, and whoever answers the
// submitter waits for it (System.Submit does).
type SubmitResult struct {
	Execution Execution
	Durable   *events.Pending
	Err       error
}

// CancelResult answers Cancel.
type CancelResult struct{ Err error }

// DisownResult answers Disown: the executions recorded lost.
type DisownResult struct{ Lost []string }

// Actor is the protoactor shell of one kernel's scheduler.
type Actor struct {
	id    string
	deps  Deps
	state State
	ready bool // the kernel can take executions
	gone  string
	// resumed is the active execution handed back with Resume. NB: handed
	// back once: a second Resume could reach the kernel actor after it
	// ended the execution, and record a second end.
	resumed map[string]bool
	// watching: this instance asked the kernel actor for its state.
	watching bool
	// pipeline: the kernel takes an execution behind the running one
	// (kernel.Ready.Pipeline).
	pipeline bool
	// reconciling: after a re-attach, the kernel actor's count probe is
	// out (kernel.Reconcile); nothing is dispatched until it is answered.
	reconciling bool
	// queued holds the append that queued each execution this instance
	// took and still holds: a second Submit of its id returns it, with that
	// append (the System's look-up reads only durable events).
	queued map[string]*events.Pending
	// ending are executions this instance queued that ended before the
	// append queueing them was durable: still unknown to a reader of the
	// log, so a Submit of the id must find them here. Dropped once settled.
	ending []queuedExecution
	// restores are the restore loads (Submit{Restore}) this instance queued
	// behind something in flight during a hold: started out of turn, first.
	restores map[string]bool
	// outcomeWaiters asked Outcome before there was one.
	outcomeWaiters []*actor.PID
	// notHeld: Deps.Held failed when the queue was last looked at; the
	// wait is logged once, and its end.
	notHeld bool
	// disownedBy is the node that took the kernel over (Disown; "" while
	// it is this node's).
	disownedBy string
}

type queuedExecution struct {
	x Execution
	p *events.Pending
}

// maxEnding bounds ending: unsettled appends are bounded by the log's
// unsynced bound, this only guards against a log that never settles.
const maxEnding = 1024

// maxReconcilePending bounds the queued executions named in a Reconcile:
// the ones a crash may have left sent but not recorded started are at the
// head of the queue.
const maxReconcilePending = 64

// Props returns the props of kernel id's scheduler. The producer makes a
// fresh actor, which recovers its state from the log on every (re)start.
func Props(id string, deps Deps) *actor.Props {
	if deps.MaxQueue <= 0 {
		deps.MaxQueue = 1000
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Logger = deps.Logger.With("kernel_id", id) // NB: the caller's logger names the component
	if deps.Written == nil {
		deps.Written = &actors.Written{}
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{id: id, deps: deps, resumed: map[string]bool{}, queued: map[string]*events.Pending{}, restores: map[string]bool{}}
	})
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.deps.PanicOn != nil && a.deps.PanicOn(ctx.Message()) {
		panic(fmt.Sprintf("scheduler %s: test hook: panic on %T", a.id, ctx.Message()))
	}
	defer a.answerOutcome(ctx)
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.recover()
		if a.deps.KernelSpawned == nil {
			a.watch(ctx) // the kernel actor was there first
			break
		}
		select {
		case <-a.deps.KernelSpawned:
			a.watch(ctx)
		default: // first start: KernelSpawned follows
		}
	case KernelSpawned:
		a.watch(ctx)
	case Submit:
		ctx.Respond(a.submit(ctx, m))
	case Cancel:
		drafts, err := DecideCancel(a.state, m.ExecutionID, m.Reason, m.By)
		if errors.Is(err, ErrPipelined) {
			// NB: answered by the kernel actor, to the canceller.
			ctx.RequestWithCustomSender(a.deps.Kernel, kernel.Abort{ExecutionID: m.ExecutionID, Reason: m.Reason, By: m.By}, ctx.Sender())
			return
		}
		if err == nil {
			a.append(drafts)
			delete(a.queued, m.ExecutionID) // its end is durable, so is its queueing
		}
		ctx.Respond(CancelResult{Err: err})
	case Snapshot:
		ctx.Respond(a.state)
	case HeldChanged:
		a.next(ctx)
	case Disown:
		drafts := DecideDisown(a.state, m.Node, m.By, m.Through)
		a.append(drafts)
		a.disownedBy = m.By
		var lost []string
		for _, d := range drafts {
			lost = append(lost, events.StreamID(d.Stream))
			delete(a.queued, events.StreamID(d.Stream)) // its end is durable, so is its queueing
		}
		ctx.Respond(DisownResult{Lost: lost})
	case Outcome:
		a.outcomeWaiters = append(a.outcomeWaiters, ctx.Sender())
	case kernel.RestoreEnded:
		a.state.Hold = nil
		clear(a.restores)
		a.next(ctx)
	case kernel.Ready:
		a.ready, a.gone, a.pipeline = true, "", m.Pipeline
		a.held(m)
		a.kernelReady(ctx, m)
	case kernel.Stopped:
		a.kernelStopped(ctx, m)
	case kernel.Reconciled:
		a.reconciling = false
		// NB: runs the reconcile recorded KernelRanUnrecorded end no
		// execution: the next reconcile's base must count them.
		a.state.LastCount = max(a.state.LastCount, m.ExecutionCount)
		if !a.ready && a.gone == "" && a.watching {
			// NB: this instance (re)started while the kernel actor was
			// reconciling, so its Watch went unanswered: ask again now that
			// the kernel actor can say what it holds.
			a.watching = false
			a.watch(ctx)
			return
		}
		a.next(ctx)
	case kernel.ExecutionEnded:
		x, _ := a.lookup(m.ExecutionID)
		a.ended(m.ExecutionID)
		a.state = End(a.state, m.ExecutionID)
		a.state.LastCount = max(a.state.LastCount, m.ExecutionCount)
		if drafts := DecideStopOnError(a.state, x, m.Status); drafts != nil {
			a.append(drafts)
			for _, d := range drafts {
				delete(a.queued, events.StreamID(d.Stream)) // its end is durable, so is its queueing
			}
		}
		a.next(ctx)
	case kernel.ExecuteResult:
		// Nothing to do: a failed send is recorded by the kernel actor and
		// arrives as ExecutionEnded.
	}
}

// recover folds this kernel's execution lifecycle from the log's
// per-kernel index: what it queued and started, and the final events the
// kernel actor wrote. Only those payloads are decoded (outputs are most of
// the index). Replay performs no effect.
func (a *Actor) recover() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := State{KernelID: a.id}
	if err := a.deps.Written.Wait(ctx); err != nil {
		panic(fmt.Errorf("scheduler %s: recover: wait for appends in the write path: %w", a.id, err))
	}
	err := a.deps.Log.ScanKernel(ctx, a.id, 0, func(e events.Event) error {
		if !Lifecycle(e.Type) {
			return nil
		}
		if err := e.DecodePayload(); err != nil {
			return err
		}
		s = Apply(s, e)
		return nil
	})
	if err != nil {
		panic(fmt.Errorf("scheduler %s: recover: %w", a.id, err))
	}
	a.state = s
}

// watch asks the kernel actor whether it can take work (once per
// instance): it answers Ready or Stopped, and tells of every change after.
func (a *Actor) watch(ctx actor.Context) {
	if a.watching {
		return
	}
	a.watching = true
	ctx.Request(a.deps.Kernel, kernel.Watch{})
}

func (a *Actor) submit(ctx actor.Context, c Submit) SubmitResult {
	if a.disownedBy != "" {
		return SubmitResult{Err: fmt.Errorf("%w: node %s took it over; nothing was queued here", ErrKernelGone, a.disownedBy)}
	}
	if a.gone != "" && !a.ready {
		return SubmitResult{Err: fmt.Errorf("%w: %s", ErrKernelGone, a.gone)}
	}
	if x, p, ok := a.known(c.ExecutionID, c.ChosenID); ok {
		return SubmitResult{Execution: x, Durable: p}
	}
	msgID := events.NewID(time.Now())
	if c.Restore && a.state.Hold != nil {
		return a.submitRestore(ctx, c, msgID)
	}
	// NB: a held kernel runs nothing but its restore: the rest queues.
	// NB: and a node that cannot prove it owns the kernel starts nothing.
	start := a.ready && !a.reconciling && a.state.Hold == nil && a.mayStart()
	drafts, err := DecideSubmit(a.state, c, a.deps.MaxQueue, start, msgID)
	if err != nil {
		return SubmitResult{Err: err}
	}
	p := a.appendAsync(drafts)
	a.queued[c.ExecutionID] = p
	if len(drafts) > 1 {
		actors.Hit(a.deps.Faults, "scheduler.started")
		a.send(ctx, a.find(c.ExecutionID), p)
	} else if a.ready && !a.reconciling {
		a.next(ctx) // NB: pipelined behind the running one if it can be
	}
	return SubmitResult{Execution: a.find(c.ExecutionID), Durable: p}
}

// submitRestore queues a held kernel's restore load ahead of what waits:
// started at once when nothing is in flight, otherwise as soon as what is
// in flight ends (the executions of the gone process, being recorded lost).
func (a *Actor) submitRestore(ctx actor.Context, c Submit, msgID string) SubmitResult {
	drafts, err := DecideSubmitRestore(a.state, c, a.ready && !a.reconciling && a.mayStart(), msgID)
	if err != nil {
		return SubmitResult{Err: err}
	}
	p := a.appendAsync(drafts)
	a.queued[c.ExecutionID] = p
	if len(drafts) > 1 {
		actors.Hit(a.deps.Faults, "scheduler.started")
		a.send(ctx, a.find(c.ExecutionID), p)
	} else {
		a.restores[c.ExecutionID] = true
	}
	return SubmitResult{Execution: a.find(c.ExecutionID), Durable: p}
}

// held applies what the kernel actor says of its restore: held (from a
// relaunch this scheduler saw happen, or from the log) or not.
func (a *Actor) held(m kernel.Ready) {
	switch {
	case m.Restore == "":
		a.state.Hold = nil
	case a.state.Hold == nil || a.state.Hold.Seq != m.RestoreSeq:
		// NB: the relaunch happened after this instance folded the log:
		// what it holds in flight ran in the gone process (as holdOf folds
		// it at the KernelRestarted).
		a.state.Hold = holdOf(a.state, m.Restore, m.RestoreSeq)
	}
}

// answerOutcome answers the Outcome waiters once the kernel's recovery
// has an outcome.
func (a *Actor) answerOutcome(ctx actor.Context) {
	if len(a.outcomeWaiters) == 0 {
		return
	}
	var r OutcomeResult
	switch {
	case a.gone != "" && !a.ready:
		r.Gone = a.gone
	case !a.ready:
		return
	case a.state.Hold != nil:
		for _, x := range []*Execution{a.state.Active, a.state.Next} {
			if x != nil && slices.Contains(a.state.Hold.Lost, x.ID) {
				return // its loss is not recorded yet
			}
		}
		r.Hold = a.state.Hold
	}
	for _, w := range a.outcomeWaiters {
		ctx.Send(w, r)
	}
	a.outcomeWaiters = nil
}

// known finds an execution id this scheduler already took: in its state,
// or ended while its queueing was not yet durable. NB: the scheduler is the
// only writer of ExecutionQueued, so this closes the window in which two
// Submits of one id both miss it in the log.
func (a *Actor) known(id string, inLog bool) (Execution, *events.Pending, bool) {
	a.ending = slices.DeleteFunc(a.ending, func(q queuedExecution) bool { return settled(q.p) })
	if x, ok := a.lookup(id); ok {
		return x, a.queued[id], true
	}
	for _, q := range a.ending {
		if q.x.ID == id {
			return q.x, q.p, true
		}
	}
	if inLog {
		// NB: one that ended and became durable after the submitter's own
		// look-up in the log, and left ending since.
		return a.fromLog(id)
	}
	return Execution{}, nil, false
}

// fromLog finds an execution of this kernel queued in the log.
func (a *Actor) fromLog(id string) (Execution, *events.Pending, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, ok, err := ReadQueued(ctx, a.deps.Log, id)
	if err != nil {
		panic(fmt.Errorf("scheduler %s: %w", a.id, err))
	}
	return x, nil, ok && x.KernelID == a.id
}

// ReadQueued reads execution id's stream: the execution as it was queued
// (any kernel's), with the seq of its last event; ok false when the log
// holds no ExecutionQueued for it.
func ReadQueued(ctx context.Context, log actors.Log, id string) (x Execution, ok bool, err error) {
	err = log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.ExecutionQueued); ok {
			x = queuedExecutionOf(p, e)
		}
		x.LastSeq = e.Seq
		return nil
	})
	if err != nil {
		return x, false, fmt.Errorf("look up execution %s: %w", id, err)
	}
	return x, x.ID != "", nil
}

// ended forgets the queueing append of an execution that ended, keeping it
// in ending while it is not durable.
func (a *Actor) ended(id string) {
	p, ok := a.queued[id]
	if !ok {
		return
	}
	delete(a.queued, id)
	if settled(p) {
		return
	}
	if len(a.ending) >= maxEnding {
		a.ending = slices.Delete(a.ending, 0, 1)
	}
	a.ending = append(a.ending, queuedExecution{x: a.find(id), p: p})
}

func settled(p *events.Pending) bool {
	if p == nil {
		return true
	}
	select {
	case <-p.Durable():
		return true
	default:
		return false
	}
}

func (a *Actor) find(id string) Execution {
	if x, ok := a.lookup(id); ok {
		return x
	}
	return Execution{ID: id, KernelID: a.state.KernelID}
}

func (a *Actor) lookup(id string) (Execution, bool) {
	if a.state.Active != nil && a.state.Active.ID == id {
		return *a.state.Active, true
	}
	if a.state.Next != nil && a.state.Next.ID == id {
		return *a.state.Next, true
	}
	for _, x := range a.state.Pending {
		if x.ID == id {
			return x, true
		}
	}
	return Execution{}, false
}

func (a *Actor) kernelReady(ctx actor.Context, m kernel.Ready) {
	if m.Fresh {
		a.state.LastCount = 0
	}
	if m.Reattached {
		a.reconcile(ctx, m)
		return
	}
	// Started but not in the kernel actor's hands (the scheduler
	// restarted): re-adopt it, never resend. The kernel actor decides
	// whether it still runs, and reports its end.
	// A fresh process holds none of them: they ran in one that is gone.
	held := func(x *Execution) bool { return x.ID == m.Running || x.ID == m.Pipelined }
	gone, goneBehind := "", ""
	if m.Fresh {
		const replaced = "the kernel process it was sent to was replaced: it is not run again"
		gone, goneBehind = cmp.Or(m.Gone, replaced), cmp.Or(m.GoneBehind, m.Gone, replaced)
	}
	if act := a.state.Active; act != nil && !held(act) {
		a.resumeGone(ctx, *act, gone)
	}
	if nxt := a.state.Next; nxt != nil && !held(nxt) {
		a.resumeGone(ctx, *nxt, goneBehind)
	}
	a.next(ctx)
}

// reconcile asks the kernel actor, after a re-attach, to account for what
// the kernel ran while the server was down before anything new is sent: an
// execute_request may go out before its ExecutionStarted (or even its
// ExecutionQueued) is durable, so a crash can leave the log behind the
// kernel. The active execution is handed back inside it (never resent).
func (a *Actor) reconcile(ctx actor.Context, m kernel.Ready) {
	clear(a.resumed) // a fresh connection: whatever it held is gone
	a.reconciling = true
	rc := kernel.Reconcile{LastCount: a.state.LastCount}
	for _, x := range []*Execution{a.state.Active, a.state.Next} {
		if x != nil && x.ID != m.Running && x.ID != m.Pipelined {
			rc.Active = append(rc.Active, kernel.Resume{ExecutionID: x.ID, MsgID: x.MsgID, By: x.By})
			a.resumed[x.ID] = true
		}
	}
	for _, x := range a.state.Pending[:min(len(a.state.Pending), maxReconcilePending)] {
		rc.Pending = append(rc.Pending, kernel.Unstarted{ExecutionID: x.ID, By: x.By, Code: x.Code})
	}
	ctx.Send(a.deps.Kernel, rc)
}

func (a *Actor) kernelStopped(ctx actor.Context, m kernel.Stopped) {
	a.ready, a.reconciling = false, false
	if m.Status == kernel.StatusRunning {
		return // a restart or shutdown is under way: wait for its outcome
	}
	a.gone = fmt.Sprintf("kernel %s is %s (%s)", a.id, m.Status, m.Reason)
	for _, x := range a.state.Pending {
		delete(a.queued, x.ID) // recorded lost, durably
	}
	a.append(DecideLosePending(a.state, a.gone))
	for _, x := range []*Execution{a.state.Active, a.state.Next} {
		if x != nil && !slices.Contains(m.Ending, x.ID) {
			// Started, and nobody will report its end: the kernel actor, the
			// only writer of a started execution, records it lost.
			a.resume(ctx, *x)
		}
	}
}

func (a *Actor) resume(ctx actor.Context, x Execution) { a.resumeGone(ctx, x, "") }

// resumeGone hands a started execution back to the kernel actor; gone
// (not "") says the process it ran in is gone: it is recorded lost.
func (a *Actor) resumeGone(ctx actor.Context, x Execution, gone string) {
	if a.resumed[x.ID] {
		return
	}
	a.resumed[x.ID] = true
	ctx.Send(a.deps.Kernel, kernel.Resume{ExecutionID: x.ID, MsgID: x.MsgID, By: x.By, Gone: gone})
}

func (a *Actor) next(ctx actor.Context) {
	if !a.ready || a.reconciling || a.disownedBy != "" || len(a.state.Pending) == 0 || !a.mayStart() {
		return
	}
	if a.state.Hold != nil {
		a.nextRestore(ctx)
		return
	}
	// NB: at most two rounds: start the head, then pipeline the next one.
	for range 2 {
		drafts := DecideNext(a.state, events.NewID(time.Now()), a.pipeline)
		if drafts == nil {
			return
		}
		p := a.appendAsync(drafts)
		id := events.StreamID(drafts[0].Stream)
		actors.Hit(a.deps.Faults, "scheduler.started")
		a.send(ctx, a.find(id), p)
		if a.state.Next != nil {
			actors.Hit(a.deps.Faults, "scheduler.pipelined")
		}
	}
}

// mayStart checks Deps.Held before anything queued is started; the first
// failure and the end of the wait are logged (not every look at the
// queue).
func (a *Actor) mayStart() bool {
	if a.deps.Held == nil {
		return true
	}
	err := a.deps.Held(a.id)
	switch {
	case err != nil && !a.notHeld:
		a.notHeld = true
		a.deps.Logger.Warn("this node cannot prove it owns the kernel: its queued executions wait (nothing is started) until the lease is renewed or another node takes the kernel over",
			"queued", len(a.state.Pending), "err", err)
	case err == nil && a.notHeld:
		a.notHeld = false
		a.deps.Logger.Info("the kernel's ownership lease is held again: its queued executions start", "queued", len(a.state.Pending))
	}
	return err == nil
}

// nextRestore, during a hold, starts a restore load that waited for what
// was in flight; nothing else runs (nothing is pipelined behind it).
func (a *Actor) nextRestore(ctx actor.Context) {
	for _, x := range a.state.Pending {
		if !a.restores[x.ID] {
			continue
		}
		drafts := DecideStartWaiting(a.state, x.ID, events.NewID(time.Now()))
		if drafts == nil {
			return
		}
		delete(a.restores, x.ID)
		p := a.appendAsync(drafts)
		actors.Hit(a.deps.Faults, "scheduler.started")
		a.send(ctx, a.find(x.ID), p)
		return
	}
}

// send hands x to the kernel actor; p is the append holding its
// ExecutionStarted (in a cluster the request leaves once the history holds
// it: kernel.Execute.Seq).
func (a *Actor) send(ctx actor.Context, x Execution, p *events.Pending) {
	var seq uint64
	if p != nil {
		for _, e := range p.Events() {
			seq = max(seq, e.Seq)
		}
	}
	ctx.Request(a.deps.Kernel, kernel.Execute{ExecutionID: x.ID, MsgID: x.MsgID, Code: x.Code, AllowStdin: x.AllowStdin,
		Silent: x.Silent, SkipHistory: x.SkipHistory, UserExpressions: x.UserExpressions, By: x.By, Behind: x.Behind, Seq: seq})
}

// appendAsync puts drafts in the log's write path and applies them at
// once: the kernel may be sent an execution before its start is durable
// (recovery's count probe accounts for a crash in between). A durability
// failure later makes the log inoperable, so the next append fails and the
// actor panics, as append does.
func (a *Actor) appendAsync(drafts []events.Draft) *events.Pending {
	if len(drafts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := a.deps.Log.AppendAsync(ctx, drafts...)
	if err != nil {
		panic(fmt.Errorf("scheduler %s: append: %w", a.id, err))
	}
	a.deps.Written.Track(p)
	for _, e := range p.Events() {
		a.state = Apply(a.state, e)
	}
	return p
}

// append makes drafts durable and applies them; a log failure stops the
// actor (supervision rebuilds it from the log).
func (a *Actor) append(drafts []events.Draft) {
	st, err := actors.Persist(a.deps.Log, 30*time.Second, a.state, Apply, drafts)
	if err != nil {
		panic(fmt.Errorf("scheduler %s: append: %w", a.id, err))
	}
	a.state = st
}
