package system

import (
	"context"
	"errors"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Restoring is a kernel relaunched at recovery (Config.AutoRestore) and
// held for its restore: its queue waits until FinishRestore.
type Restoring struct {
	KernelID string
	Owner    string
	Spec     string
	// Checkpoint is the checkpoint to load (KernelRestarted.Restore); empty:
	// none exists, finish at once with the reason.
	Checkpoint string
	// Lost are the executions that were running in the gone process,
	// recorded lost by the relaunch.
	Lost []string
}

// errRestoreUnbuilt: TODO(issue 18, helper restore-actors).
var errRestoreUnbuilt = errors.New("system: restore not built yet")

// Restoring waits until every recovered kernel has re-attached, been lost
// or been relaunched, and returns those held for their restore.
func (s *System) Restoring(ctx context.Context) ([]Restoring, error) {
	return nil, nil
}

// FinishRestore records r (KernelRestored) on the kernel's stream and ends
// its hold: what was queued runs from then on.
func (s *System) FinishRestore(ctx context.Context, kernelID string, r events.KernelRestored) error {
	return errRestoreUnbuilt
}
