package kernels

import (
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestKeepLiveKernelLifecycles: retention keeps a kernel's lifecycle events
// until it is shut down (dead and lost kernels are recovered too), never
// its IOPub traffic, and nothing of a kernel that failed to start.
func TestKeepLiveKernelLifecycles(t *testing.T) {
	m := New()
	apply := func(e events.Event) {
		t.Helper()
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	apply(ev(1, "a", started("a", 10)))
	apply(ev(2, "b", started("b", 11)))
	apply(ev(3, "c", events.KernelStartFailed{KernelID: "c", Spec: "python3", Reason: "no python"}))
	io := ev(4, "a", statusMsg("a", "busy"))
	apply(io)
	apply(ev(5, "b", events.KernelDied{KernelID: "b", Reason: "killed"}))
	lifecycle := events.Event{Stream: events.KernelStream("a"), Type: events.TypeKernelStarted}
	if !m.Keep(lifecycle) || m.Keep(io) {
		t.Fatal("a running kernel: want its lifecycle kept and its IOPub not")
	}
	if !m.Keep(events.Event{Stream: events.KernelStream("b"), Type: events.TypeKernelDied}) {
		t.Fatal("a dead kernel (recovered at the next start) is not kept")
	}
	if m.Keep(events.Event{Stream: events.KernelStream("c"), Type: events.TypeKernelStartFailed}) {
		t.Fatal("a kernel that failed to start is kept")
	}
	apply(ev(6, "a", events.KernelShutDown{KernelID: "a", Reason: "asked"}))
	if m.Keep(lifecycle) {
		t.Fatal("a shut-down kernel is still kept")
	}
}
