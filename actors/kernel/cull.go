package kernel

import (
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// DecideCull validates a cull (Shutdown{Culled}): as a shutdown, but only
// of a running kernel with nothing in flight. NB: the server decided the
// kernel idle from the read models; an execution that reached the kernel
// since wins, and the cull waits for a later look.
func DecideCull(s State, inFlight int) error {
	if err := DecideShutdown(s); err != nil {
		return err
	}
	if !s.Status.Alive() {
		return notRunning(s)
	}
	if inFlight > 0 {
		return fmt.Errorf("%w: kernel %s is not idle: not culled", ErrBusy, s.ID)
	}
	if s.Restore != "" {
		// NB: held for its restore (its queue waits): culling it now would
		// lose the variables being loaded and the work waiting for them.
		return fmt.Errorf("%w: kernel %s is being restored from checkpoint %s: not culled", ErrBusy, s.ID, s.Restore)
	}
	return nil
}

// decideShutdownOf is DecideShutdown, or DecideCull for a cull.
func decideShutdownOf(s State, m Shutdown, inFlight int) error {
	if m.Culled {
		return DecideCull(s, inFlight)
	}
	return DecideShutdown(s)
}

// shutDownEvent is the KernelShutDown that ends m, and the reason the
// scheduler is told (what a submit to the kernel then says).
func shutDownEvent(id string, forced bool, m Shutdown) (events.KernelShutDown, string) {
	if !m.Culled {
		return events.KernelShutDown{KernelID: id, Forced: forced, Reason: "requested"}, "shut down"
	}
	return events.KernelShutDown{KernelID: id, Forced: forced, Reason: m.Reason, Culled: true}, "culled: " + m.Reason
}
