package system

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ErrNotCluster: Adopt on a system without Config.Node.
var ErrNotCluster = errors.New("system: not a cluster node (no node name)")

// Adopt takes over kernel kernelID, which node adopt.From ran until it was
// lost (adopt.Reason says how; adopt.Through is the newest of its records
// imported), in a cluster: it spawns the kernel's actors on this
// node; the kernel actor appends KernelAdopted and relaunches a fresh
// process of the kernel's kernelspec under its id (KernelRestarted
// {Restore}, as --auto-restore does; the lost node's process is never
// attached to nor signalled), and the scheduler records the executions the
// lost node had started lost, naming it, and holds the queued ones until
// FinishRestore. It returns once that is done (Held then says what to
// restore), or why not. A kernel that was dead or lost on node from is
// adopted as it is (this node's to restart_kernel). The kernel's records
// must be in this node's log (imported) before.
func (s *System) Adopt(ctx context.Context, kernelID string, adopt kernel.AdoptFrom) error {
	from := adopt.From
	id := events.CanonicalID(kernelID)
	if s.cfg.Node == "" {
		return fmt.Errorf("adopt kernel %s: %w", id, ErrNotCluster)
	}
	if from == s.cfg.Node {
		return fmt.Errorf("adopt kernel %s: it is this node's (%s) already", id, from)
	}
	s.mu.RLock()
	_, runs := s.kernels[id]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if runs {
		return fmt.Errorf("adopt kernel %s: this node (%s) already runs it", id, s.cfg.Node)
	}
	e := s.spawn(id, "", "", &adopt)
	res, err := s.request(e.kernel, kernel.GetState{})
	if err != nil {
		s.forget(id)
		return fmt.Errorf("adopt kernel %s: %w", id, err)
	}
	st := res.(kernel.Result).State
	if st.Status == kernel.StatusNew || st.Adopted == nil || st.Adopted.By != s.cfg.Node {
		s.forget(id)
		return fmt.Errorf("adopt kernel %s from node %s: %w", id, from, notAdoptable(st, s.cfg.Node))
	}
	s.mu.Lock()
	e.label, e.notebook = st.Label, st.Notebook
	s.mu.Unlock()
	timeout := outcomeWait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	res, err = result(ctx, s.actors.Root.RequestFuture(e.scheduler, scheduler.Outcome{}, timeout))
	if err != nil {
		// NB: the kernel stays adopted (its KernelAdopted is durable): its
		// relaunch goes on, and Held finds it later.
		return fmt.Errorf("adopt kernel %s: wait for its relaunch: %w", id, err)
	}
	if o := res.(scheduler.OutcomeResult); o.Gone != "" && st.Status == kernel.StatusRunning {
		return fmt.Errorf("adopt kernel %s: %s", id, o.Gone)
	}
	return nil
}

// notAdoptable says why a kernel's stream gives it no process to take over.
func notAdoptable(st kernel.State, node string) error {
	switch {
	case st.Status == kernel.StatusNew:
		return fmt.Errorf("this node's log holds no record of it: import that node's history first")
	case st.Adopted != nil:
		return fmt.Errorf("node %s adopted it already", st.Adopted.By)
	case st.ProcessNode == node:
		return fmt.Errorf("its process is this node's (%s) by its records: it is recovered at this node's start, not adopted", node)
	}
	return fmt.Errorf("it is %s (%s): nothing to take over", st.Status, st.Reason)
}

// Held returns kernel id's restore under way (false: none): after Adopt,
// what the restore path (cmd/mcp-jupyter restore.go) loads and then
// finishes with FinishRestore. It waits for the kernel's recovery outcome
// as Restoring does.
func (s *System) Held(ctx context.Context, id string) (Restoring, bool, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Restoring{}, false, err
	}
	id = events.CanonicalID(id)
	timeout := outcomeWait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	res, err := result(ctx, s.actors.Root.RequestFuture(e.scheduler, scheduler.Outcome{}, timeout))
	if err != nil {
		return Restoring{}, false, fmt.Errorf("wait for the recovery of kernel %s: %w", id, err)
	}
	o := res.(scheduler.OutcomeResult)
	if o.Hold == nil {
		return Restoring{}, false, nil
	}
	st, err := s.Kernel(ctx, id)
	if err != nil {
		return Restoring{}, false, fmt.Errorf("read kernel %s held for its restore: %w", id, err)
	}
	if st.Restore == "" || st.RestoreSeq != o.Hold.Seq {
		return Restoring{}, false, nil // finished (or relaunched again) meanwhile
	}
	return Restoring{KernelID: id, Owner: st.EffectiveOwner(), Spec: st.Spec, Checkpoint: o.Hold.Checkpoint,
		Lost: append([]string(nil), o.Hold.Lost...), Seq: o.Hold.Seq}, true, nil
}

// Disown lets kernel id go on this node: node by took it over (its
// KernelAdopted, by another node, was imported) while this one was cut off
// from the cluster, knowing this node's records up to through
// (KernelAdopted.Through). The executions this node queued after those are
// recorded lost — the new owner never learned of them, so no one else
// would end them —; then the kernel's actors stop without appending more
// and this node's process of it is killed. The kernel is gone from this
// node's registry. A kernel this node does not run is no error (nothing to
// do).
func (s *System) Disown(ctx context.Context, id, by string, through uint64) error {
	id = events.CanonicalID(id)
	s.mu.RLock()
	e, ok := s.kernels[id]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return nil
	}
	res, err := result(ctx, s.actors.Root.RequestFuture(e.scheduler, scheduler.Disown{Node: s.cfg.Node, By: by, Through: through}, s.cfg.RequestTimeout))
	if err != nil {
		// NB: the kernel is let go of all the same: this node must not act
		// for it any more. What it queued unknown to by stays open.
		s.cfg.Logger.Error("record lost what this node queued unknown to the kernel's new owner", "kernel_id", id, "by", by, "err", err)
	}
	lost, _ := res.(scheduler.DisownResult)
	res, err = result(ctx, s.actors.Root.RequestFuture(e.kernel, kernel.Disown{}, s.cfg.RequestTimeout))
	s.forget(id)
	if err != nil {
		return fmt.Errorf("disown kernel %s (node %s took it over): %w", id, by, err)
	}
	if err := res.(kernel.Result).Err; err != nil {
		return fmt.Errorf("disown kernel %s (node %s took it over): %w", id, by, err)
	}
	s.cfg.Logger.Warn("kernel taken over by another node while this one was cut off: its actors stopped, its process here killed",
		"kernel_id", id, "by", by, "lost", lost.Lost)
	return nil
}
