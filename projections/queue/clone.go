package queue

import (
	"maps"
	"slices"
)

// Clone returns an independent copy of the model as it is: applying events
// to one never changes the other. It costs a copy of the executions the
// model holds (no encoding): the console folds from a copy of a replayed
// state it keeps (cmd/mcp-jupyter/console_then.go), which restoring a
// snapshot would make ~50x dearer.
//
// NB: an Execution is copied by value; its slices (Traceback, OutputGaps)
// and Origin are shared, which is safe because ApplyExecution replaces
// them or appends to a clipped copy, never writes into them.
func (m *Model) Clone() *Model {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := &Model{seq: m.seq, executions: make(map[string]*Execution, len(m.executions)), pending: make(map[string][]string, len(m.pending)),
		waitingBy: maps.Clone(m.waitingBy), byKernel: make(map[string]map[string]*Execution, len(m.byKernel)),
		active: maps.Clone(m.active), behind: maps.Clone(m.behind), finished: slices.Clone(m.finished), maxFinished: m.maxFinished}
	for id, x := range m.executions {
		y := *x
		c.executions[id] = &y
		c.index(&y)
	}
	for k, ids := range m.pending {
		c.pending[k] = slices.Clone(ids)
	}
	return c
}
