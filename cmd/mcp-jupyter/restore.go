package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// restoreTimeout bounds one kernel's restore (the load of its
// auto-checkpoint): a restore that takes longer is finished with an error,
// so the kernel's queue never waits for ever.
const restoreTimeout = 10 * time.Minute

// restoresAtOnce is how many kernels are restored in parallel: each load
// unpickles in its own kernel process, and the machine is a few cores.
const restoresAtOnce = 2

// finishTimeout bounds the append that ends a restore's hold.
const finishTimeout = 30 * time.Second

// startRestores loads the auto-checkpoint of every kernel relaunched at
// recovery (system.Restoring), in goroutines the core owns, and finishes
// each restore (system.FinishRestore) with what was and was not restored.
// Every restore is bounded by restoreTimeout and finished, with the reason
// when nothing (or not everything) came back — except when the server
// shuts down in the middle: the kernel then stays held, and the next
// start restores it (the kernel actor derives the hold from its stream).
func (c *core) startRestores(ctx context.Context) {
	if !c.cfg.AutoRestore {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		held, err := c.sys.Restoring(ctx)
		if err != nil {
			// NB: a shutdown during the wait is no error: the next start
			// finds the same kernels held (the hold is in the log).
			if ctx.Err() == nil && !errors.Is(err, system.ErrClosed) {
				c.logger.Error("find the kernels to restore", "component", "checkpoint", "err", err)
			}
			if len(held) == 0 {
				return
			}
		}
		slots := make(chan struct{}, restoresAtOnce)
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, r := range held {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				c.restore(ctx, r)
			}()
		}
	}()
}

// restore loads r's auto-checkpoint into its fresh process and finishes
// its restore. ctx ends at the server's shutdown.
func (c *core) restore(ctx context.Context, r system.Restoring) {
	began := time.Now()
	limit := c.restoreTimeout
	if limit <= 0 {
		limit = restoreTimeout
	}
	rec, cut := restoreLoad(ctx, c.ckpt, r, limit)
	fctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	var err error
	if !cut {
		err = c.sys.FinishRestore(fctx, r.KernelID, rec)
		cut = errors.Is(err, system.ErrClosed)
	}
	if cut {
		c.logger.Warn("kernel restore cut short by the shutdown: the next start restores it", "component", "checkpoint",
			"kernel_id", r.KernelID, "checkpoint", r.Checkpoint)
		return
	}
	if err != nil {
		c.logger.Error("finish kernel restore", "component", "checkpoint", "kernel_id", r.KernelID, "err", err)
		return
	}
	lvl, msg := c.logger.Info, "kernel restored"
	if rec.Error != "" {
		lvl, msg = c.logger.Warn, "kernel restored without its variables"
	}
	lvl(msg, "component", "checkpoint", "kernel_id", r.KernelID, "owner", r.Owner, "checkpoint", rec.Checkpoint,
		"restored", len(rec.Restored), "skipped", len(rec.Skipped), "missing", len(rec.Missing), "mismatched", len(rec.Mismatched),
		"lost", len(rec.Lost), "took", time.Since(began).Round(time.Millisecond).String(), "err", rec.Error)
}

// restoreLoad loads r's checkpoint (in its owner's names, as the server:
// By "", Policy warn: what loads is restored and the differences are
// reported) into the held kernel and says what came of it: no checkpoint,
// a refusal, a failure and a timeout are each an Error an agent can act
// on. cut: the server is shutting down (ctx ended, the checkpoint actor
// closed), so the outcome says nothing about the checkpoint.
func restoreLoad(ctx context.Context, ckpt *checkpoint.Client, r system.Restoring, limit time.Duration) (rec events.KernelRestored, cut bool) {
	rec = events.KernelRestored{KernelID: r.KernelID, Lost: r.Lost}
	if r.Checkpoint == "" {
		rec.Error = noAutoCheckpoint(r.KernelID)
		return rec, false
	}
	lctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := ckpt.Load(lctx, checkpoint.LoadRequest{Name: r.Checkpoint, Owner: r.Owner, KernelID: r.KernelID,
		Policy: checkpoint.PolicyWarn, Restore: true})
	if ctx.Err() != nil || errors.Is(err, checkpoint.ErrClosed) {
		return rec, true
	}
	if err != nil {
		timedOut := time.Duration(0)
		// NB: the checkpoint client's own timer, set to the same deadline,
		// may fire a hair before lctx's.
		if dl, _ := lctx.Deadline(); lctx.Err() != nil || !time.Now().Before(dl) {
			timedOut = limit
		}
		rec.Error = restoreFailed(r, err, timedOut)
		return rec, false
	}
	rec.Checkpoint, rec.SavedAt = r.Checkpoint, res.Meta.Created
	rec.Restored, rec.Missing, rec.Mismatched = res.Restored, res.Missing, res.Mismatched
	for _, v := range res.Meta.Skipped {
		rec.Skipped = append(rec.Skipped, events.CheckpointVariable{Name: v.Name, Type: v.Type, Size: v.Size, Reason: v.Reason})
	}
	return rec, false
}

// noAutoCheckpoint is the Error of a restore that found nothing to load.
func noAutoCheckpoint(kernelID string) string {
	return fmt.Sprintf("no auto-checkpoint of kernel %s was saved (it was busy when the server stopped, or --auto-checkpoint "+
		"was off): the kernel runs again under its id, but its variables are gone; run your setup code again", kernelID)
}

// restoreFailed is the Error of a load that did not restore (timedOut: it
// was cut at that bound).
func restoreFailed(r system.Restoring, err error, timedOut time.Duration) string {
	const after = "the kernel runs again under its id without its variables; run your setup code again"
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		return noAutoCheckpoint(r.KernelID)
	case timedOut > 0:
		return fmt.Sprintf("the load of auto-checkpoint %s did not finish within %s (it may still be running in the kernel, "+
			"ahead of your executions): check your variables, and load_environment %s again if they are missing", r.Checkpoint, timedOut, r.Checkpoint)
	case errors.Is(err, checkpoint.ErrRejected):
		return fmt.Sprintf("auto-checkpoint %s was refused by verification (%v): nothing of it reached the kernel; %s", r.Checkpoint, err, after)
	}
	return fmt.Sprintf("the load of auto-checkpoint %s failed (%v): %s", r.Checkpoint, err, after)
}
