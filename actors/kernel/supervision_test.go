package kernel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// TestCrashedActorIsRebuiltFromTheLog: when the actor panics (here: its
// pump reports a persistence failure), supervision restarts it, and the new
// instance rebuilds its state from its stream, not from scratch.
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
	pid := sys.Root.Spawn(Props(id, Deps{Log: l}, nil))
	state := func() State {
		t.Helper()
		res, err := sys.Root.RequestFuture(pid, GetState{}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(Result).State
	}
	if s := state(); s.Status != StatusFailed || s.Reason != "no ipykernel" {
		t.Fatalf("recovered state: %+v", s)
	}
	sys.Root.Send(pid, pumpStopped{err: errors.New("disk full")}) // the actor panics
	if s := state(); s.Status != StatusFailed || s.Reason != "no ipykernel" || s.LastSeq != 1 {
		t.Fatalf("after a crash the actor must be rebuilt from the log: %+v", s)
	}
}
