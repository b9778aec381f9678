package main

import (
	"context"
	"time"
)

// autoCheckpointPrefix starts every auto-checkpoint's name; agents cannot
// save under it (the server's names).
const autoCheckpointPrefix = "auto-"

// autoCheckpointName is the name of kernelID's auto-checkpoint, in its
// owner's checkpoints: the newest state the server saved of that kernel.
func autoCheckpointName(kernelID string) string { return autoCheckpointPrefix + kernelID }

// autoCheckpointReport is what one pass of auto-checkpoints did.
type autoCheckpointReport struct {
	Saved    []string          // kernel ids saved
	Skipped  map[string]string // kernel id -> why not (busy, unchanged, no state, quota ...)
	Failed   map[string]string // kernel id -> error
	Duration time.Duration
}

// autoCheckpointAll saves, before ctx ends, the auto-checkpoint of every
// running kernel whose state changed since its last one (after a
// shutdown's drain). TODO(issue 18, helper autockpt).
func (c *core) autoCheckpointAll(ctx context.Context) autoCheckpointReport {
	return autoCheckpointReport{}
}

// autoCheckpoint saves kernelID's auto-checkpoint now if its state changed
// since the last one (before a cull). TODO(issue 18, helper autockpt).
func (c *core) autoCheckpoint(ctx context.Context, kernelID string) error {
	return nil
}
