package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
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

// Why a kernel's auto-checkpoint is not saved (autoCheckpointReport.Skipped).
const (
	skipNotRunning = "not running"
	skipBusy       = "busy (an execution runs or waits): its previous auto-checkpoint stays"
	skipNoState    = "no state: it never ran anything"
	skipUnchanged  = "unchanged since its auto-checkpoint"
	skipNoTime     = "no time left before the shutdown deadline: its previous auto-checkpoint stays"
	skipNothing    = "nothing to save (no variable that can be pickled)"
	skipQuota      = "its owner's checkpoint quota (--max-checkpoint-bytes) is reached: its previous auto-checkpoint stays"
	// NB: kept until the file is loaded into the kernel by a principal, or deleted.
	skipRestoreFailed = "its restore from its auto-checkpoint failed: that file is kept (the only copy of its variables from before); load_environment it, or delete_checkpoint it, to resume its auto-checkpoints"
)

// errAutoBusy: the kernel runs or waits for an execution; its auto-checkpoint
// is not taken now.
var errAutoBusy = errors.New("kernel is busy: its auto-checkpoint is saved once it is idle")

// autoCheckpoints is the core's memory of its auto-checkpoints: which saves
// run (one per kernel at a time: the idle timer, a cull and the shutdown
// pass may ask together), what each saved covers, and how fast saves went
// (to know whether one fits before a deadline). The zero value is ready.
type autoCheckpoints struct {
	mu sync.Mutex
	// saving: kernel id -> closed when its save in progress ends.
	saving map[string]chan struct{}
	// through: kernel id -> the log's last seq before its last auto-save
	// in this process started: executions that ended after it may not be
	// in the file. (A previous process's save: its CheckpointSaved seq.)
	through map[string]uint64
	// tried: kernel id -> the change (seq of its last execution) an idle
	// save failed at: not retried until the kernel changes again.
	tried map[string]uint64
	// kept: shut-down kernels whose auto-checkpoint stays (culled, or shut
	// down by the server): looked up once.
	kept map[string]bool
	// restores: kernel id -> whether its process's restore failed.
	restores map[string]restoreVerdict
	// bytesPerSec is the speed of the last saves (a running mean).
	bytesPerSec float64
	// parallel bounds the saves of a shutdown pass (0: one per core).
	parallel int
	// idlePasses counts the idle timer's looks at the kernels (tests wait
	// on it: "no save without a change" needs passes that saved nothing).
	idlePasses uint64
}

// Bounds and defaults of the auto-checkpoints.
const (
	// autoSaveOverhead is what a save costs beside its bytes (handout, the
	// package list, fsyncs, the log): measured ~0.2 s here; kept above.
	autoSaveOverhead = 500 * time.Millisecond
	// autoSaveDefaultRate is the speed assumed before a save was measured
	// (a 50 MB save took ~1 s on this 2-core machine, dill included).
	autoSaveDefaultRate = 40e6
	// autoIdleSaveTimeout bounds one save of the idle timer.
	autoIdleSaveTimeout = 30 * time.Minute
	// autoInterruptWait bounds the wait, at the shutdown deadline, for the
	// saves cut off by an interrupt to end.
	autoInterruptWait = 2 * time.Second
)

// autoCandidate is a kernel whose auto-checkpoint should be saved.
type autoCandidate struct {
	ID, Owner   string
	ChangeSeq   uint64    // the last execution that changed it ended at this seq
	ChangeAt    time.Time // ... at this time
	PrevBytes   int64     // its previous auto-checkpoint's size (0: none)
	HasPrevious bool
}

// autoCandidate looks at one kernel in the read models: it returns why its
// auto-checkpoint is not to be saved ("" when it is). st is the checkpoint
// actor's state (which auto-checkpoints exist).
func (c *core) autoCandidate(ctx context.Context, id string, st checkpoint.State) (autoCandidate, string) {
	k, ok := c.kernels.Get(id)
	if !ok || k.State != kernels.StateRunning {
		return autoCandidate{}, skipNotRunning
	}
	if !c.kernelIdle(k) {
		return autoCandidate{}, skipBusy
	}
	cand := autoCandidate{ID: id, Owner: k.Owner}
	changeSeq, changeAt := lastChange(c.queue.List(id, ""), k.StartedAt)
	cand.ChangeSeq, cand.ChangeAt = changeSeq, changeAt
	through := uint64(0)
	if e, ok := st.Checkpoints[checkpoint.Stored(k.Owner, autoCheckpointName(id))]; ok {
		through, cand.PrevBytes, cand.HasPrevious = e.SavedSeq, e.Size, true
	}
	c.auto.mu.Lock()
	if t, ok := c.auto.through[id]; ok && cand.HasPrevious {
		through = t // NB: this process's own save: exact, where SavedSeq is after it
	}
	c.auto.mu.Unlock()
	switch {
	case changeSeq == 0 && !cand.HasPrevious:
		return autoCandidate{}, skipNoState
	case changeSeq <= through:
		return autoCandidate{}, skipUnchanged
	case cand.HasPrevious && k.Restarts > 0 && c.restoreFailed(ctx, k, through):
		return autoCandidate{}, skipRestoreFailed
	}
	return cand, ""
}

// restoreFailed: kernel k's current process was relaunched by the server
// and the restore of its auto-checkpoint (saved at seq saved) failed, and
// nobody has loaded that file into it since. The file is then the only
// copy of the kernel's variables from before: replacing it with what the
// fresh process holds would lose them. (A partial restore — variables the
// checkpoint could not hold — is no failure: saving again loses nothing.)
func (c *core) restoreFailed(ctx context.Context, k kernels.Kernel, saved uint64) bool {
	c.auto.mu.Lock()
	v, known := c.auto.restores[k.ID]
	c.auto.mu.Unlock()
	if !known || !v.started.Equal(k.StartedAt) {
		v = restoreVerdict{started: k.StartedAt}
		err := c.log.ReadStream(ctx, events.KernelStream(k.ID), 0, func(e events.Event) error {
			if p, ok := e.Payload.(events.KernelRestored); ok && !e.Time.Before(k.StartedAt) {
				v.failedSeq = 0
				if p.Error != "" && p.Checkpoint == autoCheckpointName(k.ID) {
					v.failedSeq = e.Seq
				}
			}
			return nil
		})
		if err != nil {
			return true // NB: not known: keep the file
		}
		c.auto.mu.Lock()
		if c.auto.restores == nil {
			c.auto.restores = map[string]restoreVerdict{}
		}
		c.auto.restores[k.ID] = v
		c.auto.mu.Unlock()
	}
	if v.failedSeq == 0 || saved > v.failedSeq || v.loaded {
		return false
	}
	// NB: read on from where the last look ended, so an idle pass does not
	// read the checkpoint's whole stream again.
	err := c.log.ReadStream(ctx, events.CheckpointStream(checkpoint.Stored(k.Owner, autoCheckpointName(k.ID))), max(v.failedSeq, v.readThrough),
		func(e events.Event) error {
			v.readThrough = max(v.readThrough, e.Seq)
			// NB: by anyone, the server included: a restore that only timed
			// out may have finished its load in the kernel after all.
			if p, ok := e.Payload.(events.CheckpointLoaded); ok && p.KernelID == k.ID {
				v.loaded = true
			}
			return nil
		})
	if err != nil {
		return true // NB: not known: keep the file
	}
	c.auto.mu.Lock()
	if cur, ok := c.auto.restores[k.ID]; ok && cur.started.Equal(v.started) {
		c.auto.restores[k.ID] = v
	}
	c.auto.mu.Unlock()
	return !v.loaded
}

// restoreVerdict is what the log says of a kernel process's restore.
type restoreVerdict struct {
	started   time.Time // the process (kernels.Kernel.StartedAt)
	failedSeq uint64    // its KernelRestored, when the restore failed; 0: it did not
	// readThrough: the checkpoint stream was read through this seq;
	// loaded: it holds a load of the file into the kernel after failedSeq
	// (the failure is then over for good).
	readThrough uint64
	loaded      bool
}

// lastChange is the seq and time at which the last execution that may
// have changed a kernel's variables ended: one that ran (ok, error,
// interrupted) in the kernel's current process (ended after started), and
// is not the server's checkpoint code — a save or a check changes no
// variable; a load does, unless it is the server's own restore of the
// auto-checkpoint (by no principal). Aborted, cancelled and lost
// executions did not run (or ran in a process that is gone).
func lastChange(xs []queue.Execution, started time.Time) (uint64, time.Time) {
	var seq uint64
	var at time.Time
	for _, x := range xs {
		switch x.Status {
		case queue.StatusOK, queue.StatusError, queue.StatusInterrupted:
		default:
			continue
		}
		if x.FinishedAt.Before(started) {
			continue
		}
		if fn := checkpoint.CodeCall(x.Code); fn != "" && (fn != "load" || x.By == "") {
			continue
		}
		if x.LastSeq > seq {
			seq, at = x.LastSeq, x.FinishedAt
		}
	}
	return seq, at
}

// autoSaveStart waits until no auto-save of id runs and marks one
// running; done ends it. false: ctx ended first.
func (c *core) autoSaveStart(ctx context.Context, id string) (done func(), ok bool) {
	for {
		c.auto.mu.Lock()
		ch, busy := c.auto.saving[id]
		if !busy {
			if c.auto.saving == nil {
				c.auto.saving = map[string]chan struct{}{}
			}
			ch = make(chan struct{})
			c.auto.saving[id] = ch
			c.auto.mu.Unlock()
			return func() {
				c.auto.mu.Lock()
				delete(c.auto.saving, id)
				c.auto.mu.Unlock()
				close(ch)
			}, true
		}
		c.auto.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// autoSave saves one kernel's auto-checkpoint (the caller holds its
// autoSaveStart). It remembers what the file covers and how fast it went.
// A save refused for its owner's quota is tried once more after the
// owner's auto-checkpoints of kernels that are gone were deleted: a live
// kernel's work comes before that of kernels nobody runs any more.
func (c *core) autoSave(ctx context.Context, cand autoCandidate) (checkpoint.Meta, error) {
	m, err := c.autoSaveOnce(ctx, cand)
	if errors.Is(err, checkpoint.ErrQuota) && c.collectGoneForQuota(ctx, cand) > 0 {
		m, err = c.autoSaveOnce(ctx, cand)
	}
	return m, err
}

func (c *core) autoSaveOnce(ctx context.Context, cand autoCandidate) (checkpoint.Meta, error) {
	through := c.log.Last() // NB: before the save's execution is queued
	began := time.Now()
	m, err := c.ckpt.Save(ctx, checkpoint.SaveRequest{Name: autoCheckpointName(cand.ID), Owner: cand.Owner, By: "",
		KernelID: cand.ID, Overwrite: true})
	if err != nil {
		return m, err
	}
	took := time.Since(began)
	c.auto.mu.Lock()
	defer c.auto.mu.Unlock()
	if c.auto.through == nil {
		c.auto.through = map[string]uint64{}
	}
	c.auto.through[cand.ID] = through
	if took > autoSaveOverhead && m.FileBytes > 0 {
		rate := float64(m.FileBytes) / (took - autoSaveOverhead/2).Seconds()
		if c.auto.bytesPerSec == 0 {
			c.auto.bytesPerSec = rate
		} else {
			c.auto.bytesPerSec = (c.auto.bytesPerSec + rate) / 2
		}
	}
	return m, nil
}

// autoSaveEstimate is how long cand's save is expected to take: its
// previous file's size at the measured speed, plus the fixed cost.
func (c *core) autoSaveEstimate(cand autoCandidate) time.Duration {
	c.auto.mu.Lock()
	rate := c.auto.bytesPerSec
	c.auto.mu.Unlock()
	if rate <= 0 {
		rate = autoSaveDefaultRate
	}
	return autoSaveOverhead + time.Duration(float64(cand.PrevBytes)/rate*float64(time.Second))
}

// autoParallel is how many saves a shutdown pass runs at once: one per
// core. Each save keeps its kernel's CPU (dill) and the server's (the
// chunk MACs, the writes) busy; BenchmarkAutoCheckpointShutdown compares
// 1, 2 and 4 on 2 cores.
func (c *core) autoParallel() int {
	if c.auto.parallel > 0 {
		return c.auto.parallel
	}
	return max(1, runtime.NumCPU())
}

// autoCheckpointAll saves, before ctx ends, the auto-checkpoint of every
// running kernel that is idle and whose state changed since its last one
// (after a shutdown's drain). Busy kernels are skipped: their previous
// auto-checkpoint stays. Smaller kernels go first; a save that would not
// end before ctx's deadline (by its previous size) is not started, and
// saves still running at the deadline are interrupted in their kernel, so
// none is committed half way and the previous file stays.
func (c *core) autoCheckpointAll(ctx context.Context) (r autoCheckpointReport) {
	began := time.Now()
	r = autoCheckpointReport{Skipped: map[string]string{}, Failed: map[string]string{}}
	defer func() { r.Duration = time.Since(began) }()
	c.mu.RLock()
	ck, sys := c.ckpt, c.sys
	c.mu.RUnlock()
	if ck == nil || sys == nil {
		return r
	}
	st, err := ck.State(ctx)
	if err != nil {
		c.logger.Warn("auto-checkpoints not saved: the checkpoint actor did not answer", "component", "checkpoint", "err", err)
		return r
	}
	var cands []autoCandidate
	for _, id := range sys.KernelIDs() {
		cand, why := c.autoCandidate(ctx, id, st)
		if why != "" {
			if why != skipNotRunning {
				r.Skipped[id] = why
			}
			continue
		}
		cands = append(cands, cand)
	}
	slices.SortFunc(cands, func(a, b autoCandidate) int {
		if a.PrevBytes != b.PrevBytes {
			return int(min(max(a.PrevBytes-b.PrevBytes, -1), 1))
		}
		return strings.Compare(a.ID, b.ID)
	})
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan autoCandidate)
	for range min(c.autoParallel(), max(len(cands), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cand := range next {
				saved, why, err := c.autoSaveBefore(ctx, cand)
				mu.Lock()
				switch {
				case saved:
					r.Saved = append(r.Saved, cand.ID)
				case why != "":
					r.Skipped[cand.ID] = why
				default:
					r.Failed[cand.ID] = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	for _, cand := range cands {
		next <- cand
	}
	close(next)
	wg.Wait()
	slices.Sort(r.Saved)
	for id, why := range r.Skipped {
		c.logger.Debug("auto-checkpoint not saved", "component", "checkpoint", "kernel_id", id, "why", why)
	}
	return r
}

// autoSaveBefore saves cand's auto-checkpoint if it can end before ctx's
// deadline; at the deadline it interrupts the save in the kernel.
func (c *core) autoSaveBefore(ctx context.Context, cand autoCandidate) (saved bool, skipped string, err error) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < c.autoSaveEstimate(cand) {
		return false, skipNoTime, nil
	}
	done, ok := c.autoSaveStart(ctx, cand.ID)
	if !ok {
		return false, skipNoTime, nil
	}
	defer done()
	m, err := c.autoSave(ctx, cand)
	switch {
	case err == nil:
		c.logger.Info("auto-checkpoint saved", "component", "checkpoint", "kernel_id", cand.ID, "owner", cand.Owner,
			"checkpoint", checkpoint.Display(checkpoint.Stored(cand.Owner, autoCheckpointName(cand.ID))), "bytes", m.FileBytes)
		return true, "", nil
	case errors.Is(err, checkpoint.ErrNothingSaved):
		return false, skipNothing, nil
	case errors.Is(err, checkpoint.ErrQuota):
		c.logQuota(cand, err)
		return false, skipQuota, nil
	case expired(ctx):
		c.interruptAutoSave(cand.ID)
		c.logger.Warn("auto-checkpoint cut off at the shutdown deadline: the previous one stays", "component", "checkpoint",
			"kernel_id", cand.ID, "err", err)
		return false, "", fmt.Errorf("cut off at the shutdown deadline (the previous auto-checkpoint stays): %w", err)
	}
	c.logger.Warn("auto-checkpoint not saved: the previous one stays", "component", "checkpoint", "kernel_id", cand.ID, "err", err)
	return false, "", err
}

// expired: ctx ended, or its deadline passed (the checkpoint client's wait
// ends at the deadline, a hair before ctx says so).
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// logQuota says, for the operator, why an auto-checkpoint was refused for
// quota and what to do.
func (c *core) logQuota(cand autoCandidate, err error) {
	owner := cand.Owner
	if owner == "" {
		owner = checkpoint.AdminOwner
	}
	c.logger.Warn("auto-checkpoint not saved: its owner's checkpoint quota is reached; its previous auto-checkpoint stays. "+
		"Raise --max-checkpoint-bytes, or have the owner delete checkpoints (list_checkpoints, delete_checkpoint)",
		"component", "checkpoint", "kernel_id", cand.ID, "owner", owner, "max_checkpoint_bytes", c.cfg.MaxCheckpointBytes, "err", err)
}

// interruptAutoSave stops, in the kernel, an auto-save still running at
// the shutdown deadline (KeyboardInterrupt ends kernel.py's save whole:
// nothing is committed, the previous file stays), and waits a little for
// the kernel to answer, so the checkpoint actor's close does not wait on it.
func (c *core) interruptAutoSave(id string) {
	x, ok := c.queue.Active(id)
	if !ok || x.By != "" || checkpoint.CodeCall(x.Code) != "save" {
		return // NB: only the server's own save is cut
	}
	ctx, cancel := context.WithTimeout(context.Background(), autoInterruptWait)
	defer cancel()
	if err := c.sys.InterruptKernel(ctx, id, ""); err != nil {
		c.logger.Warn("interrupt the auto-checkpoint at the deadline", "component", "checkpoint", "kernel_id", id, "err", err)
		return
	}
	for {
		changed := c.queue.Changed() // NB: before reading, so no change is missed
		if cur, ok := c.queue.Get(x.ID); !ok || cur.Status.Done() {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// autoCheckpoint saves kernelID's auto-checkpoint now if its state changed
// since the last one (before a cull). It returns nil when there is nothing
// to save (no state, unchanged, not running) and an error wrapping
// errAutoBusy when the kernel is busy.
func (c *core) autoCheckpoint(ctx context.Context, kernelID string) error {
	c.mu.RLock()
	ck := c.ckpt
	c.mu.RUnlock()
	if ck == nil {
		return errors.New("save auto-checkpoint: the checkpoint actor is not open")
	}
	done, ok := c.autoSaveStart(ctx, kernelID)
	if !ok {
		return fmt.Errorf("save auto-checkpoint of kernel %s: %w", kernelID, ctx.Err())
	}
	defer done()
	st, err := ck.State(ctx)
	if err != nil {
		return fmt.Errorf("save auto-checkpoint of kernel %s: %w", kernelID, err)
	}
	cand, why := c.autoCandidate(ctx, kernelID, st)
	switch why {
	case "":
	case skipBusy:
		return fmt.Errorf("save auto-checkpoint of kernel %s: %w", kernelID, errAutoBusy)
	default:
		return nil
	}
	if _, err := c.autoSave(ctx, cand); err != nil {
		if errors.Is(err, checkpoint.ErrNothingSaved) {
			return nil
		}
		if errors.Is(err, checkpoint.ErrQuota) {
			c.logQuota(cand, err)
		}
		return fmt.Errorf("save auto-checkpoint of kernel %s: %w", kernelID, err)
	}
	return nil
}

// startAutoCheckpoints runs, until ctx ends, the idle timer (a kernel idle
// for --auto-checkpoint-idle after a change is saved, so a server killed
// without a shutdown loses at most what ran since) and the collection of
// auto-checkpoints of kernels shut down on request, and of kernels no
// longer running past --auto-checkpoint-keep. In a goroutine the core
// owns (c.wg).
func (c *core) startAutoCheckpoints(ctx context.Context) {
	if !c.cfg.AutoCheckpoint {
		return
	}
	every := time.Minute // NB: collection only, without the idle timer
	if idle := c.cfg.AutoCheckpointIdle; idle > 0 {
		every = min(max(idle/4, 50*time.Millisecond), 30*time.Second)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			c.collectAutoCheckpoints(ctx)
			c.collectExpiredAutoCheckpoints(ctx, time.Now())
			if c.cfg.AutoCheckpointIdle > 0 {
				c.autoCheckpointIdle(ctx, time.Now())
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// autoCheckpointIdle saves, one at a time, the auto-checkpoint of every
// kernel idle for --auto-checkpoint-idle since its last change. A save that
// failed is tried again only after the kernel changed again.
func (c *core) autoCheckpointIdle(ctx context.Context, now time.Time) {
	c.mu.RLock()
	ck, sys, back := c.ckpt, c.sys, c.back
	c.mu.RUnlock()
	if ck == nil || sys == nil || back == nil {
		return
	}
	st, err := ck.State(ctx)
	if err != nil {
		return
	}
	for _, id := range sys.KernelIDs() {
		if ctx.Err() != nil || back.draining.Load() {
			return // NB: the shutdown's own pass takes over
		}
		cand, why := c.autoCandidate(ctx, id, st)
		if why != "" || now.Sub(cand.ChangeAt) < c.cfg.AutoCheckpointIdle {
			continue
		}
		c.auto.mu.Lock()
		tried := c.auto.tried[id] == cand.ChangeSeq
		c.auto.mu.Unlock()
		if tried {
			continue
		}
		if err := c.autoCheckpointIdleOne(ctx, cand); err != nil {
			c.auto.mu.Lock()
			if c.auto.tried == nil {
				c.auto.tried = map[string]uint64{}
			}
			c.auto.tried[id] = cand.ChangeSeq
			c.auto.mu.Unlock()
		}
	}
	c.auto.mu.Lock()
	c.auto.idlePasses++
	c.auto.mu.Unlock()
}

func (c *core) autoCheckpointIdleOne(ctx context.Context, cand autoCandidate) error {
	sctx, cancel := context.WithTimeout(ctx, autoIdleSaveTimeout)
	defer cancel()
	done, ok := c.autoSaveStart(sctx, cand.ID)
	if !ok {
		return nil
	}
	defer done()
	// NB: looked at again under the kernel's mark: a cull's or the
	// shutdown's save may have just taken it.
	st, err := c.ckpt.State(sctx)
	if err != nil {
		return err
	}
	if cand, why := c.autoCandidate(sctx, cand.ID, st); why != "" {
		return nil
	} else if _, err := c.autoSave(sctx, cand); err != nil {
		switch {
		case errors.Is(err, checkpoint.ErrNothingSaved):
		case errors.Is(err, checkpoint.ErrQuota):
			c.logQuota(cand, err)
		default:
			c.logger.Warn("idle auto-checkpoint not saved: the previous one stays", "component", "checkpoint", "kernel_id", cand.ID, "err", err)
		}
		return err
	}
	c.logger.Info("auto-checkpoint saved after idle", "component", "checkpoint", "kernel_id", cand.ID,
		"idle", c.cfg.AutoCheckpointIdle.String())
	return nil
}

// collectAutoCheckpoints deletes the auto-checkpoint of every kernel shut
// down on a principal's request (shutdown_kernel: its owner is done with
// it). Those of kernels culled, shut down by the server, lost or dead stay:
// they are what an agent (or the next start) brings back.
func (c *core) collectAutoCheckpoints(ctx context.Context) {
	c.mu.RLock()
	ck := c.ckpt
	c.mu.RUnlock()
	if ck == nil {
		return
	}
	st, err := ck.State(ctx)
	if err != nil {
		return
	}
	for stored := range st.Checkpoints {
		owner, name := checkpoint.Owned(stored)
		id, ok := strings.CutPrefix(name, autoCheckpointPrefix)
		if !ok {
			continue
		}
		k, ok := c.kernels.Get(id)
		if !ok || k.State != kernels.StateShutDown {
			continue
		}
		// NB: only the kernel owner's auto-<id> is the kernel's: another
		// principal's checkpoint of that name (hand-saved before the prefix
		// was reserved) is theirs to keep.
		if stored != checkpoint.Stored(k.Owner, autoCheckpointName(id)) {
			continue
		}
		c.auto.mu.Lock()
		kept := c.auto.kept[id]
		c.auto.mu.Unlock()
		if kept {
			continue
		}
		requested, err := c.shutDownOnRequest(ctx, k)
		if err != nil {
			continue
		}
		if !requested {
			c.auto.mu.Lock()
			if c.auto.kept == nil {
				c.auto.kept = map[string]bool{}
			}
			c.auto.kept[id] = true
			c.auto.mu.Unlock()
			continue
		}
		if err := ck.Delete(ctx, owner, name, ""); err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
			c.logger.Warn("delete the auto-checkpoint of a kernel shut down on request", "component", "checkpoint", "kernel_id", id, "err", err)
			continue
		}
		c.logger.Info("auto-checkpoint deleted: its kernel was shut down on request", "component", "checkpoint", "kernel_id", id,
			"checkpoint", checkpoint.Display(stored))
	}
}

// shutDownOnRequest reads how kernel k was shut down: true when a principal
// asked (not a cull, not the server).
func (c *core) shutDownOnRequest(ctx context.Context, k kernels.Kernel) (bool, error) {
	var last *events.Event
	find := func(after uint64) error {
		return c.log.ReadStream(ctx, events.KernelStream(k.ID), after, func(e events.Event) error {
			if e.Type == events.TypeKernelShutDown {
				last = &e
			}
			return nil
		})
	}
	// NB: the shutdown is the kernel's last event, or close to it.
	if err := find(max(k.Seq, 1) - 1); err != nil {
		return false, err
	}
	if last == nil {
		if err := find(0); err != nil {
			return false, err
		}
	}
	if last == nil {
		return false, errors.New("no KernelShutDown")
	}
	p, _ := last.Payload.(events.KernelShutDown)
	return last.Principal != "" && !p.Culled, nil
}

// goneAutoCheckpoint is the auto-checkpoint of a kernel no longer running.
type goneAutoCheckpoint struct {
	Owner, Name, KernelID string
	Entry                 checkpoint.Entry
}

// goneAutoCheckpoints lists, oldest first, the auto-checkpoints whose
// kernel is known and no longer running (culled, shut down, died, lost) and
// held in that kernel's owner's names.
func (c *core) goneAutoCheckpoints(st checkpoint.State) []goneAutoCheckpoint {
	var gone []goneAutoCheckpoint
	for stored, e := range st.Checkpoints {
		owner, name := checkpoint.Owned(stored)
		id, ok := strings.CutPrefix(name, autoCheckpointPrefix)
		if !ok {
			continue
		}
		k, ok := c.kernels.Get(id)
		if !ok || checkpoint.Stored(k.Owner, name) != stored {
			continue // NB: not known, or not its owner's: not ours to judge
		}
		switch k.State {
		case kernels.StateShutDown, kernels.StateDead, kernels.StateLost:
			gone = append(gone, goneAutoCheckpoint{Owner: owner, Name: name, KernelID: id, Entry: e})
		}
	}
	slices.SortFunc(gone, func(a, b goneAutoCheckpoint) int {
		if c := a.Entry.SavedAt.Compare(b.Entry.SavedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return gone
}

// collectExpiredAutoCheckpoints deletes the auto-checkpoints of kernels no
// longer running once they are older than --auto-checkpoint-keep (0: kept
// for ever): they count against their owner's --max-checkpoint-bytes, and
// the kernels a stdio session culls every hour would fill it.
func (c *core) collectExpiredAutoCheckpoints(ctx context.Context, now time.Time) {
	keep := c.cfg.AutoCheckpointKeep
	c.mu.RLock()
	ck := c.ckpt
	c.mu.RUnlock()
	if keep <= 0 || ck == nil {
		return
	}
	st, err := ck.State(ctx)
	if err != nil {
		return
	}
	for _, g := range c.goneAutoCheckpoints(st) {
		if now.Sub(g.Entry.SavedAt) <= keep {
			continue
		}
		if err := ck.Delete(ctx, g.Owner, g.Name, ""); err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
			c.logger.Warn("delete the expired auto-checkpoint of a kernel no longer running", "component", "checkpoint", "kernel_id", g.KernelID, "err", err)
			continue
		}
		c.logger.Info("auto-checkpoint deleted: its kernel no longer runs and it is older than --auto-checkpoint-keep", "component", "checkpoint",
			"kernel_id", g.KernelID, "checkpoint", checkpoint.Display(checkpoint.Stored(g.Owner, g.Name)), "saved_at", g.Entry.SavedAt.UTC().Format(time.RFC3339),
			"auto_checkpoint_keep", keep.String())
	}
}

// collectGoneForQuota deletes, oldest first, cand's owner's auto-checkpoints
// of kernels no longer running, after cand's save was refused for the
// owner's quota. It returns how many it deleted.
func (c *core) collectGoneForQuota(ctx context.Context, cand autoCandidate) int {
	st, err := c.ckpt.State(ctx)
	if err != nil {
		return 0
	}
	owner, _ := checkpoint.Owned(checkpoint.Stored(cand.Owner, autoCheckpointName(cand.ID)))
	deleted := 0
	for _, g := range c.goneAutoCheckpoints(st) {
		if g.Owner != owner {
			continue
		}
		err := c.ckpt.Delete(ctx, g.Owner, g.Name, "")
		if errors.Is(err, checkpoint.ErrNotFound) {
			deleted++ // NB: a parallel save of the shutdown pass made the room
			continue
		}
		if err != nil {
			c.logger.Warn("delete the auto-checkpoint of a kernel no longer running, to make room", "component", "checkpoint", "kernel_id", g.KernelID, "err", err)
			continue
		}
		deleted++
		c.logger.Warn("auto-checkpoint deleted to make room: its owner's checkpoint quota refused the auto-checkpoint of a running kernel, "+
			"and this one's kernel no longer runs", "component", "checkpoint", "kernel_id", g.KernelID,
			"checkpoint", checkpoint.Display(checkpoint.Stored(g.Owner, g.Name)), "bytes", g.Entry.Size,
			"saved_at", g.Entry.SavedAt.UTC().Format(time.RFC3339), "for_kernel_id", cand.ID)
	}
	return deleted
}
