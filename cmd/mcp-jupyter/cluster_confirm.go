package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// heldPoll is how often a confirmed start rechecks a lease this node
// cannot prove it holds (renewed every lease/3).
const heldPoll = 50 * time.Millisecond

// confirmStarted is the kernel actors' ConfirmStarted in cluster mode (nil
// on a single server: nothing waits). An execute_request leaves once
//  1. the history stream acknowledged its ExecutionStarted: a node taking
//     the kernel over imports it, records the execution lost and never
//     runs it again (without this, it would find it queued and run it a
//     second time);
//  2. this node can prove it still owns the kernel (Owners.Held): after
//     a partition heals the record may be acknowledged late, when another
//     node has already taken the kernel over from a history where the
//     execution was only queued, and run it.
//
// Neither wait has a timeout of its own: the execution stays started and
// unsent (the kernel's queue waits) until both hold, or until the kernel's
// actors stop (its takeover by another node disowns them).
func (c *core) confirmStarted() func(ctx context.Context, kernelID string, seq uint64) error {
	c.mu.RLock()
	hist, own := c.history, c.own
	c.mu.RUnlock()
	if hist == nil {
		return nil
	}
	return func(ctx context.Context, kernelID string, seq uint64) error {
		if err := hist.WaitConfirmed(ctx, seq); err != nil {
			return fmt.Errorf("kernel %s: %w", kernelID, err)
		}
		if own == nil {
			return nil
		}
		id := events.CanonicalID(kernelID)
		for own.owners.Held(id) != nil {
			t := time.NewTimer(heldPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("kernel %s: %w", kernelID, ctx.Err())
			case <-t.C:
			}
		}
		return nil
	}
}
