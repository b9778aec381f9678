package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// cullCheckpointTimeout bounds the auto-checkpoint taken before a cull.
const cullCheckpointTimeout = 10 * time.Minute

// cullInterval is how often the culler looks (jupyter_server's
// cull_interval idea): a quarter of --cull-idle, at most a minute, so a
// kernel is culled at most that long after its idle time.
func cullInterval(idle time.Duration) time.Duration {
	return max(min(idle/4, time.Minute), 10*time.Millisecond)
}

// startCuller shuts down, every cullInterval until ctx ends, the kernels
// idle longer than --cull-idle (auto-checkpoint first), in a goroutine the
// core owns (c.wg).
func (c *core) startCuller(ctx context.Context) {
	if c.cfg.CullIdle <= 0 {
		return
	}
	every := cullInterval(c.cfg.CullIdle)
	c.logger.Info("culling idle kernels", "component", "kernel", "cull_idle", c.cfg.CullIdle.String(), "every", every.String())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.cullIdle(ctx)
			}
		}
	}()
}

// cullIdle culls every kernel idle for --cull-idle, one after the other.
func (c *core) cullIdle(ctx context.Context) {
	for _, k := range c.kernels.List() {
		if ctx.Err() != nil || c.back.draining.Load() {
			return // NB: a shutdown's own auto-checkpoint pass takes over
		}
		if !c.runsHere(k.ID) {
			continue // NB: a cluster's other kernels are their nodes' to cull
		}
		looked := c.log.Last() // NB: before the look: what follows is activity since
		if idle, ok := c.idleFor(k.ID, time.Now()); ok && idle >= c.cfg.CullIdle {
			c.cull(ctx, k, looked)
		}
	}
}

// kernelIdle: nothing runs or waits on kernel k (the read models: no
// execution active or queued, its last status not busy). The culler and the
// auto-checkpoints ask the same.
func (c *core) kernelIdle(k kernels.Kernel) bool {
	_, running := c.queue.Active(k.ID)
	return !running && c.queue.Depth(k.ID) == 0 && !k.Busy
}

// idleFor is how long kernel id has been idle: running, with no execution
// queued or running, no Jupyter frontend connected to its channels (as
// jupyter_server's cull_connected=False), and no event about it
// (execution, IOPub, frontend traffic) since then. ok is false for a kernel
// that is not idle at all.
func (c *core) idleFor(id string, now time.Time) (time.Duration, bool) {
	k, ok := c.kernels.Get(id)
	if !ok || k.State != kernels.StateRunning || !c.kernelIdle(k) {
		return 0, false
	}
	c.mu.RLock()
	japi := c.jupyter
	c.mu.RUnlock()
	if japi != nil && japi.Connections(k.ID) > 0 {
		return 0, false
	}
	return now.Sub(k.LastActivity), true
}

// cull saves kernel k's auto-checkpoint, then shuts it down
// (KernelShutDown{Culled}) if it is still idle and nobody used it since
// the look that found it idle (looked: the log's last seq before that
// look), and logs a line. NB: an
// execution submitted between the last look and the shutdown makes the
// kernel actor refuse the cull (kernel.ErrBusy); one that reaches the
// scheduler in the same instant is lost with the kernel, and its result
// says the kernel was culled.
func (c *core) cull(ctx context.Context, k kernels.Kernel, looked uint64) {
	saved := ""
	if c.cfg.AutoCheckpoint {
		cctx, cancel := context.WithTimeout(ctx, cullCheckpointTimeout)
		err := c.autoCheckpoint(cctx, k.ID)
		cancel()
		if errors.Is(err, errAutoBusy) {
			c.logger.Info("kernel not culled: it is busy", "component", "kernel", "kernel_id", k.ID)
			return
		}
		if err != nil {
			// NB: culling now would lose what ran since the last save: the
			// kernel stays, and the next look tries again. (A kernel with
			// nothing to save is no error: it is culled.)
			if ctx.Err() == nil {
				c.logger.Warn("kernel not culled: its auto-checkpoint failed", "component", "kernel", "kernel_id", k.ID, "err", err,
					"effect", "tried again at the next look; fix the cause (e.g. --max-checkpoint-bytes) or shut it down")
			}
			return
		}
		saved = c.autoCheckpointSaved(ctx, k)
	}
	// NB: the checkpoint ran code in the kernel; what matters now is that
	// nobody else queued work or connected meanwhile: not just now, but
	// since the look that found k idle (an execution that ran and ended
	// during the save is activity the --cull-idle counts from).
	if _, ok := c.idleFor(k.ID, time.Now()); !ok || c.usedSince(ctx, k.ID, looked) {
		c.logger.Info("kernel not culled: it is in use again", "component", "kernel", "kernel_id", k.ID)
		return
	}
	reason := cullReason(c.cfg.CullIdle, saved, c.cfg.AutoCheckpoint)
	err := c.sys.CullKernel(ctx, k.ID, reason)
	switch {
	case errors.Is(err, kernel.ErrBusy):
		c.logger.Info("kernel not culled: an execution reached it", "component", "kernel", "kernel_id", k.ID)
	case err != nil:
		c.logger.Warn("cull kernel", "component", "kernel", "kernel_id", k.ID, "err", err)
	default:
		c.logger.Info("kernel culled", "component", "kernel", "kernel_id", k.ID, "owner", k.Owner,
			"idle", time.Since(k.LastActivity).Round(time.Second).String(), "cull_idle", c.cfg.CullIdle.String(), "checkpoint", saved)
	}
}

// usedSince reports whether someone used kernel id after seq: an event
// about it that a principal caused (an execution, a frontend's request or
// attach). The server's own work (the auto-checkpoint's execution) has no
// principal. A log that cannot be read counts as used: the cull waits for
// a later look.
func (c *core) usedSince(ctx context.Context, id string, seq uint64) bool {
	used := false
	err := c.log.ScanKernel(ctx, id, seq, func(e events.Event) error {
		if e.Principal != "" {
			used = true
			return eventlog.ErrStop
		}
		return nil
	})
	return used || err != nil
}

// autoCheckpointSaved is the name, in the kernel owner's checkpoints, of
// k's auto-checkpoint if one exists ("" if not: it never held state, or
// none could be saved).
func (c *core) autoCheckpointSaved(ctx context.Context, k kernels.Kernel) string {
	c.mu.RLock()
	ck := c.ckpt
	c.mu.RUnlock()
	if ck == nil {
		return ""
	}
	name := autoCheckpointName(k.ID)
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := ck.ListOwned(lctx, ownerOrAdmin(k.Owner))
	if err != nil {
		return ""
	}
	want := checkpoint.Stored(k.Owner, name)
	for _, l := range list.Checkpoints {
		if l.Stored == want || (l.Name == name && l.Owner == ownerOrAdmin(k.Owner)) {
			return name
		}
	}
	return ""
}

func ownerOrAdmin(owner string) string {
	if owner == "" {
		return checkpoint.AdminOwner
	}
	return owner
}

// cullReason is KernelShutDown.Reason of a cull: why, and how an agent
// gets the kernel's variables back (what a call on the kernel then says).
func cullReason(idle time.Duration, saved string, autoCheckpoint bool) string {
	why := fmt.Sprintf("idle for %s (--cull-idle)", idle)
	switch {
	case saved != "":
		return fmt.Sprintf("%s; its variables were saved as checkpoint %s: to get them back, start_kernel a new kernel and load_environment %s into it",
			why, saved, saved)
	case !autoCheckpoint:
		return why + "; its variables were not saved (--auto-checkpoint=false): start_kernel a new kernel"
	}
	return why + "; no auto-checkpoint of it exists (it held no variables, or saving them failed: see the server log): start_kernel a new kernel"
}

// culledKernel is the error for a call on a kernel the server culled (in
// this process or an earlier one) that the caller may read: it says so
// and how to get its variables back. nil for any other reference.
func (b *backend) culledKernel(p auth.Principal, ref string) error {
	k, ok := b.kernels.Get(ref)
	if !ok || !k.Culled || !b.access.canRead(p, k.ID) {
		return nil
	}
	return fmt.Errorf("kernel %s was culled: %s", k.ID, k.Reason)
}
