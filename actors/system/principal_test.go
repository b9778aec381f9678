package system_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// stamped reads kernel id's events back from the Pebble log: type and
// principal of each, in order.
func stamped(t *testing.T, s *testkit.Stack, kernelID string) []events.Event {
	t.Helper()
	var out []events.Event
	err := s.Log.ReadKernel(context.Background(), kernelID, 0, func(e events.Event) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("read kernel %s's events: %v", kernelID, err)
	}
	return out
}

// principalsOf returns the principals of the events of type typ (on
// stream, if not "").
func principalsOf(evs []events.Event, typ, stream string) []string {
	var out []string
	for _, e := range evs {
		if e.Type == typ && (stream == "" || e.Stream == stream) {
			out = append(out, e.Principal)
		}
	}
	return out
}

func wantPrincipals(t *testing.T, evs []events.Event, typ, stream string, want ...string) {
	t.Helper()
	got := principalsOf(evs, typ, stream)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s events on %q carry principals %q, want %q", typ, stream, got, want)
	}
}

// TestPrincipalsLandOnTheEvents drives a real kernel as three principals
// and reads the log back: each command's events carry who sent it, an
// execution's outputs and end carry its submitter, and what the server does
// on its own (re-attaching after a restart) carries nobody.
func TestPrincipalsLandOnTheEvents(t *testing.T) {
	s := testkit.StartStack(t, "")
	ctx := context.Background()
	k, err := s.System.StartKernel(ctx, "python3", "", "", "alice")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	if k.Owner != "alice" {
		t.Fatalf("kernel state owner %q, want alice", k.Owner)
	}
	x, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: "print('hi')\n1+1", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if done := s.WaitExecution(x.ID, 30*time.Second); done.Status != queue.StatusOK {
		t.Fatalf("alice's execution: %+v", done)
	}
	if _, err := s.System.ShareKernel(ctx, k.ID, "alice", "bob", "execute"); err != nil {
		t.Fatalf("share with bob: %v", err)
	}
	hold := testkit.NewSentinel(t)
	y, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: hold.Code(""), By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	s.WaitOutput(k.ID, y.ID, "waiting", 30*time.Second)
	queued, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: "1", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	// NB: cancelled once sent behind bob's running one: the kernel is asked
	// to abort it, and its end (from the kernel's reply) carries carol.
	pipelined(t, s, k.ID, queued.ID, y.ID)
	if path, err := s.System.Cancel(ctx, k.ID, queued.ID, "carol"); err != nil || path != system.CancelAbortRequested {
		t.Fatalf("cancel: path %v %v", path, err)
	}
	if err := s.System.InterruptKernel(ctx, k.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if done := s.WaitExecution(y.ID, 30*time.Second); done.Status != queue.StatusInterrupted {
		t.Fatalf("bob's execution: %+v", done)
	}
	// NB: its end before the restart, which would record it lost.
	if done := s.WaitExecution(queued.ID, 30*time.Second); done.Status != queue.StatusCancelled {
		t.Fatalf("the cancelled execution: %+v", done)
	}
	if err := s.System.RestartKernel(ctx, k.ID, "alice"); err != nil {
		t.Fatal(err)
	}

	// A server restart: the kernel actor re-attaches on its own and keeps
	// the owner and the shares from its stream.
	s.Restart()
	st := kernelAfterRecovery(t, s, k.ID)
	if st.Owner != "alice" || st.Shares["bob"] != "execute" {
		t.Fatalf("after a server restart: owner %q shares %v", st.Owner, st.Shares)
	}
	if err := s.System.ShutdownKernel(ctx, k.ID, "alice"); err != nil {
		t.Fatal(err)
	}

	evs := stamped(t, s, k.ID)
	ks := events.KernelStream(k.ID)
	wantPrincipals(t, evs, events.TypeKernelStarted, ks, "alice")
	wantPrincipals(t, evs, events.TypeKernelShared, ks, "alice")
	wantPrincipals(t, evs, events.TypeKernelInterrupted, ks, "carol")
	wantPrincipals(t, evs, events.TypeKernelRestarted, ks, "alice")
	wantPrincipals(t, evs, events.TypeKernelReattached, ks, "")
	wantPrincipals(t, evs, events.TypeKernelShutDown, ks, "alice")
	for _, e := range evs {
		if e.Type == events.TypeKernelStarted {
			if p, _ := events.As[events.KernelStarted](&e); p.Owner != "alice" {
				t.Fatalf("KernelStarted owner %q, want alice", p.Owner)
			}
		}
	}
	xs, ys, qs := events.ExecutionStream(x.ID), events.ExecutionStream(y.ID), events.ExecutionStream(queued.ID)
	wantPrincipals(t, evs, events.TypeExecutionQueued, xs, "alice")
	wantPrincipals(t, evs, events.TypeExecutionStarted, xs, "alice")
	wantPrincipals(t, evs, events.TypeExecutionFinished, xs, "alice")
	for _, p := range principalsOf(evs, events.TypeIOPubMessageReceived, xs) {
		if p != "alice" {
			t.Fatalf("an output of alice's execution carries %q", p)
		}
	}
	if len(principalsOf(evs, events.TypeIOPubMessageReceived, xs)) == 0 {
		t.Fatal("alice's execution recorded no output")
	}
	wantPrincipals(t, evs, events.TypeExecutionQueued, ys, "bob")
	wantPrincipals(t, evs, events.TypeExecutionStarted, ys, "bob")
	wantPrincipals(t, evs, events.TypeExecutionInterrupted, ys, "bob")
	wantPrincipals(t, evs, events.TypeExecutionQueued, qs, "bob")
	wantPrincipals(t, evs, events.TypeExecutionCancelled, qs, "carol")
}

// kernelAfterRecovery waits until the recovered kernel actor re-attached.
func kernelAfterRecovery(t *testing.T, s *testkit.Stack, id string) kernel.State {
	t.Helper()
	var st kernel.State
	testkit.WaitUntil(t, 30*time.Second, "the kernel re-attaches after the restart", func() (bool, string) {
		var err error
		st, err = s.System.Kernel(context.Background(), id)
		return err == nil && st.Status == kernel.StatusRunning && !st.ReattachedAt.IsZero(), fmt.Sprintf("%+v %v", st, err)
	})
	return st
}

// TestShareDecisions: what a Share refuses, on a real kernel.
func TestShareDecisions(t *testing.T) {
	s := testkit.StartStack(t, "")
	ctx := context.Background()
	k, err := s.System.StartKernel(ctx, "python3", "", "", "alice")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	for _, c := range []struct{ by, to, access, says string }{
		{"alice", "alice", "read", "itself"},
		{"admin", "alice", "read", "owns"},
		{"alice", "bob", "manage", "not one of"},
		{"alice", "", "read", "name the principal"},
	} {
		_, err := s.System.ShareKernel(ctx, k.ID, c.by, c.to, c.access)
		if !errors.Is(err, kernel.ErrBadShare) || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("share by %s with %q at %s: got %v, want an error saying %q", c.by, c.to, c.access, err, c.says)
		}
	}
	st, err := s.System.ShareKernel(ctx, k.ID, "alice", "bob", "read")
	if err != nil || st.Shares["bob"] != "read" {
		t.Fatalf("share with bob: %v %v", st.Shares, err)
	}
	// Granting what is granted, or withdrawing what is not, records nothing.
	// NB: shares only: the kernel's late IOPub (its startup status) may land meanwhile.
	before := len(principalsOf(stamped(t, s, k.ID), events.TypeKernelShared, ""))
	if _, err := s.System.ShareKernel(ctx, k.ID, "alice", "bob", "read"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.System.ShareKernel(ctx, k.ID, "alice", "carol", "none"); err != nil {
		t.Fatal(err)
	}
	if after := len(principalsOf(stamped(t, s, k.ID), events.TypeKernelShared, "")); after != before {
		t.Fatalf("idempotent shares appended %d events", after-before)
	}
	st, err = s.System.ShareKernel(ctx, k.ID, "alice", "bob", "none")
	if err != nil || len(st.Shares) != 0 {
		t.Fatalf("withdraw bob's share: %v %v", st.Shares, err)
	}
	if err := s.System.ShutdownKernel(ctx, k.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.System.ShareKernel(ctx, k.ID, "alice", "bob", "read"); !errors.Is(err, kernel.ErrNotRunning) {
		t.Fatalf("share of a shut-down kernel: %v", err)
	}
}

// TestSubmitterSurvivesAServerRestart: bob's execution runs, a second one
// waits, and the server restarts. The re-adopted execution's end and the
// waiting one's start and outputs still carry bob: the recovered scheduler
// takes the submitter from the log, not from memory.
func TestSubmitterSurvivesAServerRestart(t *testing.T) {
	s := testkit.StartStack(t, "")
	ctx := context.Background()
	k, err := s.System.StartKernel(ctx, "python3", "", "", "alice")
	if err != nil {
		t.Fatal(err)
	}
	hold := testkit.NewSentinel(t)
	running, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: hold.Code("print('after')"), By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	s.WaitOutput(k.ID, running.ID, "waiting", 30*time.Second)
	waiting, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: "print('next')", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
	kernelAfterRecovery(t, s, k.ID)
	hold.Release()
	for _, id := range []string{running.ID, waiting.ID} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK {
			t.Fatalf("execution %s after the restart: %+v", id, x)
		}
	}
	evs := stamped(t, s, k.ID)
	rs, ws := events.ExecutionStream(running.ID), events.ExecutionStream(waiting.ID)
	wantPrincipals(t, evs, events.TypeExecutionFinished, rs, "bob")
	wantPrincipals(t, evs, events.TypeExecutionStarted, ws, "bob")
	wantPrincipals(t, evs, events.TypeExecutionFinished, ws, "bob")
	for _, stream := range []string{rs, ws} {
		for _, p := range principalsOf(evs, events.TypeIOPubMessageReceived, stream) {
			if p != "bob" {
				t.Fatalf("an output on %s carries %q after the restart", stream, p)
			}
		}
	}
}
