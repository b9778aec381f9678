package kernels

import (
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Keep implements projections.Keeper: retention keeps the lifecycle events
// of every kernel not shut down (running, dead or lost: its actor is
// recovered at the next start and folds its kernel/<id> stream), however
// old. IOPub messages on the kernel's own stream are not kept: the kernel
// actor's fold ignores them, and a busy kernel writes many.
func (m *Model) Keep(e events.Event) bool {
	id, ok := strings.CutPrefix(e.Stream, "kernel/")
	if !ok || e.Type == events.TypeIOPubMessageReceived {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.kernels[id]
	return ok && k.State != StateShutDown && !strings.HasPrefix(k.Reason, startFailed)
}

// startFailed prefixes the Reason of a kernel that never started: the
// system does not recover it, so its stream need not be kept.
const startFailed = "start failed: "
