package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestTakeoverGivesTheLeaseBackWhenNothingIsAdopted: a node that took a
// lapsed lease but runs no actor for the kernel after all (the kernel was
// shut down by the lost node: nothing to take over; or the adoption
// failed) gives the lease back instead of renewing it for a kernel it does
// not run; a takeover that adopts keeps it.
func TestTakeoverGivesTheLeaseBackWhenNothingIsAdopted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dir) })
	a := testkit.StartStackWithHooksIn(t, dir, testkit.Hooks{Node: "node-a"})
	gone, err := a.System.StartKernel(ctx, "python3", "", "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.System.ShutdownKernel(ctx, gone.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	a.Close()

	// NB: node-b holds node-a's records (as imported): the same log, opened as node-b.
	b := testkit.StartStackWithHooksIn(t, dir, testkit.Hooks{Node: "node-b"})
	c := &core{log: b.Log, sys: b.System, logger: slog.New(slog.DiscardHandler)}
	released := 0
	deps := takeoverDeps{
		take:     func(context.Context) error { return nil },
		release:  func(context.Context) error { released++; return nil },
		caughtUp: func(context.Context, string) error { return nil },
	}
	err = c.takeOverKernel(ctx, gone.ID, "node-a", "node node-a stopped renewing its ownership lease", deps)
	if err == nil || !strings.Contains(err.Error(), "nothing to take over") {
		t.Fatalf("takeover of a shut-down kernel: %v, want its 'nothing to take over'", err)
	}
	if b.System.HasKernel(gone.ID) || released != 1 {
		t.Fatalf("takeover of a shut-down kernel: runs here %v, lease given back %d times, want not run and given back once", b.System.HasKernel(gone.ID), released)
	}

	failing := deps
	failing.take = func(context.Context) error { return errors.New("the cluster does not answer") }
	released = 0
	if err := c.takeOverKernel(ctx, gone.ID, "node-a", "lost", failing); err == nil || released != 0 {
		t.Fatalf("a take that failed: %v, given back %d times, want an error and nothing given back (nothing taken)", err, released)
	}
}
