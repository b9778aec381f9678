package queue

import (
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Keep implements projections.Keeper: retention keeps the whole stream of
// an execution that has not finished (queued, running or waiting for
// input), however old, because the scheduler resumes it and the kernel
// actor re-adopts it from that stream after a restart. A finished
// execution's stream goes with the retention window.
func (m *Model) Keep(e events.Event) bool {
	id, ok := strings.CutPrefix(e.Stream, "execution/")
	if !ok {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	x, ok := m.executions[id]
	return ok && !x.Status.Done()
}
