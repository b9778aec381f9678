package mcpserver

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Backend is what the MCP edge needs from the core (the kernel and
// scheduler actors and the read models). cmd/mcp-jupyter wires the real one.
//
// Every method is safe for concurrent use. Errors meant for the agent are
// returned as Go errors whose text says what was wrong and what to do; the
// edge turns them into isError tool results.
type Backend interface {
	// KernelSpecs lists the installed kernelspecs.
	KernelSpecs(ctx context.Context) ([]KernelSpec, error)
	// StartKernel launches a kernel and returns once it is ready.
	StartKernel(ctx context.Context, req StartKernelRequest) (KernelView, error)
	// Kernels lists kernels, optionally only those with the given label.
	Kernels(ctx context.Context, label string) ([]KernelView, error)
	// ResolveKernel turns a kernel id or a bound notebook path into a kernel id.
	ResolveKernel(ctx context.Context, kernelOrNotebook string) (string, error)
	InterruptKernel(ctx context.Context, kernelID string) error
	RestartKernel(ctx context.Context, kernelID string) error
	ShutdownKernel(ctx context.Context, kernelID string) error
	// ShareKernel grants principal read or execute on a kernel the caller
	// owns (AccessNone withdraws the share).
	ShareKernel(ctx context.Context, kernelID, principal string, access auth.Access) error

	// Submit queues code and returns once ExecutionQueued is durable. With
	// an ExecutionID that already exists it returns that execution.
	Submit(ctx context.Context, req SubmitRequest) (queue.Execution, error)
	// Enqueue queues code like Submit but returns as soon as the kernel's
	// scheduler took it, before it is durable: the execution may already
	// run while its ExecutionQueued is on its way to the disk. The caller
	// waits on Submitted.Settled for its result (the read models see only
	// durable events, so the end being there means the submit is durable
	// too), or calls Submitted.Durable before it tells the agent anything
	// else. Call Submitted.Release when done.
	Enqueue(ctx context.Context, req SubmitRequest) (Submitted, error)
	// Execution returns an execution's status and its outputs with seq >
	// since, plus a channel closed when anything about it changes next
	// (status or new output) — wait on it, never poll. It answers from a
	// read model: it costs what is new since `since`, and the channel is
	// this execution's own (another execution's output does not close it).
	Execution(ctx context.Context, id string, since uint64) (ExecutionView, error)
	// Executions lists a kernel's executions ("" for all) by status ("" for any).
	Executions(ctx context.Context, kernelID string, status queue.Status) ([]queue.Execution, error)
	// CancelExecution withdraws a queued execution, or — one already handed
	// to the kernel behind the running one — asks the kernel to abort it; it
	// says which path was taken (the read model may not show the hand-over yet).
	CancelExecution(ctx context.Context, id string) (CancelPath, error)
	// SendInput answers an execution waiting in input().
	SendInput(ctx context.Context, id, value string) error
}

// KernelSpec is an installed kernelspec.
type KernelSpec struct {
	Name          string `json:"name"`
	DisplayName   string `json:"display_name"`
	Language      string `json:"language"`
	InterruptMode string `json:"interrupt_mode,omitempty"`
}

// StartKernelRequest names a kernelspec and optionally a notebook to bind and
// a label to find the kernel by.
type StartKernelRequest struct {
	Spec     string
	Notebook string
	Label    string
}

// KernelView is what list_kernels shows of a kernel.
type KernelView struct {
	ID             string `json:"kernel_id"`
	Spec           string `json:"kernelspec"`
	Label          string `json:"label,omitempty"`
	Notebook       string `json:"notebook,omitempty"`
	State          string `json:"state"`           // starting, running, dead, lost, shut_down
	ExecutionState string `json:"execution_state"` // busy, idle, starting, dead
	Pid            int    `json:"pid,omitempty"`
	QueueDepth     int    `json:"queue_depth"`
	Running        string `json:"running_execution,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// Owner is the principal the kernel belongs to ("admin" for kernels
	// from before principals): whom to ask about a kernel shared with you.
	Owner string `json:"owner,omitempty"`
	// Shares maps each principal the kernel is shared with to its access
	// (read or execute); shown to the owner and admins only.
	Shares map[string]string `json:"shares,omitempty"`
	// RestoreNotice: the server relaunched this kernel at start (its
	// process was gone) and restored it; what came back and what did not
	// (RestoreNotice). Empty otherwise.
	RestoreNotice string `json:"restore_notice,omitempty"`
}

// SubmitRequest queues code on a kernel.
type SubmitRequest struct {
	KernelID    string
	Code        string
	ExecutionID string // optional, client-chosen for idempotency
	AllowStdin  bool
	Notebook    string
	CellID      string
}

// Submitted is an execution Enqueue handed to its kernel's scheduler.
type Submitted struct {
	ID string
	// Settled is closed once the read models hold the execution settled: a
	// final status, or waiting for input. Its outputs do not close it: it
	// is the one wake-up of a caller that wants the result. Nil when the
	// models cannot tell (an execution id of long ago): call Durable and
	// read the execution instead.
	Settled <-chan struct{}
	// Durable waits until the submit is durable and the read models hold
	// it (what Submit returns after).
	Durable func(ctx context.Context) error
	// Release ends the wait; call it once, whatever happened.
	Release func()
}

// ExecutionView is an execution with the outputs after a cursor.
type ExecutionView struct {
	Execution queue.Execution
	Outputs   []queue.Output
	// Cursor is the seq to pass as since to get only newer outputs.
	Cursor uint64
	// Changed is closed when the execution next changes.
	Changed <-chan struct{}
	// More: the outputs were cut at a byte bound; reading from Cursor
	// returns the rest at once.
	More bool
	// RestoreNotice: the server's restore of the execution's kernel
	// affected it (lost by the relaunch, queued before the restore and run
	// after it, or the first one queued after it): what the agent must
	// know (RestoreNotice). Empty otherwise.
	RestoreNotice string
}

// CancelPath is what a cancel did.
type CancelPath int

const (
	// CancelWithdrawn: taken out of the server's queue; it will not run.
	CancelWithdrawn CancelPath = iota
	// CancelAbortRequested: already handed to the kernel (pipelined); the
	// kernel was asked to abort it, and its final status says whether it ran.
	CancelAbortRequested
)
