package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// splitRunner runs the real code and counts which way each call came: Run
// (an agent's load, queued behind the kernel's work) or RunRestore (the
// server's restore, ahead of a held queue).
type splitRunner struct {
	Runner
	mu            sync.Mutex
	runs, restore int
}

func (r *splitRunner) Run(ctx context.Context, k, code string) (string, error) {
	r.mu.Lock()
	r.runs++
	r.mu.Unlock()
	return r.Runner.Run(ctx, k, code)
}

// RunRestore runs the code as the stack does: the kernel of this test is
// not held, so an ordinary execution is what the scheduler would run.
func (r *splitRunner) RunRestore(ctx context.Context, k, code string) (string, error) {
	r.mu.Lock()
	r.restore++
	r.mu.Unlock()
	return r.Runner.Run(ctx, k, code)
}

func (r *splitRunner) counts() (runs, restore int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs, r.restore
}

// TestRestoreLoadRunsThroughRunRestore: a load with Restore sends every
// piece of its work (package check and load) through RunRestore, none
// through Run, and restores the variables; a plain load still goes through
// Run.
func TestRestoreLoadRunsThroughRunRestore(t *testing.T) {
	st := testkit.StartStack(t, "")
	sr := &splitRunner{Runner: st}
	r := newRigWith(t, st, rigConfig{runner: sr})
	k := r.kernel()
	r.run(k, "x = 41\ny = [1, 2]")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "auto-" + k, Owner: "alice", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	r.run(k, "x = 0\ndel y")
	runs0, restore0 := sr.counts()
	res, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "auto-" + k, Owner: "alice", KernelID: k, Policy: PolicyWarn, Restore: true})
	if err != nil {
		t.Fatal(err)
	}
	runs1, restore1 := sr.counts()
	if runs1 != runs0 || restore1 == restore0 {
		t.Fatalf("restore load: %d calls through Run, %d through RunRestore; want 0 and at least 1", runs1-runs0, restore1-restore0)
	}
	if got := r.run(k, "print(x, y)"); got != "41 [1, 2]" {
		t.Fatalf("after the restore load: %q", got)
	}
	if strings.Join(res.Restored, ",") != "x,y" {
		t.Fatalf("restored %v", res.Restored)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "auto-" + k, Owner: "alice", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if runs2, restore2 := sr.counts(); runs2 == runs1 || restore2 != restore1 {
		t.Fatalf("plain load: %d through Run, %d through RunRestore; want at least 1 and 0", runs2-runs1, restore2-restore1)
	}
}

// TestRestoreLoadNeedsARestoreRunner: a restore load on an actor whose
// Runner has no RunRestore is refused with ErrNoRestoreRunner before
// anything reaches the kernel, and nothing is recorded.
func TestRestoreLoadNeedsARestoreRunner(t *testing.T) {
	st := testkit.StartStack(t, "")
	rec := &recordingRunner{Runner: st}
	r := newRigWith(t, st, rigConfig{runner: rec})
	k := r.kernel()
	r.run(k, "x = 1")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "auto-" + k, KernelID: k}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	before := len(rec.codes)
	rec.mu.Unlock()
	_, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "auto-" + k, KernelID: k, Restore: true})
	if !errors.Is(err, ErrNoRestoreRunner) {
		t.Fatalf("restore load through a plain Runner: %v, want ErrNoRestoreRunner", err)
	}
	rec.mu.Lock()
	after := len(rec.codes)
	rec.mu.Unlock()
	if after != before {
		t.Fatalf("the refused restore load ran %d pieces of code in the kernel", after-before)
	}
	if e := r.state().Checkpoints["auto-"+k]; e.Loads != 0 {
		t.Fatalf("the refused restore load was recorded: %+v", e)
	}
	// Refused, not left busy: a plain load of the same name works.
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "auto-" + k, KernelID: k}); err != nil {
		t.Fatal(err)
	}
}

// cancelOnRun ends the caller's context, once armed, as the next piece
// of checkpoint code reaches the kernel: the caller goes away while the
// kernel works.
type cancelOnRun struct {
	Runner
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *cancelOnRun) arm(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
}

func (c *cancelOnRun) Run(ctx context.Context, k, code string) (string, error) {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.mu.Unlock()
	return c.Runner.Run(ctx, k, code)
}

// TestCallerLeavingAsAnsweredRaceFree: callers whose context ends just as
// the actor answers get the answer or their context's error, and nothing
// but the answer is written to the request's future. Run with -race: a
// "caller gone" message sent to the future when the context ended raced
// with the caller's read of the answer (protoactor writes a future's result
// without its lock); CI's TestAutoCheckpointIdleTimer caught it when the
// server's shutdown cancelled the idle timer's State request.
func TestCallerLeavingAsAnsweredRaceFree(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	for range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		go cancel()
		_, err := r.svc.State(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("a caller that left: %v, want the answer or context.Canceled", err)
		}
		cancel()
	}
	if _, err := r.svc.State(context.Background()); err != nil {
		t.Fatalf("the actor after 300 callers left: %v", err)
	}
}

// TestLoadCallerGoneStopsWaiting: a caller whose context ends while its
// load runs in the kernel (a server shutting down during a restore) gets
// its context's error at once instead of waiting for the load (here an
// object whose unpickling sleeps 8 s); the load goes on in the kernel and
// is recorded.
func TestLoadCallerGoneStopsWaiting(t *testing.T) {
	st := testkit.StartStack(t, "")
	cr := &cancelOnRun{Runner: st}
	r := newRigWith(t, st, rigConfig{runner: cr})
	k := r.kernel()
	r.run(k, "import time\nclass Slow:\n    def __reduce__(self): return (time.sleep, (8,))\nslow = Slow()")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "slow", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cr.arm(cancel)
	began := time.Now()
	_, err := r.svc.Load(ctx, LoadRequest{Name: "slow", KernelID: k})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("load whose caller went away: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the caller waited %s for a load it left (the kernel sleeps 8 s)", took)
	}
	testkit.WaitUntil(t, time.Minute, "the load recorded", func() (bool, string) {
		e := r.state().Checkpoints["slow"]
		return e.Loads == 1, fmt.Sprint(e)
	})
}
