package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// SnapshotName names the actor's snapshot in the log. NB: stored in the
// log; must not change.
const SnapshotName = "actor.lease"

// StreamPrefix is the prefix of the streams the actor owns (asset/<sha256>).
const StreamPrefix = "asset/"

// gcBatch is how many assets one GC append covers.
const gcBatch = 16384

// snapshotEvery: the actor saves its snapshot after so many of its events
// (and when it stops), so a restart folds at most that many.
const snapshotEvery = 50_000

// Log is what the actor needs from the event log (infra/eventlog
// implements it). Append returns when the events are durable. ReadStreams
// visits every event of the streams starting with prefix whose seq > after,
// grouped by stream, each stream in order. Snapshots are stored durably.
type Log interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
	ReadStreams(ctx context.Context, prefix string, after uint64, fn func(events.Event) error) error
	SaveSnapshot(name string, seq uint64, data []byte) error
	LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error)
}

// Files is the content-addressed file store (infra/assetstore implements
// it). Put is durable when it returns; Delete removes files (missing ones
// are not an error); List names every stored sum. Safe for concurrent use.
type Files interface {
	Put(data []byte) (sum string, created bool, err error)
	Open(sum string) (*os.File, int64, error)
	Delete(sums ...string) error
	List(fn func(sum string) error) error
	Dir() string
}

// Deps are what the actor needs from outside.
type Deps struct {
	Log   Log
	Files Files
	TTL   time.Duration
	Now   func() time.Time
	// Logger gets the actor's lines (component=lease).
	Logger *slog.Logger
	// GCBatch is how many assets one GC append covers (default 16384).
	GCBatch int
	// BeforeAppend, for tests only, runs before every append with the
	// drafts about to be written: a test panics from it to crash the actor
	// in the middle of work.
	BeforeAppend func([]events.Draft)
}

// Messages the actor answers (the Client sends them).
type (
	putFile struct {
		sum, mime string
		data      []byte
		origin    Origin
		by        string
	}
	putReply struct {
		sum string
		err error
	}
	renewMsg   struct{ sum, holder, by string }
	renewReply struct {
		exp time.Time
		err error
	}
	readMsg   struct{ sum, by string }
	readReply struct {
		f    *os.File
		size int64
		mime string
		err  error
	}
	collectMsg   struct{}
	collectReply struct {
		res Collected
		err error
	}
	assetMsg   struct{ sum string }
	assetReply struct {
		a  Asset
		ok bool
	}
	readyMsg   struct{}
	readyReply struct{ err error }
)

// Internal messages: the owned goroutines report back.
type (
	fileWritten struct {
		put    putFile
		sender *actor.PID
		err    error
	}
	filesDeleted struct {
		sums []string
		err  error
	}
	gcStep       struct{}
	adoptFiles   struct{ sums []string }
	snapshotDone struct {
		seq uint64
		err error
	}
)

// Collected is one GC run's outcome.
type Collected struct {
	Expired int      // LeaseExpired events
	Sums    []string // assets collected
	Bytes   int64
	Now     time.Time // the clock the last decision was taken at
}

// gcRun is a GC in progress: its candidates, its outcome, the callers
// waiting for it.
type gcRun struct {
	cands       []string
	res         Collected
	outstanding int // batches whose files are being deleted
	err         error
	waiters     []*actor.PID
}

// Actor is the protoactor shell of the lease actor.
type Actor struct {
	deps  Deps
	self  *actor.PID
	root  *actor.RootContext
	state State
	err   error // recovery failed: every command gets it

	// writing counts Puts whose file is being written (the GC skips them);
	// pending are collected sums whose files are being deleted; a Put of
	// one waits in waiting until the deletion reported back.
	writing map[string]int
	pending map[string]bool
	waiting map[string][]fileWritten
	writers sync.WaitGroup

	deletes chan []string
	delDone chan struct{}

	// cur is the command being handled and who asked: if it crashes the
	// actor, the replacement handles it again from the recovered state.
	cur       any
	curSender *actor.PID

	gc       *gcRun
	sinceSnp int
	snapping bool
	snapWG   sync.WaitGroup
}

// Props returns the actor's props. The actor recovers on every start.
func Props(deps Deps) *actor.Props {
	if deps.GCBatch <= 0 {
		deps.GCBatch = gcBatch
	}
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{deps: deps} })
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Restarting:
		a.handOver(ctx)
	case *actor.Stopping:
		a.stop()
	case readyMsg:
		ctx.Respond(readyReply{err: a.err})
	case putFile:
		a.put(ctx, fileWritten{put: m, sender: ctx.Sender()})
	case fileWritten:
		a.cur = m
		a.written(ctx, m)
	case renewMsg:
		a.cur, a.curSender = m, ctx.Sender()
		exp, err := a.renew(m.sum, m.holder, m.by)
		ctx.Respond(renewReply{exp: exp, err: err})
	case readMsg:
		a.cur, a.curSender = m, ctx.Sender()
		ctx.Respond(a.read(m.sum, m.by))
	case assetMsg:
		x, ok := a.state.Assets[m.sum]
		var c Asset
		if ok {
			c = *clone(x, m.sum)
		}
		ctx.Respond(assetReply{a: c, ok: ok})
	case collectMsg:
		a.collect(ctx)
	case gcStep:
		a.gcStep(ctx)
	case adoptFiles:
		a.cur = m
		a.adopt(m.sums)
	case filesDeleted:
		a.deleted(ctx, m)
	case snapshotDone:
		a.snapping = false
		if m.err != nil {
			a.deps.Logger.Warn("save lease snapshot", "err", m.err)
		}
	}
	a.cur, a.curSender = nil, nil
}

// start recovers: the snapshot, then the actor's own streams after it,
// then the files against the state (redo deletions of collected assets,
// adopt files no event names). Replay performs no effect of its own.
func (a *Actor) start(ctx actor.Context) {
	a.self, a.root = ctx.Self(), ctx.ActorSystem().Root
	a.writing, a.pending, a.waiting = map[string]int{}, map[string]bool{}, map[string][]fileWritten{}
	a.deletes, a.delDone = make(chan []string, 4), make(chan struct{})
	go a.deleter(a.deletes, a.delDone)
	if err := a.recover(); err != nil {
		a.err = fmt.Errorf("recover lease actor: %w", err)
		a.deps.Logger.Error("recover", "err", a.err)
	}
}

func (a *Actor) recover() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a.state = NewState()
	seq, data, ok, err := a.deps.Log.LoadSnapshot(SnapshotName)
	if err != nil {
		return err
	}
	if ok {
		if a.state, err = DecodeState(data); err != nil {
			return err
		}
		seq = a.state.Seq
	}
	err = a.deps.Log.ReadStreams(ctx, StreamPrefix, seq, func(e events.Event) error {
		a.state = Apply(a.state, e)
		a.sinceSnp++
		return nil
	})
	if err != nil {
		return err
	}
	var redo, unknown []string
	err = a.deps.Files.List(func(sum string) error {
		x := a.state.Assets[sum]
		switch {
		case x != nil && x.Collected:
			redo = append(redo, sum)
		case !x.Stored():
			unknown = append(unknown, sum)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list asset files: %w", err)
	}
	if len(redo) > 0 {
		// NB: before the actor serves anything: no file the log calls
		// collected survives a start (at most the batches a crash cut).
		a.deps.Logger.Info("finishing an interrupted asset GC", "files", len(redo))
		if err := a.deps.Files.Delete(redo...); err != nil {
			return fmt.Errorf("delete collected assets: %w", err)
		}
	}
	if len(unknown) > 0 {
		// NB: adopted by a message, so a Put the crashed instance handed
		// over (queued before this) records its file with its real origin
		// first, and the adoption then skips it.
		a.root.Send(a.self, adoptFiles{sums: unknown})
	}
	return nil
}

// adopt records files found on disk that no event names (a Put
// interrupted between its file and its append): with a fresh lease, rather
// than delete bytes a reply may already link.
func (a *Actor) adopt(sums []string) {
	now, n := a.deps.Now(), 0
	for _, sum := range sums {
		if a.state.Assets[sum].Stored() {
			continue
		}
		f, size, err := a.deps.Files.Open(sum)
		if err != nil {
			a.deps.Logger.Warn("adopt asset file", "sha256", sum, "err", err)
			continue
		}
		f.Close()
		mime := "application/octet-stream"
		// NB: files written before assets were leased have a .mime sidecar.
		if m, err := os.ReadFile(filepath.Join(a.deps.Files.Dir(), sum+".mime")); err == nil && len(m) > 0 {
			mime = strings.TrimSpace(string(m))
		}
		ds, _ := Decide(a.state, Adopt{SHA256: sum, MIME: mime, Size: size}, now, a.deps.TTL)
		if err := a.append(ds); err != nil {
			fail(err)
		}
		n++
	}
	if n > 0 {
		a.deps.Logger.Info("adopted asset files the log did not know", "files", n)
	}
}

// handOver runs on the crashed instance before its replacement starts: it
// waits for its goroutines (a file being written or deleted finishes; its
// report reaches the new instance) and re-queues the callers it owes an
// answer, so the new instance, recovered from the log, serves them.
func (a *Actor) handOver(ctx actor.Context) {
	a.stopGoroutines()
	switch m := a.cur.(type) {
	case fileWritten:
		m.err = nil
		ctx.Send(a.self, m) // the file is durable: record it
	case adoptFiles:
		ctx.Send(a.self, m) // skips what is recorded by then
	case nil:
	default:
		ctx.RequestWithCustomSender(a.self, m, a.curSender)
	}
	if a.gc != nil {
		for _, w := range a.gc.waiters {
			ctx.RequestWithCustomSender(a.self, collectMsg{}, w)
		}
		a.gc = nil
	}
	for _, ws := range a.waiting {
		for _, w := range ws {
			ctx.RequestWithCustomSender(a.self, w.put, w.sender)
		}
	}
	a.waiting = nil
}

func (a *Actor) stop() {
	a.stopGoroutines()
	if a.err == nil && a.sinceSnp > 0 {
		data, err := EncodeState(a.state.Assets, a.state.Seq)
		if err == nil {
			err = a.deps.Log.SaveSnapshot(SnapshotName, a.state.Seq, data)
		}
		if err != nil {
			a.deps.Logger.Warn("save lease snapshot", "err", err)
		}
	}
	if a.gc != nil {
		for _, w := range a.gc.waiters {
			a.root.Send(w, collectReply{res: a.gc.res, err: errors.New("lease actor stopped during the GC: the next start finishes it")})
		}
	}
	for _, ws := range a.waiting {
		for _, w := range ws {
			a.root.Send(w.sender, putReply{err: errors.New("lease actor stopped: put the asset again")})
		}
	}
}

func (a *Actor) stopGoroutines() {
	a.writers.Wait()
	if a.deletes != nil {
		close(a.deletes)
		<-a.delDone
		a.deletes = nil
	}
	a.snapWG.Wait()
}

// append makes ds durable and applies them. A log failure is returned to
// the caller by the command and then crashes the actor (see fail), so
// supervision rebuilds it from the log.
func (a *Actor) append(ds []events.Draft) error {
	if len(ds) == 0 {
		return nil
	}
	if a.deps.BeforeAppend != nil {
		a.deps.BeforeAppend(ds)
	}
	st, err := actors.Persist(a.deps.Log, 30*time.Second, a.state, Apply, ds)
	if err != nil {
		return fmt.Errorf("append asset events: %w", err)
	}
	a.state = st
	a.sinceSnp += len(ds) // NB: one event per draft
	return nil
}

// fail crashes the actor after a log failure (the caller already has the
// error): the state may be behind the log, so only a rebuild is safe.
func fail(err error) {
	panic(fmt.Errorf("lease actor: %w", err))
}

func (a *Actor) put(ctx actor.Context, w fileWritten) {
	if a.err != nil {
		ctx.Send(w.sender, putReply{err: a.err})
		return
	}
	if a.pending[w.put.sum] {
		// NB: the GC is deleting these very bytes; wait, then write anew.
		a.waiting[w.put.sum] = append(a.waiting[w.put.sum], w)
		return
	}
	a.writing[w.put.sum]++
	a.writers.Add(1)
	go func() {
		defer a.writers.Done()
		_, _, err := a.deps.Files.Put(w.put.data)
		w.err = err
		a.root.Send(a.self, w)
	}()
}

func (a *Actor) written(ctx actor.Context, w fileWritten) {
	if a.writing[w.put.sum]--; a.writing[w.put.sum] <= 0 {
		delete(a.writing, w.put.sum)
	}
	if w.err != nil {
		ctx.Send(w.sender, putReply{err: fmt.Errorf("write asset file: %w", w.err)})
		return
	}
	ds, _ := Decide(a.state, Store{SHA256: w.put.sum, MIME: w.put.mime, Size: int64(len(w.put.data)), Origin: w.put.origin, By: w.put.by}, a.deps.Now(), a.deps.TTL)
	if err := a.append(ds); err != nil {
		ctx.Send(w.sender, putReply{err: err})
		fail(err)
	}
	ctx.Send(w.sender, putReply{sum: w.put.sum})
}

func (a *Actor) renew(sum, holder, by string) (time.Time, error) {
	if a.err != nil {
		return time.Time{}, a.err
	}
	ds, err := Decide(a.state, Renew{SHA256: sum, Holder: holder, By: by}, a.deps.Now(), a.deps.TTL)
	if err != nil {
		return time.Time{}, err
	}
	if err := a.append(ds); err != nil {
		defer fail(err)
		return time.Time{}, err
	}
	return a.state.Assets[sum].Leases[holder], nil
}

// read renews the read lease and opens the file. NB: the open is one
// syscall in the mailbox, so no GC can come between the renewal and it;
// the bytes are read by the caller, off the mailbox.
func (a *Actor) read(sum, by string) readReply {
	if _, err := a.renew(sum, HolderRead, by); err != nil {
		return readReply{err: err}
	}
	f, size, err := a.deps.Files.Open(sum)
	if err != nil {
		return readReply{err: fmt.Errorf("open asset %s: %w", sum, err)}
	}
	return readReply{f: f, size: size, mime: a.state.Assets[sum].MIME}
}

// collect starts a GC run (or joins the one under way). The run decides
// and appends batch by batch, one batch per message, so puts and reads are
// served between batches; each batch's files are deleted by the deleter
// while the next is decided.
func (a *Actor) collect(ctx actor.Context) {
	if a.err != nil {
		ctx.Respond(collectReply{err: a.err})
		return
	}
	if a.gc != nil {
		a.gc.waiters = append(a.gc.waiters, ctx.Sender())
		return
	}
	now := a.deps.Now()
	a.gc = &gcRun{cands: Due(a.state, now), waiters: []*actor.PID{ctx.Sender()}}
	a.gc.res.Now = now
	a.gcStep(ctx)
}

func (a *Actor) gcStep(ctx actor.Context) {
	g := a.gc
	if g == nil {
		return
	}
	now := a.deps.Now()
	var batch []string
	for len(g.cands) > 0 && len(batch) < a.deps.GCBatch {
		sum := g.cands[0]
		g.cands = g.cands[1:]
		if a.writing[sum] == 0 && !a.pending[sum] {
			batch = append(batch, sum)
		}
	}
	ds, err := Decide(a.state, Collect{Sums: batch}, now, a.deps.TTL)
	if err == nil {
		err = a.append(ds)
	}
	if err != nil {
		g.err = err
		g.cands = nil
		a.finishGC(ctx)
		fail(err)
	}
	sums := collectedSums(ds)
	g.res.Now = now
	g.res.Expired += len(ds) - len(sums)
	g.res.Sums = append(g.res.Sums, sums...)
	for _, s := range sums {
		g.res.Bytes += a.state.Assets[s].Size
	}
	if len(sums) > 0 {
		// NB: the intent is durable; only now may the files go.
		g.outstanding++
		a.schedDelete(sums)
	}
	if len(g.cands) > 0 {
		ctx.Send(a.self, gcStep{})
		return
	}
	a.finishGC(ctx)
}

func (a *Actor) schedDelete(sums []string) {
	for _, s := range sums {
		a.pending[s] = true
	}
	a.deletes <- sums
}

// deleter unlinks collected files, one batch at a time, in order, and
// reports each batch back. It ends when deletes is closed.
func (a *Actor) deleter(deletes <-chan []string, done chan<- struct{}) {
	defer close(done)
	for sums := range deletes {
		err := a.deps.Files.Delete(sums...)
		a.root.Send(a.self, filesDeleted{sums: sums, err: err})
	}
}

func (a *Actor) deleted(ctx actor.Context, m filesDeleted) {
	for _, s := range m.sums {
		delete(a.pending, s)
		for _, w := range a.waiting[s] {
			a.put(ctx, w)
		}
		delete(a.waiting, s)
	}
	if m.err != nil {
		a.deps.Logger.Error("delete collected assets (a restart finishes it)", "err", m.err)
	}
	if g := a.gc; g != nil && g.outstanding > 0 {
		g.outstanding--
		if m.err != nil && g.err == nil {
			g.err = fmt.Errorf("delete collected assets (a restart finishes it): %w", m.err)
		}
		a.finishGC(ctx)
	}
}

func (a *Actor) finishGC(ctx actor.Context) {
	g := a.gc
	if g == nil || len(g.cands) > 0 || g.outstanding > 0 {
		return
	}
	for _, w := range g.waiters {
		ctx.Send(w, collectReply{res: g.res, err: g.err})
	}
	a.gc = nil
	if a.sinceSnp >= snapshotEvery && !a.snapping {
		a.snapshot()
	}
}

// snapshot saves the state off the mailbox: Apply never changes an *Asset
// in place, so a shallow copy of the map is a consistent view.
func (a *Actor) snapshot() {
	view, seq := maps.Clone(a.state.Assets), a.state.Seq
	a.snapping, a.sinceSnp = true, 0
	a.snapWG.Add(1)
	go func() {
		defer a.snapWG.Done()
		data, err := EncodeState(view, seq)
		if err == nil {
			err = a.deps.Log.SaveSnapshot(SnapshotName, seq, data)
		}
		a.root.Send(a.self, snapshotDone{seq: seq, err: err})
	}()
}

var _ io.ReadSeekCloser = (*os.File)(nil)
