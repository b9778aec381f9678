package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// Taking over the kernels of a lost node (cluster mode, issue 20). When a
// node stops renewing its kernels' ownership leases, every other node sees
// each lease lapse; the one whose revision-checked update of the lease wins
// (Owners.Take) takes the kernel over:
//
//  1. it makes sure its log holds every record the lost node published
//     (Importer.CaughtUp): the executions it queued and started are then
//     all known, so none is forgotten or run twice. Run twice is ruled
//     out because the lost node sent an execute_request only once the
//     history stream had acknowledged its ExecutionStarted
//     (cluster_confirm.go): an execution this node finds only queued was
//     never sent there;
//  2. it fetches the kernel's newest auto-checkpoint from the cluster's
//     object store (fetchCheckpoint), verified like a local file;
//  3. system.Adopt appends KernelAdopted and relaunches the kernel under its
//     id (KernelRestarted{Restore: auto-<id>}), the lost node's started
//     executions recorded lost naming it;
//  4. the --auto-restore path (restore.go) loads the checkpoint and
//     finishes the restore: the queued executions then run, once each.
//
// A node that lost the race leaves the kernel alone. A node that comes back
// after its kernels were taken (cut off, then reconnected) lets them go when
// it imports the other node's KernelAdopted (watchAdoptions).

// errTakenByOther: another node won the take of a lease (natsbus
// ErrTakenByOther, as takeoverDeps.take reports it).
var errTakenByOther = errors.New("another node took the kernel first")

// takeoverDeps are the cluster's parts a takeover uses (ownership,
// history import, checkpoint store), wired in cluster mode.
type takeoverDeps struct {
	// take makes this node the kernel's owner with a revision-checked
	// update of the lapsed lease; errTakenByOther (wrapped) when another
	// node won.
	take func(ctx context.Context) error
	// release gives the lease up again (a takeover that cannot go on).
	release func(ctx context.Context) error
	// caughtUp returns once every record node published is imported.
	caughtUp func(ctx context.Context, node string) error
	// fetch makes the checkpoint of that stored name known to this node's
	// checkpoint actor (fetched from the object store and verified);
	// nil: the cluster stores no checkpoints.
	fetch func(ctx context.Context, stored string) error
}

// takeoverStep bounds each step before the relaunch: a cluster that cannot
// answer within it leaves the kernel to the next node that tries.
const takeoverStep = 30 * time.Second

// takeOverKernel takes kernel id over from node from (why: how it was
// lost). It returns once the kernel runs on this node held for its
// restore, whose load runs in a goroutine the core owns; or nil when
// another node took it first; or why it could not be taken over.
func (c *core) takeOverKernel(ctx context.Context, id, from, why string, d takeoverDeps) error {
	logger := c.logger.With("component", "cluster", "kernel_id", id, "from", from)
	began := time.Now()
	if err := step(ctx, func(ctx context.Context) error { return untilAnswered(ctx, d.take, errTakenByOther) }); errors.Is(err, errTakenByOther) {
		logger.Info("kernel taken over by another node", "err", err)
		return nil
	} else if err != nil {
		return fmt.Errorf("take kernel %s from node %s: %w", id, from, err)
	}
	// NB: asked again while the stream does not answer: the lost node may
	// have led the history stream's Raft group too (untilAnswered).
	caughtUp := func(ctx context.Context) error { return d.caughtUp(ctx, from) }
	if err := step(ctx, func(ctx context.Context) error { return untilAnswered(ctx, caughtUp, nil) }); err != nil {
		// NB: adopting without all of the lost node's records could forget
		// an execution it queued: give the lease back for another try.
		c.giveBack(d, logger)
		return fmt.Errorf("take kernel %s from node %s: import what node %s published: %w", id, from, from, err)
	}
	// NB: read once caught up, before the kernel's actors fold the log:
	// the lost node's executions queued after it are unknown here, and
	// that node ends them when it lets the kernel go (System.Disown).
	through := c.log.ForeignOrigins()[from]
	st, err := streamState(ctx, c.log, id)
	if err != nil {
		c.giveBack(d, logger)
		return fmt.Errorf("take kernel %s from node %s: %w", id, from, err)
	}
	if st.Status == kernel.StatusRunning && d.fetch != nil {
		stored := checkpoint.Stored(st.EffectiveOwner(), autoCheckpointName(id))
		fetch := func(ctx context.Context) error { return d.fetch(ctx, stored) }
		// NB: asked again while the store does not answer: the lost or
		// cut-off node may have led the store's Raft group (untilAnswered);
		// a checkpoint refused by its HMAC is final.
		if err := step(ctx, func(ctx context.Context) error { return untilAnswered(ctx, fetch, checkpoint.ErrRejected) }); err != nil {
			// NB: not fatal: the restore then records why nothing loaded
			// (KernelRestored.Error), which the kernel's next caller reads.
			logger.Warn("fetch the kernel's auto-checkpoint: it runs again without its variables", "checkpoint", stored, "err", err)
		}
	}
	if err := c.sys.Adopt(ctx, id, kernel.AdoptFrom{From: from, Reason: why, Through: through}); err != nil {
		if !c.sys.HasKernel(id) {
			// NB: the lease was taken but no actor runs the kernel here
			// (nothing to take over: it was shut down; or the adoption
			// failed): renewing it would keep the kernel from everyone.
			// Given back, a kernel that is gone leaves the bucket; one
			// that could not be adopted lapses again for the next try.
			c.giveBack(d, logger)
		}
		return fmt.Errorf("take kernel %s from node %s: %w", id, from, err)
	}
	r, held, err := c.sys.Held(ctx, id)
	if err != nil {
		return fmt.Errorf("take kernel %s from node %s: %w", id, from, err)
	}
	logger.Info("kernel taken over", "reason", why, "held", held, "took", time.Since(began).Round(time.Millisecond).String())
	if held {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.restore(ctx, r)
		}()
	}
	return nil
}

// step runs one takeover step bounded by takeoverStep.
func step(ctx context.Context, fn func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, takeoverStep)
	defer cancel()
	return fn(sctx)
}

// takeRetry is how often a take the cluster did not answer is asked
// again.
const takeRetry = 250 * time.Millisecond

// untilAnswered runs fn until it succeeds, fails with final, or ctx
// ends. NB: the lost node often led the owners bucket's Raft group too;
// JetStream answers its updates only once the others elected a new leader
// (4 to 9 s after its last heartbeat, nats-server's election timeout):
// asking again at once, rather than at the next lapse of the lease, takes
// the kernel as soon as the bucket answers. The same for the checkpoint
// store.
func untilAnswered(ctx context.Context, fn func(context.Context) error, final error) error {
	for {
		err := fn(ctx)
		if err == nil || errors.Is(err, final) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(takeRetry):
		}
	}
}

func (c *core) giveBack(d takeoverDeps, logger *slog.Logger) {
	if d.release == nil {
		return
	}
	if err := step(context.Background(), d.release); err != nil {
		logger.Warn("give back the kernel's lease (it lapses on its own)", "err", err)
	}
}

// streamState folds kernel id's stream as its kernel actor would.
func streamState(ctx context.Context, l *eventlog.Log, id string) (kernel.State, error) {
	var st kernel.State
	err := l.ReadStream(ctx, events.KernelStream(id), 0, func(e events.Event) error {
		st = kernel.Apply(st, e)
		return nil
	})
	if err != nil {
		return kernel.State{}, fmt.Errorf("read kernel %s's records: %w", id, err)
	}
	if st.Status == kernel.StatusNew {
		return kernel.State{}, fmt.Errorf("this node's log holds no record of kernel %s", id)
	}
	return st, nil
}

// watchAdoptions follows the log for KernelAdopted records another node
// wrote (imported) about a kernel this node still runs: it was cut off
// while that node took the kernel over. The kernel's actors stop without
// appending and this node's process of it is killed (system.Disown); a
// kernel whose actors were not running here (not recovered at start) has
// its process here killed if it still runs. It runs until ctx ends.
func (c *core) watchAdoptions(ctx context.Context, l *eventlog.Log, self string, after uint64) {
	for {
		err := l.FollowRaw(ctx, after, func(e events.Event) error {
			after = e.Seq
			if e.Type != events.TypeKernelAdopted || e.Node == self {
				return nil
			}
			var through uint64
			if err := e.DecodePayload(); err != nil {
				// NB: the kernel is let go of all the same; what this node
				// queued unknown to the adopter stays open.
				c.logger.Warn("decode another node's KernelAdopted record", "component", "cluster", "seq", e.Seq, "err", err)
			} else if p, ok := e.Payload.(events.KernelAdopted); ok {
				through = p.Through
			}
			c.disownConfirmed(ctx, e.Kernel, e.Node, e.Seq, through)
			return nil
		})
		if ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
			return
		}
		// NB: retention passed the follower (it lagged a whole retention
		// window): what it skipped was handled at this node's start.
		c.logger.Warn("follow the log for takeovers by other nodes: resuming at its end", "component", "cluster", "err", err)
		after = l.Last()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// adoptionConfirmWait bounds how long an imported KernelAdopted waits for
// the ownership leases to confirm it. NB: a node healed after a cut
// imports the other nodes' records as soon as its routes are back, while
// its lease watch may take tens of seconds to catch up (the KV stream's
// leader elected again): a lease time alone ignored true adoptions and
// left the old process running.
const adoptionConfirmWait = 2 * time.Minute

// confirmingAtOnce bounds the adoptions waiting for their confirmation.
const confirmingAtOnce = 64

// disownConfirmed lets kernel id go once the leases confirm node by took it
// over (adoptionConfirmed), in a goroutine the core owns: the follower of
// the log goes on meanwhile. One wait per kernel at a time.
func (c *core) disownConfirmed(ctx context.Context, id, by string, seq, through uint64) {
	id = events.CanonicalID(id)
	c.confirmMu.Lock()
	if c.confirming == nil {
		c.confirming = map[string]bool{}
	}
	if c.confirming[id] || len(c.confirming) >= confirmingAtOnce {
		busy := len(c.confirming) >= confirmingAtOnce
		c.confirmMu.Unlock()
		if busy {
			c.logger.Warn("ignored another node's KernelAdopted record: too many adoptions being confirmed", "component", "cluster",
				"kernel_id", id, "by", by, "seq", seq, "limit", confirmingAtOnce)
		}
		return
	}
	c.confirming[id] = true
	c.confirmMu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.confirmMu.Lock()
			delete(c.confirming, id)
			c.confirmMu.Unlock()
		}()
		if err := c.adoptionConfirmed(ctx, id, by, adoptionConfirmWait); err != nil {
			// NB: a KernelAdopted record alone proves nothing: anyone who
			// could inject a history record would kill kernels with it.
			if ctx.Err() == nil {
				c.logger.Warn("ignored another node's KernelAdopted record: the ownership leases do not confirm it",
					"component", "cluster", "kernel_id", id, "by", by, "seq", seq, "err", err)
			}
			return
		}
		c.disown(ctx, id, by, through)
	}()
}

// adoptionConfirmed returns nil once the ownership leases show node by
// holding kernel id's lease and this node no longer holding it; else, after
// within (the lease watch may lag the imported record), why not.
func (c *core) adoptionConfirmed(ctx context.Context, id, by string, within time.Duration) error {
	c.mu.RLock()
	own := c.own
	c.mu.RUnlock()
	if own == nil || own.owners == nil {
		return errors.New("this node has no ownership leases to check it against")
	}
	kid := events.CanonicalID(id)
	wait := time.NewTimer(within)
	defer wait.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		l, seen := own.owners.Owner(kid)
		if seen && l.Node == by && own.owners.Held(kid) != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			if !seen {
				return fmt.Errorf("kernel %s has no lease", id)
			}
			return fmt.Errorf("kernel %s's lease is held by node %s, not %s", id, l.Node, by)
		case <-tick.C:
		}
	}
}

// disown lets kernel id go: node by took it over, knowing this node's
// records up to through (KernelAdopted.Through).
func (c *core) disown(ctx context.Context, id, by string, through uint64) {
	logger := c.logger.With("component", "cluster", "kernel_id", id, "by", by)
	if c.sys.HasKernel(id) {
		dctx, cancel := context.WithTimeout(ctx, takeoverStep)
		defer cancel()
		if err := c.sys.Disown(dctx, id, by, through); err != nil && !errors.Is(err, system.ErrClosed) {
			logger.Error("let go of a kernel another node took over", "err", err)
		}
		return
	}
	// NB: the process table may have retired it already (it saw the same
	// KernelAdopted): then it is an orphan.
	for _, p := range append(c.procs.Current(), c.procs.Orphans()...) {
		if p.Kernel != id || !alive(p) {
			continue
		}
		if err := jupyter.SignalGroup(p.Pid, p.Start, syscall.SIGKILL); err != nil {
			logger.Warn("kill this node's process of a kernel another node took over", "pid", p.Pid, "err", err)
			continue
		}
		logger.Warn("killed this node's process of a kernel another node took over", "pid", p.Pid)
	}
}

// lapsedKernel is a kernel whose owner stopped renewing its lease, with
// what taking it over needs (takeOver builds it from the Owners' lapse).
type lapsedKernel struct {
	Kernel, From string
	// Why says how the owner was lost ("node a stopped renewing its
	// ownership lease 12s ago"): KernelAdopted.Reason.
	Why  string
	Deps takeoverDeps
}

// takeoversAtOnce bounds the takeovers under way: each relaunches a
// kernel process (and its restore unpickles a checkpoint).
const takeoversAtOnce = 2

// runTakeovers takes over the kernels of lapsed, a few at once, until ctx
// ends or lapsed is closed. A takeover that fails is logged: the lease,
// given back or never taken, lapses again for the next try.
func (c *core) runTakeovers(ctx context.Context, lapsed <-chan lapsedKernel) {
	slots := make(chan struct{}, takeoversAtOnce)
	var wg sync.WaitGroup
	defer wg.Wait()
	// NB: a lease is offered again each lease time while still lapsed: a
	// kernel whose takeover is under way is not taken twice at once.
	var mu sync.Mutex
	busy := map[string]bool{}
	for {
		var k lapsedKernel
		var ok bool
		select {
		case <-ctx.Done():
			return
		case k, ok = <-lapsed:
			if !ok {
				return
			}
		}
		mu.Lock()
		dup := busy[k.Kernel]
		busy[k.Kernel] = true
		mu.Unlock()
		if dup {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer func() { mu.Lock(); delete(busy, k.Kernel); mu.Unlock() }()
			if err := c.takeOverKernel(ctx, k.Kernel, k.From, k.Why, k.Deps); err != nil && ctx.Err() == nil {
				c.logger.Error("take over a kernel of a lost node", "component", "cluster", "kernel_id", k.Kernel, "from", k.From, "err", err)
			}
		}()
	}
}

// startTakeovers starts, in cluster mode, the follower that lets go of the
// kernels other nodes took over (watchAdoptions), from seq after on.
// NB: the takeovers themselves start from the ownership leases' lapses
// (takeOver, wired with the Owners).
func (c *core) startTakeovers(ctx context.Context, l *eventlog.Log, after uint64) {
	self := c.cfg.Cluster.NodeName()
	if self == "" {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watchAdoptions(ctx, l, self, after)
	}()
}

// leaseOwners is what takeovers use of the ownership leases
// (natsbus.Owners).
type leaseOwners interface {
	Take(ctx context.Context, l natsbus.Lease) (natsbus.Lease, error)
	Release(ctx context.Context, kernelID string) error
	Lapsed() <-chan natsbus.Lease
	LeaseTime() time.Duration
}

var (
	_ leaseOwners     = (*natsbus.Owners)(nil)
	_ historyImporter = (*natsbus.Importer)(nil)
)

// historyImporter is what takeovers use of the history import
// (natsbus.Importer).
type historyImporter interface {
	CaughtUp(ctx context.Context, node string) error
}

// takeOver takes over the kernel of lease l, which its node stopped
// renewing (see takeOverKernel).
func (c *core) takeOver(ctx context.Context, l natsbus.Lease, owners leaseOwners, im historyImporter) error {
	k := c.lapsed(l, owners, im)
	return c.takeOverKernel(ctx, k.Kernel, k.From, k.Why, k.Deps)
}

// lapsed is the takeover of lease l.
func (c *core) lapsed(l natsbus.Lease, owners leaseOwners, im historyImporter) lapsedKernel {
	why := fmt.Sprintf("node %s stopped renewing its ownership lease (not renewed for the lease time, %s; last renewed at %s)",
		l.Node, owners.LeaseTime(), l.Renewed.UTC().Format(time.RFC3339))
	return lapsedKernel{Kernel: l.Kernel, From: l.Node, Why: why, Deps: takeoverDeps{
		take: func(ctx context.Context) error {
			_, err := owners.Take(ctx, l)
			if errors.Is(err, natsbus.ErrTakenByOther) || errors.Is(err, natsbus.ErrLeaseLive) {
				return fmt.Errorf("%w: %v", errTakenByOther, err)
			}
			return err
		},
		release:  func(ctx context.Context) error { return owners.Release(ctx, l.Kernel) },
		caughtUp: im.CaughtUp,
		fetch:    c.fetchCheckpoint,
	}}
}
