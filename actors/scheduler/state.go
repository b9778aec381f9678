package scheduler

import (
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// State is one kernel's queue: the executions waiting, in order, and the
// one in flight.
type State struct {
	KernelID string
	Pending  []queue.Execution
	Active   *queue.Execution
}

// Apply folds an execution event of this kernel into s. Pure.
func Apply(s State, e events.Event) State {
	if !queue.IsExecutionEvent(e.Type) {
		return s
	}
	id := events.StreamID(e.Stream)
	if e.Type == events.TypeExecutionQueued {
		s.Pending = append(s.Pending[:len(s.Pending):len(s.Pending)], queue.ApplyExecution(queue.Execution{}, e))
		return s
	}
	if s.Active != nil && s.Active.ID == id {
		x := queue.ApplyExecution(*s.Active, e)
		if x.Status.Done() {
			s.Active = nil
		} else {
			s.Active = &x
		}
		return s
	}
	for i, x := range s.Pending {
		if x.ID != id {
			continue
		}
		x = queue.ApplyExecution(x, e)
		s.Pending = append(append([]queue.Execution(nil), s.Pending[:i]...), s.Pending[i+1:]...)
		if !x.Status.Done() {
			s.Active = &x // started
		}
		break
	}
	return s
}
