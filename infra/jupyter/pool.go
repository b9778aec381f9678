package jupyter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// MaxPoolSize bounds the kernels a Pool keeps ready per kernelspec: each
// idle kernel holds its memory (about 50 MiB for ipykernel) for nothing.
const MaxPoolSize = 64

// PoolOptions tunes a Pool.
type PoolOptions struct {
	// Sizes is how many ready kernels to keep per kernelspec name.
	Sizes map[string]int
	// MinBackoff and MaxBackoff bound the wait before pre-starting again
	// after a kernelspec failed to start (or a pooled kernel died idle):
	// it doubles from MinBackoff with each failure in a row (defaults 1 s
	// and 5 min), so a broken kernelspec never spins.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Pool keeps kernels of some kernelspecs started and ready before anyone
// asks for one, so that a start hands one over at once, and starts their
// replacements in the background (one at a time per kernelspec).
//
// A pooled kernel is started as the Launcher starts any kernel (same
// sandbox, environment, IOPub queue, DieWithServer) under the id it keeps
// for life: its directory, connection file, log and argv are those of a
// kernel started fresh under that id, and nothing runs in it before it is
// handed over. Its id is minted when its process starts (events.NewID
// carries that time).
//
// Contract:
//
//  1. NewPool checks every kernelspec exists; Start (after ReapPool and
//     Launcher.RemoveStale at server start) begins filling.
//  2. Claim takes a ready kernel of a kernelspec and returns the id to
//     start it under; exactly one of these must follow: Launcher.Launch
//     with that id (the kernel actor's start: it takes the kernel), Unclaim
//     (the start was refused before it was asked: the kernel goes back),
//     or Abandon (the start failed: the kernel is stopped if not taken).
//  3. Once the start is recorded in the log (KernelStarted durable), call
//     Recorded: the kernel is an ordinary kernel from then on.
//  4. Close stops the filling and every kernel still in the pool.
//
// No orphans: each kernel the pool starts has a marker file in
// <runtime>/pool/<id>.json (its pid and start time, written as soon as the
// process runs) until Recorded. A server killed meanwhile leaves the
// markers; ReapPool at the next start kills every marked kernel the log
// does not hold. The markers sit outside every KernelDir: a kernel cannot
// see them.
type Pool struct {
	l      *Launcher
	opts   PoolOptions
	logger *slog.Logger

	mu        sync.Mutex
	specs     map[string]*specPool
	claimed   map[string]*pooled  // id -> claimed, not yet taken
	withdrawn map[string]struct{} // ids abandoned and being stopped: a Launch of one fails
	started   bool
	closed    bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// specPool is the pool of one kernelspec. Fields are guarded by Pool.mu.
type specPool struct {
	name        string
	target      int
	idle        []*pooled // oldest first
	starting    bool
	wake        chan struct{} // cap 1: a kernel left or a start may be due
	handouts    uint64
	misses      uint64
	failures    uint64
	consecutive int
	lastErr     string
	retryAt     time.Time
}

// pooled is one ready kernel in the pool.
type pooled struct {
	k    *Kernel
	spec string
	stop chan struct{} // closed when it leaves the pool: ends its watch
}

// ErrPoolClosed: the pool was closed.
var ErrPoolClosed = errors.New("jupyter: kernel pool closed")

// NewPool returns a pool that pre-starts kernels with l. Every kernelspec
// in opts.Sizes must exist (an *UnknownKernelSpecError names the ones
// found) and its size be 1..MaxPoolSize; sizes of 0 are dropped.
func NewPool(l *Launcher, opts PoolOptions) (*Pool, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Minute, opts.MinBackoff)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{l: l, opts: opts, logger: opts.Logger.With("component", "kernel"), specs: map[string]*specPool{},
		claimed: map[string]*pooled{}, withdrawn: map[string]struct{}{}}
	if len(opts.Sizes) == 0 {
		return p, nil
	}
	specs, err := l.Specs()
	if err != nil {
		return nil, fmt.Errorf("kernel pool: find kernelspecs: %w", err)
	}
	for name, n := range opts.Sizes {
		if n == 0 {
			continue
		}
		if n < 0 || n > MaxPoolSize {
			return nil, fmt.Errorf("kernel pool: %d kernels of kernelspec %q: give 0 to %d", n, name, MaxPoolSize)
		}
		spec, err := specs.Lookup(name)
		if err != nil {
			return nil, err
		}
		p.specs[spec.Name] = &specPool{name: spec.Name, target: n, wake: make(chan struct{}, 1)}
	}
	return p, nil
}

// Start begins filling the pool. Call it once, after ReapPool and
// Launcher.RemoveStale (which would remove the new kernels' directories).
func (p *Pool) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrPoolClosed
	}
	if p.started {
		return nil
	}
	p.started = true
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(poolDir(p.l.RuntimeDir), 0o700); err != nil && len(p.specs) > 0 {
		return fmt.Errorf("kernel pool: create marker dir: %w", err)
	}
	for _, sp := range p.specs {
		p.wg.Add(1)
		go p.fill(sp)
	}
	return nil
}

// fill keeps sp at its target: one start at a time, waiting out the
// backoff after a failure. It returns when the pool closes.
func (p *Pool) fill(sp *specPool) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		need := !p.closed && len(sp.idle) < sp.target
		wait := time.Until(sp.retryAt)
		if need && wait <= 0 {
			sp.starting = true
		}
		p.mu.Unlock()
		switch {
		case !need:
			select {
			case <-sp.wake:
			case <-p.ctx.Done():
				return
			}
		case wait > 0:
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
		default:
			p.startOne(sp)
		}
	}
}

// startOne pre-starts one kernel of sp and adds it to the idle list, or
// records the failure and when to try again.
func (p *Pool) startOne(sp *specPool) {
	id := events.NewID(time.Now())
	err := writePoolMarker(p.l.RuntimeDir, PoolMarker{KernelID: id, Spec: sp.name})
	var k *Kernel
	if err == nil {
		k, err = p.l.start(p.ctx, id, sp.name, func(proc *Process) error {
			return writePoolMarker(p.l.RuntimeDir, PoolMarker{KernelID: id, Spec: sp.name, Pid: proc.Pid, StartTime: proc.StartTime})
		})
	}
	if err != nil {
		// NB: StartKernel killed the process and removed its directory.
		removePoolMarker(p.l.RuntimeDir, id)
		_ = os.Remove(kernelLogPath(p.l.RuntimeDir, id))
	}
	p.mu.Lock()
	sp.starting = false
	if err != nil {
		if p.closed || p.ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		delay := p.failed(sp, err.Error())
		n := sp.consecutive
		p.mu.Unlock()
		p.logger.Warn("pre-starting a kernel failed; the pool retries later", "kernelspec", sp.name, "err", err,
			"failures_in_a_row", n, "retry_in", delay.String())
		return
	}
	if p.closed {
		p.mu.Unlock()
		p.discard(k)
		return
	}
	sp.consecutive, sp.retryAt = 0, time.Time{} // NB: lastErr stays, for whoever looks later
	if len(sp.idle) >= sp.target {
		// NB: a claimed kernel came back (Unclaim) while this one started:
		// the pool is full already; keep the target, not one more.
		p.mu.Unlock()
		p.logger.Info("pre-started kernel not needed any more: the pool is full", "kernelspec", sp.name, "kernel_id", id)
		p.discard(k)
		return
	}
	pk := &pooled{k: k, spec: sp.name, stop: make(chan struct{})}
	sp.idle = append(sp.idle, pk)
	ready := len(sp.idle)
	p.watch(sp, pk)
	p.mu.Unlock()
	p.logger.Info("pre-started kernel ready", "kernelspec", sp.name, "kernel_id", id, "pid", k.Process.Pid,
		"ready", ready, "target", sp.target)
}

// failed records a failure of sp and returns the backoff before the next
// start. Call with p.mu held.
func (p *Pool) failed(sp *specPool, why string) time.Duration {
	sp.failures++
	sp.consecutive++
	sp.lastErr = why
	delay := p.opts.MinBackoff
	for i := 1; i < sp.consecutive && delay < p.opts.MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, p.opts.MaxBackoff)
	sp.retryAt = time.Now().Add(delay)
	return delay
}

// watch starts the goroutine that notices pk dying while it waits in the
// pool. Call with p.mu held.
func (p *Pool) watch(sp *specPool, pk *pooled) {
	stop := pk.stop // NB: read under the lock; Unclaim replaces it
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		why := ""
		select {
		case <-stop:
			return
		case <-pk.k.Process.Exited():
			why = "the pre-started kernel exited while waiting in the pool (" + pk.k.Process.ExitStatus().String() + ")"
		case <-pk.k.Client.HeartbeatLost():
			why = "the pre-started kernel stopped answering heartbeats while waiting in the pool"
			// NB: a killed kernel's sockets close before its exit is seen:
			// say it exited when it did.
			t := time.NewTimer(time.Second)
			select {
			case <-pk.k.Process.Exited():
				why = "the pre-started kernel exited while waiting in the pool (" + pk.k.Process.ExitStatus().String() + ")"
			case <-t.C:
			}
			t.Stop()
		}
		if tail := StderrTail(pk.k.LogPath, 20); tail != "" {
			why += "\n--- kernel log ---\n" + tail
		}
		p.mu.Lock()
		i := slices.Index(sp.idle, pk)
		if i < 0 {
			p.mu.Unlock()
			return // claimed meanwhile: the claim sees it dead
		}
		sp.idle = slices.Delete(sp.idle, i, i+1)
		delay := p.failed(sp, why)
		p.mu.Unlock()
		p.logger.Warn("a pre-started kernel died in the pool; the pool replaces it", "kernelspec", sp.name, "kernel_id", pk.k.ID,
			"why", why, "retry_in", delay.String())
		p.discard(pk.k)
		p.poke(sp)
	}()
}

func (p *Pool) poke(sp *specPool) {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// Claim takes a ready kernel of kernelspec spec out of the pool and returns
// the id to start it under (ok false: none is ready; start one fresh).
// See the contract in the type's comment for what must follow.
func (p *Pool) Claim(spec string) (id string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.specs[strings.ToLower(spec)]
	if sp == nil || p.closed || !p.started {
		return "", false
	}
	for len(sp.idle) > 0 {
		pk := sp.idle[0]
		sp.idle = slices.Delete(sp.idle, 0, 1)
		close(pk.stop)
		select {
		case <-pk.k.Process.Exited():
			// NB: died a moment ago; its watch saw it claimed. Stop it
			// outside the lock and try the next.
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.discard(pk.k) }()
			continue
		default:
		}
		p.claimed[pk.k.ID] = pk
		p.poke(sp)
		return pk.k.ID, true
	}
	sp.misses++
	return "", false
}

// take hands over the kernel claimed under id (nil, nil: none is; start
// fresh). Called by Launcher.Launch.
func (p *Pool) take(id, spec string) (*Kernel, error) {
	p.mu.Lock()
	if _, ok := p.withdrawn[id]; ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("start kernel %s: its pre-started kernel was withdrawn because the start was given up; start another", id)
	}
	pk, ok := p.claimed[id]
	if !ok {
		p.mu.Unlock()
		return nil, nil
	}
	if !strings.EqualFold(pk.spec, spec) {
		p.mu.Unlock()
		return nil, fmt.Errorf("start kernel %s: it was claimed from the pool of kernelspec %s, not %s", id, pk.spec, spec)
	}
	delete(p.claimed, id)
	if sp := p.specs[pk.spec]; sp != nil {
		sp.handouts++
	}
	p.mu.Unlock()
	select {
	case <-pk.k.Process.Exited():
		// NB: dead before it could be used: clear its directory so the fresh
		// start under the same id begins clean.
		p.discard(pk.k)
		return nil, nil
	default:
	}
	return pk.k, nil
}

// Unclaim puts a claimed kernel back: the start it was claimed for was
// refused before the kernel was asked for (a quota, a bad argument).
func (p *Pool) Unclaim(id string) {
	p.mu.Lock()
	pk, ok := p.claimed[id]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.claimed, id)
	sp := p.specs[pk.spec]
	if p.closed || sp == nil {
		p.mu.Unlock()
		p.discard(pk.k)
		return
	}
	pk.stop = make(chan struct{})
	sp.idle = slices.Insert(sp.idle, 0, pk)
	var extra *pooled
	if len(sp.idle) > sp.target {
		// NB: a replacement started meanwhile: keep the target, drop the newest.
		extra = sp.idle[len(sp.idle)-1]
		sp.idle = sp.idle[:len(sp.idle)-1]
		close(extra.stop)
	}
	p.watch(sp, pk)
	p.mu.Unlock()
	if extra != nil {
		p.discard(extra.k)
	}
}

// Abandon stops a claimed kernel that was not taken: the start it was
// claimed for failed. A Launch of id while it stops fails; after, it
// starts fresh. Nothing happens if the kernel was taken.
func (p *Pool) Abandon(id string) {
	p.mu.Lock()
	pk, ok := p.claimed[id]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.claimed, id)
	p.withdrawn[id] = struct{}{}
	p.mu.Unlock()
	p.discard(pk.k)
	p.mu.Lock()
	delete(p.withdrawn, id)
	p.mu.Unlock()
}

// Recorded says kernel id's start is durable in the log: its marker goes,
// and it is an ordinary kernel (re-attached, not reaped, after a restart).
// Harmless for an id that never came from the pool.
func (p *Pool) Recorded(id string) { removePoolMarker(p.l.RuntimeDir, id) }

// discard kills a kernel that was never handed over and removes its
// files. Its marker stays if the process could not be seen to exit, so the
// next start kills it.
func (p *Pool) discard(k *Kernel) {
	_ = k.Process.Signal(syscall.SIGKILL)
	exited := false
	t := time.NewTimer(5 * time.Second)
	select {
	case <-k.Process.Exited():
		exited = true
	case <-t.C:
	}
	t.Stop()
	_ = k.Close()
	_ = os.RemoveAll(k.Dir)
	_ = os.Remove(k.LogPath)
	if exited {
		removePoolMarker(p.l.RuntimeDir, k.ID)
	} else {
		p.logger.Warn("a pre-started kernel did not exit after SIGKILL; the next start kills it", "kernel_id", k.ID, "pid", k.Process.Pid)
	}
}

// Close stops filling and kills every kernel still in the pool (they are
// nobody's yet); claimed ones not taken are withdrawn. Idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var left []*pooled
	for _, sp := range p.specs {
		for _, pk := range sp.idle {
			close(pk.stop)
			left = append(left, pk)
		}
		sp.idle = nil
	}
	for id, pk := range p.claimed {
		left = append(left, pk)
		p.withdrawn[id] = struct{}{}
	}
	clear(p.claimed)
	if p.cancel != nil {
		p.cancel() // NB: a start in progress fails and cleans up after itself
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pk := range left {
		wg.Add(1)
		go func() { defer wg.Done(); p.discard(pk.k) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close kernel pool: %w", ctx.Err())
	}
}

// PoolStats is one kernelspec's pool as Stats sees it.
type PoolStats struct {
	Spec     string
	Target   int
	Ready    int
	Starting bool
	// Handouts counts kernels handed over; Misses counts claims that found
	// none ready (a fresh start followed).
	Handouts, Misses uint64
	// Failures counts failed pre-starts and kernels that died in the pool;
	// ConsecutiveFailures those since the last success, LastError the last
	// one's reason and RetryAt when the pool tries again (zero: not
	// backing off).
	Failures            uint64
	ConsecutiveFailures int
	LastError           string
	RetryAt             time.Time
	// IdleRSSBytes is the resident memory of the ready kernels' processes
	// (/proc/<pid>/statm), what the pool costs while nobody uses it.
	IdleRSSBytes int64
	// IdlePids are the ready kernels' processes.
	IdlePids []int
}

// Stats reports each kernelspec's pool, sorted by name.
func (p *Pool) Stats() []PoolStats {
	p.mu.Lock()
	out := make([]PoolStats, 0, len(p.specs))
	for _, sp := range p.specs {
		st := PoolStats{Spec: sp.name, Target: sp.target, Ready: len(sp.idle), Starting: sp.starting, Handouts: sp.handouts,
			Misses: sp.misses, Failures: sp.failures, ConsecutiveFailures: sp.consecutive, LastError: sp.lastErr}
		if sp.consecutive > 0 {
			st.RetryAt = sp.retryAt
		}
		for _, pk := range sp.idle {
			st.IdlePids = append(st.IdlePids, pk.k.Process.Pid)
		}
		out = append(out, st)
	}
	p.mu.Unlock()
	for i := range out {
		for _, pid := range out[i].IdlePids {
			out[i].IdleRSSBytes += ResidentBytes(pid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec < out[j].Spec })
	return out
}

// ResidentBytes is pid's resident memory (0 if it cannot be read).
func ResidentBytes(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	var pages int64
	if _, err := fmt.Sscan(f[1], &pages); err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
