package queue

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Status of an execution. NB: these strings are shown to agents and stored in
// snapshots; they must not change.
type Status string

const (
	StatusQueued        Status = "queued"
	StatusRunning       Status = "running"
	StatusInputRequired Status = "input_required"
	StatusOK            Status = "ok"
	StatusError         Status = "error"
	StatusAborted       Status = "aborted"
	StatusInterrupted   Status = "interrupted"
	StatusCancelled     Status = "cancelled"
	StatusLost          Status = "lost"
)

// Done reports whether the status is final.
func (s Status) Done() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusInputRequired, "":
		return false
	}
	return true
}

// Execution is what is known of one execution.
type Execution struct {
	ID         string `json:"execution_id"`
	KernelID   string `json:"kernel_id"`
	Code       string `json:"code,omitempty"`
	AllowStdin bool   `json:"allow_stdin,omitempty"`
	Notebook   string `json:"notebook,omitempty"`
	CellID     string `json:"cell_id,omitempty"`
	// By is the principal that submitted it ("" before principals
	// existed: the admin).
	By string `json:"by,omitempty"`
	// Origin: a Jupyter frontend's execute_request (its session, msg_id,
	// the username it gave, the client); nil for an MCP tool call.
	Origin *events.Origin `json:"origin,omitempty"`
	Status Status         `json:"status"`
	MsgID  string         `json:"msg_id,omitempty"`
	// Behind names the execution this one waits behind in the kernel: it
	// was sent pipelined and is shown queued until that one ends (or the
	// kernel starts it).
	Behind         string    `json:"behind,omitempty"`
	ExecutionCount int       `json:"execution_count,omitempty"`
	ErrorName      string    `json:"ename,omitempty"`
	ErrorValue     string    `json:"evalue,omitempty"`
	Traceback      []string  `json:"traceback,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Prompt         string    `json:"prompt,omitempty"`
	Password       bool      `json:"password,omitempty"`
	QueuedAt       time.Time `json:"queued_at"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
	QueuedSeq      uint64    `json:"queued_seq"`
	LastSeq        uint64    `json:"last_seq"`
	// OutputsLost is how many output messages are known lost
	// (ExecutionOutputLost); OutputsLostUnknown: some were lost in a
	// number not known. OutputGaps says why, at most MaxOutputGaps reasons.
	OutputsLost        int      `json:"outputs_lost,omitempty"`
	OutputsLostUnknown bool     `json:"outputs_lost_unknown,omitempty"`
	OutputGaps         []string `json:"output_gaps,omitempty"`

	// InputSeq is the log sequence of the ExecutionInputRequested the
	// execution waits on (0 when it does not): an answer given to an
	// older prompt must not go to a newer one (MCP input requests).
	InputSeq uint64 `json:"input_seq,omitempty"`
}

// MaxOutputGaps bounds the reasons an Execution keeps.
const MaxOutputGaps = 4

// Incomplete says, for an agent, what is missing from the execution's
// outputs: "" when nothing is known missing, otherwise
// "outputs incomplete: N messages lost" (or an unknown number).
func (x Execution) Incomplete() string {
	switch {
	case x.OutputsLost > 0 && x.OutputsLostUnknown:
		return fmt.Sprintf("outputs incomplete: %d messages lost, and an unknown number more", x.OutputsLost)
	case x.OutputsLost > 0:
		return fmt.Sprintf("outputs incomplete: %d messages lost", x.OutputsLost)
	case x.OutputsLostUnknown:
		return "outputs incomplete: an unknown number of messages lost"
	}
	return ""
}

// StartBehind shows a pipelined execution running from at: the one it
// waited behind ended, or the kernel published its first message. Pure.
func StartBehind(x Execution, at time.Time) Execution {
	if x.Status == StatusQueued && x.Behind != "" {
		x.Status, x.Behind, x.StartedAt = StatusRunning, "", at
	}
	return x
}

// ApplyExecution folds one event of the execution's stream into x. It is
// pure: time comes from the envelope.
func ApplyExecution(x Execution, e events.Event) Execution {
	switch p := e.Payload.(type) {
	case events.ExecutionQueued:
		x = Execution{ID: p.ExecutionID, KernelID: p.KernelID, Code: p.Code, AllowStdin: p.AllowStdin,
			Notebook: p.Notebook, CellID: p.CellID, By: e.Principal, Origin: p.Origin, Status: StatusQueued, QueuedAt: e.Time, QueuedSeq: e.Seq}
	case events.ExecutionStarted:
		x.Status, x.MsgID, x.StartedAt = StatusRunning, p.MsgID, e.Time
		if p.Behind != "" {
			x.Status, x.Behind, x.StartedAt = StatusQueued, p.Behind, time.Time{}
		}
	case events.ExecutionInputRequested:
		x.Status, x.Prompt, x.Password, x.InputSeq = StatusInputRequired, p.Prompt, p.Password, e.Seq
	case events.ExecutionInputSent:
		x.Status, x.Prompt, x.Password, x.InputSeq = StatusRunning, "", false, 0
	case events.ExecutionFinished:
		x.Status = StatusOK
		switch p.Status {
		case "error":
			x.Status = StatusError
		case "aborted":
			x.Status = StatusAborted
		}
		x.ExecutionCount, x.ErrorName, x.ErrorValue, x.Traceback = p.ExecutionCount, p.ErrorName, p.ErrorValue, p.Traceback
		x.FinishedAt, x.Prompt, x.InputSeq = e.Time, "", 0
	case events.ExecutionInterrupted:
		x.Status, x.ExecutionCount, x.FinishedAt, x.Prompt, x.InputSeq = StatusInterrupted, p.ExecutionCount, e.Time, "", 0
		x.ErrorName = "KeyboardInterrupt"
	case events.ExecutionCancelled:
		x.Status, x.Reason, x.FinishedAt = StatusCancelled, p.Reason, e.Time
	case events.ExecutionLost:
		x.Status, x.Reason, x.FinishedAt, x.Prompt, x.InputSeq = StatusLost, p.Reason, e.Time, "", 0
	case events.ExecutionOutputLost:
		if p.Messages > 0 {
			x.OutputsLost += p.Messages
		} else {
			x.OutputsLostUnknown = true
		}
		if len(x.OutputGaps) < MaxOutputGaps {
			x.OutputGaps = append(slices.Clip(x.OutputGaps), p.Reason)
		}
	default:
		return x
	}
	x.LastSeq = e.Seq
	return x
}

// Output is one IOPub message of an execution, with its log sequence (the
// cursor a reader resumes from).
type Output struct {
	Seq     uint64          `json:"seq"`
	MsgType string          `json:"msg_type"`
	Content json.RawMessage `json:"content"`
}

// IsExecutionEvent reports whether typ changes an execution's status.
func IsExecutionEvent(typ string) bool {
	switch typ {
	case events.TypeExecutionQueued, events.TypeExecutionStarted, events.TypeExecutionInputRequested,
		events.TypeExecutionInputSent, events.TypeExecutionFinished, events.TypeExecutionInterrupted,
		events.TypeExecutionCancelled, events.TypeExecutionLost, events.TypeExecutionOutputLost:
		return true
	}
	return false
}
