package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// Kernel ownership in cluster mode (docs/cluster.md, "Ownership"): each
// kernel is owned by one node through a lease in the MCPJUPYTER_OWNERS
// bucket (natsbus.Owners). This file wires it in:
//
//  1. start_kernel: the routing (cluster_route.go) asks placeKernel where a
//     new kernel goes; here, the backend claims its lease *before* the
//     kernel starts, so no kernel runs unowned;
//  2. every command for a kernel (execute, cancel, interrupt, restart,
//     shutdown, send_input, share, checkpoint save and load) runs only
//     while Owners.Held says this node renewed the lease recently enough:
//     a node cut off from the others refuses, and says so, before anything
//     runs (a local check, no NATS round trip on the execute path);
//  3. shutdown_kernel releases the lease once the shutdown is durable;
//  4. a lease another node stopped renewing is handed to the takeover
//     (takeover.go), whose revision-checked Take lets exactly one node win;
//  5. a heartbeat tells the others this node's kernels and free memory,
//     which placement weighs.

// kernelOwnership is the backend's view of the Owners; a nil *kernelOwnership is a
// single server, which owns every kernel (every method is then a no-op).
type kernelOwnership struct {
	owners *natsbus.Owners
}

// held says whether this node may act for kernel id now: nil, or the
// natsbus.NotOwnerError an agent reads (what happened, nothing was run,
// what to do).
func (o *kernelOwnership) held(id string) error {
	if o == nil {
		return nil
	}
	return o.owners.Held(events.CanonicalID(id))
}

// claim takes the lease of a new kernel before it starts.
func (o *kernelOwnership) claim(ctx context.Context, id string) error {
	if o == nil {
		return nil
	}
	if _, err := o.owners.Claim(ctx, events.CanonicalID(id)); err != nil {
		var ne *natsbus.NotOwnerError
		if errors.As(err, &ne) {
			return err
		}
		return fmt.Errorf("start kernel %s: claim its ownership in the cluster: %w; nothing was started — retry once the cluster answers (readiness check \"cluster\")", id, err)
	}
	return nil
}

// release gives up kernel id's lease (shut down, or never started). A
// failure is harmless: the lease is not renewed any more and lapses.
func (o *kernelOwnership) release(id string) {
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.owners.LeaseTime())
	defer cancel()
	_ = o.owners.Release(ctx, events.CanonicalID(id))
}

// placeKernel is the node a new kernel of spec starts on: the one with
// the most headroom (natsbus.Owners.Place); this node on a single server.
func (c *core) placeKernel(spec string) string {
	c.mu.RLock()
	own := c.own
	c.mu.RUnlock()
	if own == nil {
		return c.cfg.Cluster.Node
	}
	return own.owners.Place(spec)
}

// ownerOf is kernel id's owner node as this node last saw it.
func (c *core) ownerOf(id string) (string, bool) {
	c.mu.RLock()
	own := c.own
	c.mu.RUnlock()
	if own == nil {
		return "", false
	}
	l, ok := own.owners.Owner(events.CanonicalID(id))
	return l.Node, ok
}

// openOwnership opens and starts this node's Owners on nb (resuming the
// leases the bucket still gives it) and the heartbeat; the backend built
// after it checks, claims and releases through it. closeOwnership stops it.
func (c *core) openOwnership(ctx context.Context, nb *natsbus.Server) error {
	cl := c.cfg.Cluster
	owners, err := nb.OpenOwners(ctx, cl.Node, natsbus.OwnersOptions{Lease: cl.Lease, Replicas: nb.Replicas(),
		Logger: c.logger.With("component", "cluster")})
	if err != nil {
		return err
	}
	c.announce(owners)
	if err := owners.Start(ctx); err != nil {
		_ = owners.Close(context.Background())
		return err
	}
	c.useOwners(owners)
	return nil
}

// useOwners makes owners this node's ownership: the backend (now or when
// built) checks, claims and releases through it; a heartbeat announces
// this node every lease/3.
func (c *core) useOwners(owners *natsbus.Owners) {
	own := &kernelOwnership{owners: owners}
	hctx, stop := context.WithCancel(context.Background())
	c.mu.Lock()
	c.own, c.stopOwnership = own, stop
	if c.back != nil {
		c.back.own = own
	}
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.heartbeats(hctx, owners)
	}()
}

// leaseOwner is system.Config.Owner: the node a kernel's lease names (nil
// on a single server).
func (c *core) leaseOwner() func(string) (string, bool) {
	if c.own == nil {
		return nil
	}
	return c.ownerOf
}

// leaseHeld is system.Config.Held: each kernel's scheduler starts a
// queued execution only while this node holds the kernel's lease (nil on
// a single server).
func (c *core) leaseHeld() func(string) error {
	if c.own == nil {
		return nil
	}
	return c.own.held
}

// watchHeld makes the Owners tell sys at once when this node stops (or
// starts again) holding a kernel's lease: its scheduler stops (resumes)
// starting the queued executions without waiting for the next command.
func (c *core) watchHeld(sys *system.System) {
	c.mu.RLock()
	own := c.own
	c.mu.RUnlock()
	if own == nil {
		return
	}
	own.owners.OnHeldChange(sys.HeldChanged)
}

// releaseStray gives up the leases this node resumed at its start for
// kernels it no longer runs (shut down, or lost, while it was down): they
// would be renewed for nothing. NB: called after the actors recovered and
// before the edges serve, so no start is between its claim and its actor.
func (c *core) releaseStray() {
	c.mu.RLock()
	own, sys := c.own, c.sys
	c.mu.RUnlock()
	if own == nil || sys == nil {
		return
	}
	for _, id := range own.owners.Mine() {
		if !sys.HasKernel(id) {
			own.release(id)
			c.logger.Info("released the lease of a kernel this node no longer runs", "component", "cluster", "kernel_id", id)
		}
	}
}

// startLeaseTakeovers hands every lapsed lease to the takeovers
// (takeover.go), until closeOwnership. Without the history import it starts
// nothing: a takeover must not miss the lost node's records.
func (c *core) startLeaseTakeovers() {
	c.mu.RLock()
	own, im := c.own, c.importer
	c.mu.RUnlock()
	if own == nil || im == nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	c.mu.Lock()
	prev := c.stopOwnership
	c.stopOwnership = func() { stop(); prev() }
	c.mu.Unlock()
	lapsed := make(chan lapsedKernel)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.runTakeovers(ctx, lapsed)
	}()
	go func() {
		defer c.wg.Done()
		defer close(lapsed)
		c.offerLapsed(ctx, own.owners, im, lapsed)
	}()
}

// closeOwnership stops the heartbeat and the takeovers and closes the
// Owners (its leases are not released: they lapse, see natsbus.Owners.Close).
func (c *core) closeOwnership(ctx context.Context) error {
	c.mu.Lock()
	own := c.own
	stop := c.stopOwnership
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if own == nil {
		return nil
	}
	return own.owners.Close(ctx)
}

// offerLapsed turns each lapsed lease into a takeover (takeover.go) until
// ctx ends or the Owners close.
func (c *core) offerLapsed(ctx context.Context, owners *natsbus.Owners, im historyImporter, out chan<- lapsedKernel) {
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-owners.Lapsed():
			if !ok {
				return
			}
			select {
			case out <- c.lapsed(l, owners, im):
			case <-ctx.Done():
				return
			}
		}
	}
}

// heartbeats tells the others, every lease/3, this node's running kernels
// and free memory (the Owners put it with their renewals).
func (c *core) heartbeats(ctx context.Context, owners *natsbus.Owners) {
	t := time.NewTicker(owners.LeaseTime() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.announce(owners)
		}
	}
}

// announce sets what the next heartbeat says.
func (c *core) announce(owners *natsbus.Owners) {
	mem, _ := memAvailable() // NB: 0 when unknown: placement then weighs kernels only
	n := natsbus.NodeInfo{Kernels: len(c.procs.Current()), MemAvailable: mem}
	c.mu.RLock()
	launcher := c.launcher
	c.mu.RUnlock()
	if launcher != nil {
		if specs, err := launcher.Specs(); err == nil {
			for _, s := range specs.Specs {
				n.Specs = append(n.Specs, s.Name)
			}
		}
	}
	owners.Announce(n)
}
