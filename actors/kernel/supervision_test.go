package kernel

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

type crash struct{}

// TestCrashedActorIsRebuiltFromTheLog: when the actor panics, supervision
// restarts it and the new instance rebuilds its state from its stream. The
// stream gains an event behind the old instance's back, so a restart that
// kept the old state, or no restart at all, fails the test.
func TestCrashedActorIsRebuiltFromTheLog(t *testing.T) {
	l, err := eventlog.Open(filepath.Join(t.TempDir(), "events"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	id := "k1"
	if _, err := l.Append(context.Background(), draft(id, events.KernelStartFailed{KernelID: id, Spec: "python3", Reason: "no ipykernel"})); err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	pid := sys.Root.Spawn(Props(id, Deps{Log: l, PanicOn: func(m any) bool { _, ok := m.(crash); return ok }}, nil))
	state := func() State {
		t.Helper()
		res, err := sys.Root.RequestFuture(pid, GetState{}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(Result).State
	}
	if s := state(); s.Status != StatusFailed || s.Reason != "no ipykernel" || s.LastSeq != 1 {
		t.Fatalf("recovered state: %+v", s)
	}
	if _, err := l.Append(context.Background(), draft(id, events.KernelShutDown{KernelID: id, Reason: "written behind the actor's back"})); err != nil {
		t.Fatal(err)
	}
	if s := state(); s.Status != StatusFailed || s.LastSeq != 1 {
		t.Fatalf("a running actor folds only what it appends: %+v", s)
	}
	sys.Root.Send(pid, crash{})
	if s := state(); s.Status != StatusShutDown || s.Reason != "written behind the actor's back" || s.LastSeq != 2 {
		t.Fatalf("after a crash the actor must be rebuilt from its stream: %+v", s)
	}
}
