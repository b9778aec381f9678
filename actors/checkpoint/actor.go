package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// StreamPrefix is the prefix of the streams the actor owns
// (checkpoint/<name>).
const StreamPrefix = "checkpoint/"

// Deps are what the actor needs from outside.
type Deps struct {
	Files  Files
	Runner Runner
	Log    Log
	// KernelDir is a kernel's own directory (created 0700 if missing): the
	// one place the actor binds the socket that hands the kernel its
	// checkpoint file (handout.go).
	KernelDir func(kernelID string) string
	Observer  Observer // nil: figures are dropped
	Logger    *slog.Logger
	Now       func() time.Time
	// WorkTimeout bounds one save, load or delete (default 30 minutes).
	WorkTimeout time.Duration
	// BeforeAppend, for tests only, runs before every append with the
	// drafts about to be written: a test panics from it to crash the actor
	// in the middle of work.
	BeforeAppend func([]events.Draft)
	// MaxBytesPerOwner bounds the sum of the sizes of each principal's
	// checkpoint files (--max-checkpoint-bytes; 0: no bound). A save that
	// would pass it is refused before its file is committed.
	MaxBytesPerOwner int64
	// Replica, when set, keeps a copy of each committed checkpoint off this
	// node (a cluster's object store; see Replica). nil: local files only.
	Replica Replica
}

// Stats are counters since the actor was spawned (they survive restarts
// of the actor, not of the process).
type Stats struct {
	SignatureFailures uint64 // files refused by verification
	Saves, Loads      uint64 // successful
}

// Messages the actor answers (the Client sends them).
type (
	readyMsg  struct{}
	saveMsg   struct{ req SaveRequest }
	loadMsg   struct{ req LoadRequest }
	deleteMsg struct{ name, by string }
	listMsg   struct{ owner string } // "" for every owner
	stateMsg  struct{}
	statsMsg  struct{}

	errReply  struct{ err error }
	saveReply struct {
		meta Meta
		err  error
	}
	loadReply struct {
		res LoadResult
		err error
	}
	listReply struct {
		listing Listing
		err     error
	}
)

// Reports of the work goroutines.
type (
	saveDone struct {
		req     SaveRequest
		meta    Meta
		err     error
		started time.Time
		sender  *actor.PID
	}
	loadDone struct {
		req     LoadRequest
		out     loaded
		started time.Time
		sender  *actor.PID
	}
	deleteDone struct {
		name   string
		by     string
		err    error
		sender *actor.PID
	}
	filesFound struct {
		metas []Meta // committed files whose signature verified, to record
		names map[string]bool
		err   error
	}
)

// shared is what outlives one incarnation of the actor: the names with
// work in progress, the work goroutines (a crash does not cancel a save
// half done in a kernel; its report reaches the next incarnation) and the
// counters. Only the actor's mailbox touches busy and stats.
type shared struct {
	busy    map[string]bool
	workers sync.WaitGroup
	stats   Stats
	quota   *quota
}

// Actor is the protoactor shell of the checkpoint actor.
type Actor struct {
	deps  Deps
	sh    *shared
	self  *actor.PID
	root  *actor.RootContext
	state State
	err   error // recovery failed: every command gets it

	// cur is the report being recorded: if recording it crashes the actor,
	// the next incarnation records it from its recovered state.
	cur any
}

// Props returns the actor's props. The actor recovers on every start.
func Props(deps Deps) *actor.Props {
	if deps.Observer == nil {
		deps.Observer = nopObserver{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.WorkTimeout <= 0 {
		deps.WorkTimeout = 30 * time.Minute
	}
	sh := &shared{busy: map[string]bool{}, quota: newQuota(deps.MaxBytesPerOwner)}
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{deps: deps, sh: sh} })
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Restarting:
		if a.cur != nil {
			ctx.Send(a.self, a.cur)
		}
	case *actor.Stopping:
		a.sh.workers.Wait()
	case readyMsg:
		ctx.Respond(errReply{err: a.err})
	case stateMsg:
		ctx.Respond(a.state)
	case statsMsg:
		ctx.Respond(a.sh.stats)
	case saveMsg:
		a.save(ctx, m.req)
	case loadMsg:
		a.load(ctx, m.req)
	case deleteMsg:
		a.delete(ctx, m.name, m.by)
	case listMsg:
		sender, st := ctx.Sender(), a.state
		a.work(func(context.Context) {
			l, err := list(a.deps.Files, st, m.owner)
			a.root.Send(sender, listReply{listing: l, err: err})
		})
	case saveDone:
		a.cur = m
		a.saved(m)
	case loadDone:
		a.cur = m
		a.loaded(m)
	case deleteDone:
		a.cur = m
		a.deleted(m)
	case filesFound:
		a.reconcile(m)
	case adoptMsg:
		a.adopt(ctx, m)
	case replicated:
		a.cur = m
		a.replicatedSave(m)
	case adoptDone:
		a.cur = m
		a.adopted(m)
	}
	a.cur = nil
}

// start recovers: the actor's own streams (one per name, a few events
// each), then, off the mailbox, the files against the state.
func (a *Actor) start(ctx actor.Context) {
	a.self, a.root = ctx.Self(), ctx.ActorSystem().Root
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a.state = State{}
	err := a.deps.Log.ReadStreams(rctx, StreamPrefix, 0, func(e events.Event) error {
		a.state = Apply(a.state, e)
		return nil
	})
	if err != nil {
		a.err = fmt.Errorf("recover checkpoint actor: %w", err)
		a.deps.Logger.Error("recover", "err", a.err)
		return
	}
	// NB: the scan reports by message, so a report the crashed
	// incarnation handed over (queued before it) is recorded first.
	a.sh.quota.set(a.state)
	st := a.state // NB: Apply copies the map it changes, so this view is stable
	a.work(func(context.Context) { a.root.Send(a.self, a.scanFiles(st)) })
}

// scanFiles lists the committed files and verifies those the state does
// not know (a crash between a save's rename and its append). A file saved
// under another name, or older than the newest save the log recorded of its
// name, is never recorded: it is left as is, with a warning (list shows it
// unverified, load refuses it).
func (a *Actor) scanFiles(st State) filesFound {
	l, err := list(a.deps.Files, st, "")
	if err != nil {
		return filesFound{err: err}
	}
	for _, why := range l.Skipped {
		a.deps.Logger.Warn("checkpoint directory entry skipped", "why", why)
	}
	f := filesFound{names: map[string]bool{}}
	for _, e := range l.Checkpoints {
		f.names[e.Stored] = true
		if c, ok := st.Checkpoints[e.Stored]; ok && c.SHA256 == e.SHA256 {
			continue
		}
		mb, size, err := a.deps.Files.Verify(e.Stored)
		var m Meta
		if err == nil {
			err = json.Unmarshal(mb, &m)
		}
		if err != nil {
			a.deps.Logger.Warn("checkpoint file not recorded and not verified: left as is", "name", e.Stored, "err", err)
			continue
		}
		m.FileBytes = size
		if s, why := ClassifyFile(st, e.Stored, m, size); s == FileRenamed || s == FileOlder {
			a.deps.Logger.Warn("checkpoint file not recorded: left as is", "name", e.Stored, "why", why)
			continue
		}
		f.metas = append(f.metas, m)
	}
	return f
}

// reconcile records what the files say and the log does not: a committed
// file not recorded (CheckpointSaved from its signed metadata), a
// recorded one whose file is gone (CheckpointDeleted). Names with work in
// progress are left to that work.
func (a *Actor) reconcile(f filesFound) {
	if f.err != nil {
		a.deps.Logger.Error("list checkpoint files", "err", f.err)
		return
	}
	var ds []events.Draft
	for _, m := range f.metas {
		if e, ok := a.state.Checkpoints[m.Name]; a.sh.busy[m.Name] || ok && e.SHA256 == m.SHA256 {
			continue
		}
		d, err := Decide(a.state, Record{Kernel: m.KernelID, Payload: savedEvent(m)})
		if err == nil {
			ds = append(ds, d...)
		}
	}
	for _, name := range sortedNames(a.state.Checkpoints) {
		if !f.names[name] && !a.sh.busy[name] {
			d, err := Decide(a.state, Delete{Name: name})
			if err == nil {
				ds = append(ds, d...)
			}
		}
	}
	if len(ds) > 0 {
		a.deps.Logger.Info("recorded checkpoint files the log did not match", "events", len(ds))
		a.mustAppend(ds)
	}
}

// work runs fn in a goroutine the actor owns, with the work timeout.
func (a *Actor) work(fn func(context.Context)) {
	a.sh.workers.Add(1)
	go func() {
		defer a.sh.workers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), a.deps.WorkTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// begin refuses a command on a name with work in progress, decides it, and
// marks the name busy.
func (a *Actor) begin(name string, c Command) ([]events.Draft, error) {
	if a.err != nil {
		return nil, a.err
	}
	if err := ValidStored(name); err != nil {
		return nil, err
	}
	if a.sh.busy[name] {
		return nil, fmt.Errorf("%w: checkpoint %q is being saved, loaded or deleted: try again when that finishes", ErrBusy, Display(name))
	}
	ds, err := Decide(a.state, c)
	if err != nil {
		return nil, err
	}
	a.sh.busy[name] = true
	return ds, nil
}

func (a *Actor) save(ctx actor.Context, req SaveRequest) {
	started := a.deps.Now()
	// NB: Exists is one stat in the mailbox, so the decision and the busy
	// mark see the same directory.
	if _, err := a.begin(req.Name, Save{Name: req.Name, Variables: req.Variables, Overwrite: req.Overwrite, OnDisk: a.deps.Files.Exists(req.Name)}); err != nil {
		ctx.Respond(saveReply{err: err})
		return
	}
	sender := ctx.Sender()
	a.work(func(wctx context.Context) {
		meta, err := save(wctx, a.deps.Files, a.deps.Runner, a.deps.KernelDir, req, started, a.sh.quota)
		a.root.Send(a.self, saveDone{req: req, meta: meta, err: err, started: started, sender: sender})
	})
}

func (a *Actor) saved(m saveDone) {
	delete(a.sh.busy, m.req.Name)
	// NB: released after the append below updated the committed sizes
	// (or at once, when the save failed): never counted in neither.
	defer a.sh.quota.release(m.req.Name)
	if m.err != nil {
		a.deps.Observer.SaveObserved(a.deps.Now().Sub(m.started), 0)
		a.root.Send(m.sender, saveReply{err: m.err})
		return
	}
	ds, err := Decide(a.state, Record{Kernel: m.req.KernelID, Payload: savedEvent(m.meta), By: m.req.By})
	if err == nil {
		err = a.append(ds)
	}
	if err != nil {
		a.root.Send(m.sender, saveReply{meta: m.meta, err: err})
		fail(err)
	}
	a.sh.stats.Saves++
	a.deps.Observer.SaveObserved(a.deps.Now().Sub(m.started), m.meta.FileBytes)
	if a.deps.Replica != nil {
		a.replicate(m) // answers once the copy is in the replica (or failed)
		return
	}
	a.root.Send(m.sender, saveReply{meta: m.meta})
}

func (a *Actor) load(ctx actor.Context, req LoadRequest) {
	started := a.deps.Now()
	if req.Policy == "" {
		req.Policy = PolicyWarn
	}
	if _, err := ParsePolicy(string(req.Policy)); err != nil {
		ctx.Respond(loadReply{err: err})
		return
	}
	runner, err := runnerFor(a.deps.Runner, req)
	if err != nil {
		ctx.Respond(loadReply{err: err})
		return
	}
	if _, err := a.begin(req.Name, Load{Name: req.Name, OnDisk: a.deps.Files.Exists(req.Name)}); err != nil {
		ctx.Respond(loadReply{err: err})
		return
	}
	sender, st := ctx.Sender(), a.state
	a.work(func(wctx context.Context) {
		out := load(wctx, a.deps.Files, runner, a.deps.KernelDir, st, req)
		a.root.Send(a.self, loadDone{req: req, out: out, started: started, sender: sender})
	})
}

func (a *Actor) loaded(m loadDone) {
	delete(a.sh.busy, m.req.Name)
	o := m.out
	if o.outcome == OutcomeRejected {
		a.sh.stats.SignatureFailures++
		a.deps.Logger.Warn("checkpoint refused", "name", m.req.Name, "kernel", m.req.KernelID, "err", o.err)
	}
	err := o.err
	if o.event != nil {
		ds, derr := Decide(a.state, Record{Kernel: m.req.KernelID, Payload: o.event, By: m.req.By})
		if derr == nil {
			derr = a.append(ds)
		}
		if derr != nil {
			a.root.Send(m.sender, loadReply{res: o.res, err: errors.Join(err, derr)})
			fail(derr)
		}
	}
	if o.outcome == OutcomeOK {
		a.sh.stats.Loads++
	}
	a.deps.Observer.LoadObserved(a.deps.Now().Sub(m.started), o.outcome)
	a.root.Send(m.sender, loadReply{res: o.res, err: err})
}

func (a *Actor) delete(ctx actor.Context, name, by string) {
	if _, err := a.begin(name, Delete{Name: name, OnDisk: a.deps.Files.Exists(name), By: by}); err != nil {
		ctx.Respond(errReply{err: err})
		return
	}
	sender := ctx.Sender()
	a.work(func(wctx context.Context) {
		var err error
		if a.deps.Replica != nil {
			if err = a.deps.Replica.Delete(wctx, name); err != nil {
				err = fmt.Errorf("delete checkpoint %q: its copy off this node could not be deleted, so nothing was deleted (another node could fetch it back): %w; try again", Display(name), err)
			}
		}
		if err == nil {
			err = a.deps.Files.Delete(name)
		}
		a.root.Send(a.self, deleteDone{name: name, by: by, err: err, sender: sender})
	})
}

func (a *Actor) deleted(m deleteDone) {
	delete(a.sh.busy, m.name)
	if m.err != nil {
		a.root.Send(m.sender, errReply{err: m.err})
		return
	}
	// NB: decided again on the state as it is now: recording a deletion
	// twice (a crash handed this report over) is harmless, missing it is not.
	ds, err := Decide(a.state, Delete{Name: m.name, OnDisk: true, By: m.by})
	if err == nil {
		err = a.append(ds)
	}
	if err != nil {
		a.root.Send(m.sender, errReply{err: err})
		fail(err)
	}
	a.root.Send(m.sender, errReply{})
}

// append makes ds durable and applies them.
func (a *Actor) append(ds []events.Draft) error {
	if len(ds) == 0 {
		return nil
	}
	if a.deps.BeforeAppend != nil {
		a.deps.BeforeAppend(ds)
	}
	st, err := actors.Persist(a.deps.Log, 30*time.Second, a.state, Apply, ds)
	if err != nil {
		return fmt.Errorf("append checkpoint events: %w", err)
	}
	a.state = st
	a.sh.quota.set(st)
	return nil
}

func (a *Actor) mustAppend(ds []events.Draft) {
	if err := a.append(ds); err != nil {
		fail(err)
	}
}

// fail crashes the actor after a log failure (the caller already has the
// error): the state may be behind the log, so only a rebuild is safe.
func fail(err error) {
	panic(fmt.Errorf("checkpoint actor: %w", err))
}

func sortedNames(m map[string]Entry) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
