package checkpoint

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

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
