package scheduler

import (
	"errors"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var (
	// ErrQueueFull: the kernel's queue is at its bound.
	ErrQueueFull = errors.New("scheduler: queue full")
	// ErrNotQueued: cancel of an execution that is not waiting.
	ErrNotQueued = errors.New("scheduler: execution is not queued")
	// ErrPipelined: DecideCancel's answer for an execution already sent
	// behind the running one: only the kernel actor can withdraw it
	// (kernel.Abort).
	ErrPipelined = errors.New("scheduler: execution is pipelined")
	// ErrKernelGone: the kernel will take no more executions.
	ErrKernelGone = errors.New("scheduler: kernel is not running")
)

// Submit asks for code to run on the kernel.
type Submit struct {
	ExecutionID string
	Code        string
	AllowStdin  bool
	Notebook    string
	CellID      string
	// By is the principal submitting: the execution's events carry it.
	By string
	// ChosenID: the submitter chose ExecutionID (it may repeat one): the
	// scheduler also looks for it in the log (see Actor.known).
	ChosenID bool
	// Origin says where the execution came from when not from an MCP tool
	// call: a Jupyter frontend's execute_request (recorded on its
	// ExecutionQueued; nil for an agent's).
	Origin *events.Origin
	// The frontend's execute options (see events.ExecutionQueued; an MCP
	// tool call leaves them zero).
	Silent          bool
	SkipHistory     bool
	StopOnError     bool
	UserExpressions map[string]string
	// Restore: the server's restore of a relaunched kernel (the load of its
	// auto-checkpoint). It starts at once on a kernel held for its restore,
	// ahead of what waits, which stays queued until the hold ends. Only the
	// server sets it; a kernel not held runs it like any other.
	Restore bool
}

// Bounds of a Submit's UserExpressions.
const (
	maxUserExpressions     = 64
	maxUserExpressionBytes = 4096
)

// ErrBadOptions: a Submit's execute options that cannot be recorded.
var ErrBadOptions = errors.New("scheduler: bad execute options")

// checkOptions validates a Submit's execute options.
func checkOptions(c Submit) error {
	if len(c.UserExpressions) > maxUserExpressions {
		return fmt.Errorf("%w: %d user_expressions (at most %d)", ErrBadOptions, len(c.UserExpressions), maxUserExpressions)
	}
	for name, expr := range c.UserExpressions {
		if len(name)+len(expr) > maxUserExpressionBytes {
			return fmt.Errorf("%w: user_expression %q is longer than %d bytes", ErrBadOptions, clipName(name), maxUserExpressionBytes)
		}
	}
	return nil
}

func clipName(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ErrBadOrigin: a Submit's Origin that cannot be recorded.
var ErrBadOrigin = errors.New("scheduler: bad origin")

// maxOriginField bounds each string of an Origin.
const maxOriginField = 1024

// checkOrigin validates a frontend's Origin.
func checkOrigin(o *events.Origin) error {
	if o == nil {
		return nil
	}
	if o.Kind != events.OriginFrontend {
		return fmt.Errorf("%w: kind %q (only %q is known)", ErrBadOrigin, o.Kind, events.OriginFrontend)
	}
	if o.Session == "" || o.MsgID == "" {
		return fmt.Errorf("%w: a frontend's execution names its session and its request's msg_id", ErrBadOrigin)
	}
	for _, f := range []string{o.Session, o.MsgID, o.Username, o.Client} {
		if len(f) > maxOriginField {
			return fmt.Errorf("%w: a field is longer than %d bytes", ErrBadOrigin, maxOriginField)
		}
	}
	return nil
}

// DecideSubmit queues an execution. If the kernel can run it now it is
// started in the same durable append (msgID names its execute_request).
func DecideSubmit(s State, c Submit, maxQueue int, canRun bool, msgID string) ([]events.Draft, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return nil, err
	}
	if err := checkOptions(c); err != nil {
		return nil, err
	}
	if len(s.Pending) >= maxQueue {
		return nil, fmt.Errorf("%w: %d executions are queued on kernel %s (the limit); wait for some to finish or cancel_execution some", ErrQueueFull, len(s.Pending), s.KernelID)
	}
	drafts := []events.Draft{queuedOf(s, c)}
	if canRun && s.Active == nil && len(s.Pending) == 0 {
		drafts = append(drafts, started(s.KernelID, c.ExecutionID, c.By, msgID))
	}
	return drafts, nil
}

// DecideSubmitRestore queues a restore's load on a kernel held for its
// restore (State.Hold), started in the same append when nothing is in
// flight (canRun), ahead of what waits. NB: the queue's bound does not
// apply: the held queue waits for this very execution.
func DecideSubmitRestore(s State, c Submit, canRun bool, msgID string) ([]events.Draft, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return nil, err
	}
	if err := checkOptions(c); err != nil {
		return nil, err
	}
	drafts := []events.Draft{queuedOf(s, c)}
	if canRun && s.Active == nil {
		drafts = append(drafts, started(s.KernelID, c.ExecutionID, c.By, msgID))
	}
	return drafts, nil
}

// DecideStartWaiting starts waiting execution id out of turn (a held
// kernel's restore load, queued while something was in flight) when
// nothing is in flight.
func DecideStartWaiting(s State, id, msgID string) []events.Draft {
	if s.Active != nil {
		return nil
	}
	for _, x := range s.Pending {
		if x.ID == id {
			return []events.Draft{started(s.KernelID, x.ID, x.By, msgID)}
		}
	}
	return nil
}

// queuedOf records c's queueing on s's kernel.
func queuedOf(s State, c Submit) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(c.ExecutionID), Kernel: s.KernelID, Principal: c.By, Payload: events.ExecutionQueued{
		ExecutionID: c.ExecutionID, KernelID: s.KernelID, Code: c.Code, AllowStdin: c.AllowStdin, Notebook: c.Notebook, CellID: c.CellID, Origin: c.Origin,
		Silent: c.Silent, SkipHistory: c.SkipHistory, StopOnError: c.StopOnError, UserExpressions: c.UserExpressions}}
}

// started records an execution's start; it carries its submitter's
// principal, whenever the queue gets to it.
func started(kernel, id, by, msgID string) events.Draft {
	return startedBehind(kernel, id, by, msgID, "")
}

func startedBehind(kernel, id, by, msgID, behind string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(id), Kernel: kernel, Principal: by,
		Payload: events.ExecutionStarted{ExecutionID: id, KernelID: kernel, MsgID: msgID, Behind: behind}}
}

// DecideNext starts the head of the queue when nothing runs, or — when the
// kernel pipelines — sends it behind the running one if nothing is
// pipelined yet.
func DecideNext(s State, msgID string, pipeline bool) []events.Draft {
	if len(s.Pending) == 0 {
		return nil
	}
	head := s.Pending[0]
	switch {
	case s.Active == nil:
		return []events.Draft{started(s.KernelID, head.ID, head.By, msgID)}
	case pipeline && s.Next == nil && !s.Active.stopsOnError():
		// NB: nothing is sent behind a frontend's stop-on-error execution:
		// if it fails, what follows from its session is cancelled before
		// the kernel takes it up (DecideStopOnError).
		return []events.Draft{startedBehind(s.KernelID, head.ID, head.By, msgID, s.Active.ID)}
	}
	return nil
}

// DecideCancel withdraws a queued execution at principal by's request.
func DecideCancel(s State, id, reason, by string) ([]events.Draft, error) {
	for _, x := range s.Pending {
		if x.ID == id {
			return []events.Draft{{Stream: events.ExecutionStream(id), Kernel: s.KernelID, Principal: by,
				Payload: events.ExecutionCancelled{ExecutionID: id, Reason: reason}}}, nil
		}
	}
	if s.Next != nil && s.Next.ID == id {
		return nil, ErrPipelined
	}
	if s.Active != nil && s.Active.ID == id {
		return nil, fmt.Errorf("%w: %s is already running; use interrupt_kernel to stop it", ErrNotQueued, id)
	}
	return nil, fmt.Errorf("%w: %s is not waiting on kernel %s (it may have finished; see get_execution)", ErrNotQueued, id, s.KernelID)
}

// DecideStopOnError cancels, when a frontend's stop-on-error execution x
// ended in error (status "error" or "interrupted", as ipykernel aborts its
// queue on both), the executions of the same frontend session waiting with
// stop_on_error, as ipykernel answers them "aborted". Executions of agents
// and of other sessions stay queued. s no longer holds x.
func DecideStopOnError(s State, x Execution, status string) []events.Draft {
	if !x.stopsOnError() || (status != "error" && status != "interrupted") {
		return nil
	}
	var drafts []events.Draft
	for _, p := range s.Pending {
		if !p.stopsOnError() || p.Origin.Session != x.Origin.Session {
			continue
		}
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(p.ID), Kernel: s.KernelID, Principal: x.By,
			Payload: events.ExecutionCancelled{ExecutionID: p.ID, Reason: fmt.Sprintf(
				"aborted: execution %s of the same frontend session, queued before it, ended in error (stop_on_error)", x.ID)}})
	}
	return drafts
}

// DecideLosePending records every waiting execution as lost: the kernel
// will not run them. NB: only those never started; the kernel actor writes
// every event of an execution after its start, its loss included.
func DecideLosePending(s State, reason string) []events.Draft {
	var drafts []events.Draft
	for _, x := range s.Pending {
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(x.ID), Kernel: s.KernelID,
			Payload: events.ExecutionLost{ExecutionID: x.ID, Reason: reason}})
	}
	return drafts
}

// DecideDisown records lost, when another node (by) took the kernel over
// while this one (node) was cut off, the executions this node queued that
// the other did not know of: queued here after the newest of this node's
// records it had imported (through, KernelAdopted.Through). The others it
// knew of are its to run or to record lost; none of these was sent to the
// kernel here (an execute_request waits for the history and the lease,
// which this node had lost). through 0 (not known): nothing is recorded.
func DecideDisown(s State, node, by string, through uint64) []events.Draft {
	if through == 0 || node == "" {
		return nil
	}
	var drafts []events.Draft
	for _, x := range s.all() {
		if x.QueuedNode != node || x.QueuedSeq <= through {
			continue
		}
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(x.ID), Kernel: s.KernelID,
			Payload: events.ExecutionLost{ExecutionID: x.ID, Reason: fmt.Sprintf(
				"node %s accepted it while it could not reach the cluster, and node %s, which took kernel %s over meanwhile, "+
					"never learned of it; nothing of it ran: execute it again (the kernel is served by node %s now)", node, by, s.KernelID, by)}})
	}
	return drafts
}
