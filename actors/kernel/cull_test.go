package kernel

import (
	"errors"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestDecideCull: a cull is a shutdown of a running kernel with nothing in
// flight; the KernelShutDown it records carries Culled and its reason.
func TestDecideCull(t *testing.T) {
	running := State{ID: "k", Status: StatusRunning}
	for _, tc := range []struct {
		name     string
		s        State
		inFlight int
		want     error
	}{
		{"idle", running, 0, nil},
		{"an execution reached it", running, 1, ErrBusy},
		{"dead", State{ID: "k", Status: StatusDead}, 0, ErrNotRunning},
		{"already shut down", State{ID: "k", Status: StatusShutDown}, 0, ErrNotRunning},
	} {
		if err := DecideCull(tc.s, tc.inFlight); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: DecideCull = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A shutdown someone asked for is not refused for work in flight.
	if err := decideShutdownOf(running, Shutdown{Reason: "requested"}, 2); err != nil {
		t.Errorf("a requested shutdown with work in flight: %v", err)
	}
	e, why := shutDownEvent("k", false, Shutdown{Reason: "idle for 1h0m0s (--cull-idle)", Culled: true})
	if e != (events.KernelShutDown{KernelID: "k", Reason: "idle for 1h0m0s (--cull-idle)", Culled: true}) || why != "culled: idle for 1h0m0s (--cull-idle)" {
		t.Errorf("culled KernelShutDown %+v, told %q", e, why)
	}
	if e, _ := shutDownEvent("k", true, Shutdown{Reason: "requested"}); e != (events.KernelShutDown{KernelID: "k", Forced: true, Reason: "requested"}) {
		t.Errorf("requested KernelShutDown %+v", e)
	}
}

// TestDecideCullRefusesRestoringKernel: a kernel relaunched and held for
// its restore (KernelRestarted{Restore}, no KernelRestored yet) is not
// culled, however idle it looks; once restored, it may be.
func TestDecideCullRefusesRestoringKernel(t *testing.T) {
	s := State{}
	for _, p := range []events.Payload{
		events.KernelStarted{KernelID: "k", Spec: "python3"},
		events.KernelRestarted{KernelID: "k", Restore: "auto-k", Reason: "the kernel process was gone when the server started"},
	} {
		s = Apply(s, events.Event{Stream: events.KernelStream("k"), Payload: p})
	}
	if s.Restore == "" {
		t.Fatalf("transcript did not hold the kernel for its restore: %+v", s)
	}
	if err := DecideCull(s, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("DecideCull of a kernel held for its restore = %v, want ErrBusy", err)
	}
	s = Apply(s, events.Event{Stream: events.KernelStream("k"), Payload: events.KernelRestored{KernelID: "k", Checkpoint: "auto-k"}})
	if err := DecideCull(s, 0); err != nil {
		t.Fatalf("DecideCull after the restore = %v", err)
	}
}
