package system

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Restoring is a kernel relaunched at recovery (Config.AutoRestore) and
// held for its restore: its queue waits until FinishRestore.
type Restoring struct {
	KernelID string
	// Owner is the kernel's owner (the admin's name for kernels from before
	// principals): the checkpoint is among its names.
	Owner string
	Spec  string
	// Checkpoint is the checkpoint to load (KernelRestarted.Restore); empty:
	// none exists, finish at once with the reason.
	Checkpoint string
	// Lost are the executions that were running in the gone process,
	// recorded lost by the relaunch.
	Lost []string
	// Seq is the seq of the KernelRestarted that began the hold.
	Seq uint64
}

// ErrNotHeld: FinishRestore on a kernel no restore is under way on.
var ErrNotHeld = kernel.ErrNotHeld

// outcomeWait bounds Restoring's wait when ctx has no deadline: a
// re-attach, or a relaunch, takes at most the kernel actor's operation
// timeout (60 s) each.
const outcomeWait = 5 * time.Minute

// Restoring waits until every recovered kernel has re-attached, been lost
// or been relaunched (and the executions of a gone process are recorded
// lost), and returns those held for their restore, in start order. A kernel
// held by an earlier server that stopped mid-restore is held again (the
// hold is in the log) and returned again. Call it once the system is open;
// each held kernel then needs one FinishRestore. A kernel whose outcome
// did not come in time is left out and named in the error, with the others
// returned all the same.
func (s *System) Restoring(ctx context.Context) ([]Restoring, error) {
	s.mu.RLock()
	ids := append([]string(nil), s.recovered...)
	s.mu.RUnlock()
	timeout := outcomeWait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	// NB: every kernel recovers at once; ask them all, then collect.
	type asked struct {
		id string
		f  *actor.Future
	}
	var futures []asked
	for _, id := range ids {
		e, err := s.lookup(id)
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		if err != nil {
			continue // forgotten since
		}
		futures = append(futures, asked{id, s.actors.Root.RequestFuture(e.scheduler, scheduler.Outcome{}, timeout)})
	}
	var out []Restoring
	var errs []error
	for _, a := range futures {
		res, err := result(ctx, a.f)
		if errors.Is(err, ctx.Err()) && err != nil {
			return out, fmt.Errorf("wait for the recovery of kernel %s: %w", a.id, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("wait for the recovery of kernel %s: %w", a.id, err))
			continue
		}
		o := res.(scheduler.OutcomeResult)
		if o.Hold == nil {
			continue
		}
		st, err := s.Kernel(ctx, a.id)
		if err != nil {
			errs = append(errs, fmt.Errorf("read kernel %s held for its restore: %w", a.id, err))
			continue
		}
		if st.Restore == "" || st.RestoreSeq != o.Hold.Seq {
			continue // finished (or relaunched again) meanwhile
		}
		out = append(out, Restoring{KernelID: a.id, Owner: st.EffectiveOwner(), Spec: st.Spec, Checkpoint: o.Hold.Checkpoint,
			Lost: append([]string(nil), o.Hold.Lost...), Seq: o.Hold.Seq})
	}
	return out, errors.Join(errs...)
}

// FinishRestore records r (KernelRestored) on the kernel's stream and ends
// its hold: what was queued runs from then on. r.KernelID is set to the
// kernel's. A kernel not held for a restore is refused with ErrNotHeld.
func (s *System) FinishRestore(ctx context.Context, kernelID string, r events.KernelRestored) error {
	if _, err := s.kernelCmd(kernelID, kernel.FinishRestore{Restored: r}); err != nil {
		return fmt.Errorf("finish the restore of kernel %s: %w", kernelID, err)
	}
	return nil
}

// result waits for f's answer or for ctx to end. NB: the goroutine ends
// with the future, which times out on its own.
func result(ctx context.Context, f *actor.Future) (any, error) {
	type answer struct {
		v   any
		err error
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	done := make(chan answer, 1)
	go func() {
		v, err := f.Result()
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
