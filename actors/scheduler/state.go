package scheduler

import (
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Execution is what the scheduler keeps of one execution: enough to send
// it and to answer its submitter. NB: the scheduler's own type, folded from
// its own facts — the read model (projections/queue) is the edges' concern.
type Execution struct {
	ID         string
	KernelID   string
	Code       string
	AllowStdin bool
	Notebook   string
	CellID     string
	// By is the principal that submitted it ("" before principals existed).
	By string
	// Origin: a Jupyter frontend's execute_request (nil: an MCP tool call).
	Origin *events.Origin
	// The frontend's execute options (see events.ExecutionQueued).
	Silent          bool
	SkipHistory     bool
	StopOnError     bool
	UserExpressions map[string]string
	// MsgID names its execute_request once started.
	MsgID string
	// Behind is the execution it was pipelined behind ("" none).
	Behind    string
	QueuedAt  time.Time
	StartedAt time.Time
	// QueuedSeq and QueuedNode are the seq and node of its ExecutionQueued
	// (a record imported from another node keeps that node's name): in a
	// cluster, whether the node that takes the kernel over knew of it
	// (DecideDisown).
	QueuedSeq  uint64
	QueuedNode string
	// LastSeq is the seq of its last event the scheduler applied: an edge
	// waits for its read models to reach it (read your writes).
	LastSeq uint64
}

// Started reports whether ExecutionStarted is durable for x.
func (x Execution) Started() bool { return x.MsgID != "" }

// State is one kernel's queue: the executions waiting, in order, and the
// ones in flight (Active, and Next pipelined behind it).
type State struct {
	KernelID string
	Pending  []Execution
	Active   *Execution
	// Next is the execution pipelined behind Active (sent to the kernel,
	// which runs it once Active ends), or nil.
	Next *Execution
	// LastSeq is the last lifecycle event folded.
	LastSeq uint64
	// LastCount is the highest execution count recorded on the kernel's
	// current process (0 after a start or restart): a re-attach's count
	// probe is compared with it.
	LastCount int
	// Hold is the restore under way of a kernel relaunched at recovery
	// (KernelRestarted{Restore} with no KernelRestored after it; nil:
	// none): nothing is dispatched but a Submit{Restore} until it ends.
	Hold *Hold
}

// Hold is a kernel held for its restore. NB: replaced, never changed in
// place (states are copied by value).
type Hold struct {
	// Checkpoint is the checkpoint to restore (KernelRestarted.Restore).
	Checkpoint string
	// Lost are the executions that were started in the process found gone:
	// the kernel actor records them lost (never run again).
	Lost []string
	// Seq is the seq of the KernelRestarted that began it.
	Seq uint64
}

// holdOf is the hold a relaunch into restore begins: what is in flight
// then ran in the gone process.
func holdOf(s State, restore string, seq uint64) *Hold {
	h := &Hold{Checkpoint: restore, Seq: seq}
	for _, x := range []*Execution{s.Active, s.Next} {
		if x != nil {
			h.Lost = append(h.Lost, x.ID)
		}
	}
	return h
}

// Lifecycle reports whether an event type changes a scheduler's state:
// the ones it writes, and the final events the kernel actor writes.
func Lifecycle(typ string) bool {
	switch typ {
	case events.TypeExecutionQueued, events.TypeExecutionStarted, events.TypeExecutionCancelled,
		events.TypeExecutionFinished, events.TypeExecutionInterrupted, events.TypeExecutionLost,
		events.TypeKernelStarted, events.TypeKernelRestarted, events.TypeKernelRanUnrecorded, events.TypeKernelRestored:
		return true
	}
	return false
}

// Apply folds a lifecycle event of one of this kernel's executions into s.
// Pure; other events leave s as it is.
func Apply(s State, e events.Event) State {
	if !Lifecycle(e.Type) {
		return s
	}
	s.LastSeq = e.Seq
	id := events.StreamID(e.Stream)
	switch p := e.Payload.(type) {
	case events.ExecutionQueued:
		s.Pending = append(s.Pending[:len(s.Pending):len(s.Pending)], queuedExecutionOf(p, e))
	case events.ExecutionStarted:
		for i, x := range s.Pending {
			if x.ID == id {
				x.MsgID, x.StartedAt, x.LastSeq, x.Behind = p.MsgID, e.Time, e.Seq, p.Behind
				s.Pending = append(append([]Execution(nil), s.Pending[:i]...), s.Pending[i+1:]...)
				if s.Active != nil && p.Behind == s.Active.ID {
					s.Next = &x
				} else {
					// NB: also when the one it was sent behind already ended
					// (its end and this start raced into the log).
					s.Active = &x
				}
				break
			}
		}
	case events.KernelStarted:
		s.LastCount, s.Hold = 0, nil // a new process counts from 1
	case events.KernelRestarted:
		s.LastCount, s.Hold = 0, nil
		if p.Restore != "" {
			s.Hold = holdOf(s, p.Restore, e.Seq)
		}
	case events.KernelRestored:
		s.Hold = nil
	case events.KernelRanUnrecorded:
		s.LastCount = max(s.LastCount, p.ExecutionCount)
	case events.ExecutionFinished:
		s.LastCount = max(s.LastCount, p.ExecutionCount)
		s = End(s, id)
	case events.ExecutionInterrupted:
		s.LastCount = max(s.LastCount, p.ExecutionCount)
		s = End(s, id)
	case events.ExecutionLost:
		s.LastCount = max(s.LastCount, p.ExecutionCount)
		s = End(s, id)
	default: // cancelled: it ended
		s = End(s, id)
	}
	return s
}

// queuedExecutionOf is the execution an ExecutionQueued event records.
func queuedExecutionOf(p events.ExecutionQueued, e events.Event) Execution {
	return Execution{ID: p.ExecutionID, KernelID: p.KernelID, Code: p.Code, AllowStdin: p.AllowStdin, Notebook: p.Notebook,
		CellID: p.CellID, By: e.Principal, Origin: p.Origin, Silent: p.Silent, SkipHistory: p.SkipHistory,
		StopOnError: p.StopOnError, UserExpressions: p.UserExpressions, QueuedAt: e.Time, LastSeq: e.Seq,
		QueuedSeq: e.Seq, QueuedNode: e.Node}
}

// stopsOnError reports whether x is a frontend's execution asking that its
// session's executions queued behind it be cancelled if it fails.
func (x Execution) stopsOnError() bool { return x.StopOnError && x.Origin != nil }

// End removes an execution that reached its final state, waiting or
// active. The kernel actor's ExecutionEnded is applied with it, the same
// way the final event it reports is folded in recovery. Pure.
func End(s State, id string) State {
	if s.Active != nil && s.Active.ID == id {
		s.Active, s.Next = s.Next, nil
		return s
	}
	if s.Next != nil && s.Next.ID == id {
		s.Next = nil
		return s
	}
	for i, x := range s.Pending {
		if x.ID == id {
			s.Pending = append(append([]Execution(nil), s.Pending[:i]...), s.Pending[i+1:]...)
			break
		}
	}
	return s
}

// all is every execution s holds: in flight first, then waiting.
func (s State) all() []Execution {
	var xs []Execution
	for _, x := range []*Execution{s.Active, s.Next} {
		if x != nil {
			xs = append(xs, *x)
		}
	}
	return append(xs, s.Pending...)
}
