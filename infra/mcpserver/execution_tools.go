package mcpserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// submitTimeout bounds Submit, which runs detached from the caller's
// context so that a client going away cannot leave a half-queued execution.
const submitTimeout = 60 * time.Second

var statuses = []string{
	string(queue.StatusQueued), string(queue.StatusRunning), string(queue.StatusInputRequired),
	string(queue.StatusOK), string(queue.StatusError), string(queue.StatusAborted),
	string(queue.StatusInterrupted), string(queue.StatusCancelled), string(queue.StatusLost),
}

const executionIDHelp = "the execution_id returned by execute"

func (s *Server) addExecutionTools() {
	maxT, defT, maxW := int(s.opts.MaxTimeout.Seconds()), int(s.opts.DefaultTimeout.Seconds()), int(s.opts.MaxWait.Seconds())

	s.mcp.AddTool(s.withApp(mcp.NewTool("execute",
		mcp.WithDescription(fmt.Sprintf("Run code in a kernel and return its outputs. Variables persist "+
			"between calls on the same kernel. Executions on one kernel run one at a time, in order. "+
			"If the code is not finished within timeout_s, the reply has status \"running\", the "+
			"execution_id and the output so far: the code KEEPS RUNNING; call get_execution with the "+
			"execution_id to follow it (do not execute the code again). Long texts are cut to head "+
			"and tail with a link (asset://...) to the full text; read it as a resource. Code is limited "+
			"to %d bytes.", s.opts.MaxCodeBytes)),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithString("code", mcp.Required(), mcp.Description("The code to run.")),
		mcp.WithNumber("timeout_s", mcp.DefaultNumber(defT), mcp.Min(0), mcp.Max(maxT),
			mcp.Description(fmt.Sprintf("Seconds to wait for the result before replying with status running "+
				"(more than 0, at most %d). It never stops the execution.", maxT))),
		mcp.WithString("execution_id", mcp.Description("Optional id you choose, to make the call "+
			"idempotent: repeating execute with the same id returns that execution instead of running "+
			"the code twice.")),
		mcp.WithBoolean("allow_stdin", mcp.DefaultBool(false), mcp.Description("Let the code call "+
			"input(); the execution then pauses with status input_required until send_input (a client "+
			"that handles elicitation is asked the prompt instead). Without it input() raises at once.")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true),
	)), s.execute)

	s.mcp.AddTool(s.withApp(mcp.NewTool("get_execution",
		mcp.WithDescription("Get an execution's status and outputs (after the cursor `since`), waiting up "+
			"to wait_s seconds for it to finish. Use it to follow an execute that replied \"running\"."),
		mcp.WithString("execution_id", mcp.Required(), mcp.Description(executionIDHelp)),
		mcp.WithNumber("wait_s", mcp.DefaultNumber(0), mcp.Min(0), mcp.Max(maxW),
			mcp.Description(fmt.Sprintf("Seconds to wait for completion (0 to %d); replies as soon as it finishes.", maxW))),
		mcp.WithInteger("since", mcp.DefaultNumber(0), mcp.Min(0),
			mcp.Description("Only outputs after this cursor (the `cursor` of an earlier reply); 0 for all.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)), s.getExecution)

	s.mcp.AddTool(mcp.NewTool("list_executions",
		mcp.WithDescription("List executions, oldest first, optionally of one kernel and with one status. "+
			"An execution a Jupyter frontend (JupyterLab, VS Code) sent to the kernel shows its `origin`."),
		mcp.WithString("kernel", mcp.Description("Optional: "+kernelArgHelp+".")),
		mcp.WithString("status", mcp.Enum(statuses...), mcp.Description("Optional status filter.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.listExecutions)

	s.mcp.AddTool(mcp.NewTool("cancel_execution",
		mcp.WithDescription("Withdraw a queued execution before it starts (status cancelled: it will not run). "+
			"A queued execution already handed to the kernel behind the running one answers status "+
			"cancel_requested: the kernel is asked to abort it, and its final status (get_execution) tells "+
			"whether it ran. A running execution cannot be cancelled: use interrupt_kernel."),
		mcp.WithString("execution_id", mcp.Required(), mcp.Description(executionIDHelp)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.cancelExecution)

	s.mcp.AddTool(mcp.NewTool("send_input",
		mcp.WithDescription("Answer an execution waiting in input() (status input_required; only "+
			"with allow_stdin). The value is sent as the typed line, without a newline."),
		mcp.WithString("execution_id", mcp.Required(), mcp.Description(executionIDHelp)),
		mcp.WithString("value", mcp.Required(), mcp.Description("The text to answer the prompt with (may be empty).")),
		mcp.WithNumber("wait_s", mcp.DefaultNumber(0), mcp.Min(0), mcp.Max(maxW),
			mcp.Description(fmt.Sprintf("Seconds to wait afterwards for the execution to finish (0 to %d).", maxW))),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.sendInput)
}

// timeoutSpan is the range of execute's, run_cell's and run_all's timeout_s.
func (s *Server) timeoutSpan() span {
	return span{lo: 0, loOpen: true, hi: s.opts.MaxTimeout.Seconds(), unit: "seconds",
		hint: "it only bounds how long this call waits: the execution keeps running afterwards and get_execution follows it"}
}

// waitSpan is the range of get_execution's and send_input's wait_s.
func (s *Server) waitSpan() span {
	return span{lo: 0, hi: s.opts.MaxWait.Seconds(), unit: "seconds", hint: "call again to wait longer"}
}

func (s *Server) execute(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	ref := a.str("kernel", true, kernelArgHelp)
	code := a.str("code", true, "the code to run, as a string")
	timeout := a.duration("timeout_s", s.opts.DefaultTimeout, s.timeoutSpan())
	execID := a.str("execution_id", false, "an id of your choosing")
	stdin := a.boolean("allow_stdin", false)
	if a.err != nil {
		return failed("execute", a.err), nil
	}
	prior, resume, err := s.openExecutionRoundTrip(ctx, req)
	if err != nil {
		return failed("execute", err), nil
	}
	if resume {
		// NB: an answer to the execution's input(): never run the code again.
		return s.resumeInput(ctx, req, prior, timeout, s.progressFor(ctx, req))
	}
	if len(code) > s.opts.MaxCodeBytes {
		return mcp.NewToolResultError(fmt.Sprintf("execute: the code is %d bytes, more than the limit of %d bytes. "+
			"Split it into several execute calls (definitions first, then the code that uses them), "+
			"or write it to a file in smaller pieces and run that file.", len(code), s.opts.MaxCodeBytes)), nil
	}
	kernelID, err := s.backend.ResolveKernel(ctx, ref)
	if err != nil {
		return failed("execute on "+ref, err), nil
	}
	sr := SubmitRequest{KernelID: kernelID, Code: code, ExecutionID: execID, AllowStdin: stdin}
	if ref != kernelID {
		sr.Notebook = ref
	}
	// NB: detached from ctx: once Enqueue starts, the execution is the
	// core's, whatever happens to this call.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	x, err := s.backend.Enqueue(sctx, sr)
	cancel()
	if err != nil {
		return failed("execute on kernel "+kernelID, err), nil
	}
	defer x.Release()
	p := s.progressFor(ctx, req)
	wait := timeout
	settled := false
	if p == nil && x.Settled != nil {
		// NB: one wake-up, when the end is applied; not one per output, and
		// no wait for the submit's own durability first (the end's implies it).
		t := time.NewTimer(timeout)
		select {
		case <-x.Settled:
			settled = true
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err() // the client is gone; the execution runs on regardless
		}
		t.Stop()
		wait = 0
	}
	if !settled {
		// NB: nothing is told to the agent about an execution that is not
		// durable: a "running" reply is a promise the log must keep.
		if err := x.Durable(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return failed("execute on kernel "+kernelID, err), nil
		}
	}
	f, err := s.follow(ctx, x.ID, 0, wait, p)
	if err != nil {
		if ctx.Err() != nil {
			// The client is gone; the execution runs on regardless.
			return nil, ctx.Err()
		}
		return failed(fmt.Sprintf("read execution %s (it was queued and runs on; call get_execution)", x.ID), err), nil
	}
	return s.finishExecutionCall(ctx, req, prior, f, 0, ""), nil
}

func (s *Server) getExecution(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	id := a.str("execution_id", true, executionIDHelp)
	wait := a.duration("wait_s", 0, s.waitSpan())
	since := a.uint("since", 0) // a cursor: a position in the event log
	if a.err != nil {
		return failed("get execution", a.err), nil
	}
	prior, resume, err := s.openExecutionRoundTrip(ctx, req)
	if err != nil {
		return failed("get execution", err), nil
	}
	if resume {
		return s.resumeInput(ctx, req, prior, wait, nil)
	}
	f, err := s.follow(ctx, id, since, wait, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return failed("get execution "+id, err), nil
	}
	return s.finishExecutionCall(ctx, req, prior, f, since, ""), nil
}

// executionSummary is one row of list_executions.
type executionSummary struct {
	ID             string       `json:"execution_id"`
	KernelID       string       `json:"kernel_id"`
	Status         queue.Status `json:"status"`
	ExecutionCount int          `json:"execution_count,omitempty"`
	Code           string       `json:"code"`
	QueuedAt       time.Time    `json:"queued_at"`
	FinishedAt     time.Time    `json:"finished_at,omitzero"`
	Reason         string       `json:"reason,omitempty"`
	// Origin: a Jupyter frontend's execute_request (nil: an agent's).
	Origin *events.Origin `json:"origin,omitempty"`
}

func (s *Server) listExecutions(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	ref := a.str("kernel", false, kernelArgHelp)
	status := a.str("status", false, "one of "+strings.Join(statuses, ", "))
	if a.err != nil {
		return failed("list executions", a.err), nil
	}
	if status != "" && !containsString(statuses, status) {
		return mcp.NewToolResultError(fmt.Sprintf("list executions: unknown status %q; use one of %s, or leave it out.",
			status, strings.Join(statuses, ", "))), nil
	}
	kernelID := ""
	if ref != "" {
		var err error
		if kernelID, err = s.backend.ResolveKernel(ctx, ref); err != nil {
			return failed("list executions of "+ref, err), nil
		}
	}
	xs, err := s.backend.Executions(ctx, kernelID, queue.Status(status))
	if err != nil {
		return failed("list executions", err), nil
	}
	rows := make([]executionSummary, 0, len(xs))
	for _, x := range xs {
		code, _ := Truncate(x.Code, 200, "")
		rows = append(rows, executionSummary{ID: x.ID, KernelID: x.KernelID, Status: x.Status,
			ExecutionCount: x.ExecutionCount, Code: code, QueuedAt: x.QueuedAt, FinishedAt: x.FinishedAt, Reason: x.Reason, Origin: x.Origin})
	}
	return structured(map[string]any{"executions": rows}), nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) cancelExecution(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	id := a.str("execution_id", true, executionIDHelp)
	if a.err != nil {
		return failed("cancel execution", a.err), nil
	}
	v, err := s.backend.Execution(ctx, id, 0)
	if err != nil {
		return failed("cancel execution "+id, err), nil
	}
	switch st := v.Execution.Status; {
	case st == queue.StatusRunning || st == queue.StatusInputRequired:
		return mcp.NewToolResultError(fmt.Sprintf("cancel execution %s: it is already %s; only queued executions "+
			"can be cancelled. Use interrupt_kernel on kernel %s to stop it.", id, st, v.Execution.KernelID)), nil
	case st.Done():
		return mcp.NewToolResultError(fmt.Sprintf("cancel execution %s: it already finished with status %s; "+
			"there is nothing to cancel.", id, st)), nil
	}
	path, err := s.backend.CancelExecution(ctx, id)
	if err != nil {
		return failed("cancel execution "+id, err), nil
	}
	if path == CancelAbortRequested {
		// NB: pipelined: already sent to the kernel behind the running one.
		// Decided from the path the cancel took, never from the read model,
		// which may not show the hand-over yet.
		return structured(map[string]any{"execution_id": id, "status": "cancel_requested",
			"result": "execution " + id + " was already sent to the kernel behind the running execution" +
				"; the kernel was asked to abort it. If the kernel had not started it, it ends with status cancelled and never runs; " +
				"if it had, it runs to its end and its real outcome is recorded. Call get_execution to see which."}), nil
	}
	return structured(map[string]any{"execution_id": id, "status": queue.StatusCancelled,
		"result": "execution " + id + " was withdrawn from the queue; it will not run"}), nil
}

func (s *Server) sendInput(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	id := a.str("execution_id", true, executionIDHelp)
	if _, ok := a.m["value"]; !ok && a.err == nil {
		a.fail("missing required argument %q: the text to answer the prompt with (may be empty)", "value")
	}
	value := a.str("value", false, "the text to answer the prompt with")
	wait := a.duration("wait_s", 0, s.waitSpan())
	if a.err != nil {
		return failed("send input", a.err), nil
	}
	v, err := s.backend.Execution(ctx, id, 0)
	if err != nil {
		return failed("send input to "+id, err), nil
	}
	if v.Execution.Status != queue.StatusInputRequired {
		return mcp.NewToolResultError(fmt.Sprintf("send input to %s: it is not waiting for input (status %s). "+
			"Only executions with status input_required (started with allow_stdin) take input.", id, v.Execution.Status)), nil
	}
	prompt := shownPrompt(v.Execution.Prompt)
	if err := s.backend.SendInput(ctx, id, value); err != nil {
		return failed("send input to "+id, err), nil
	}
	f, err := s.follow(ctx, id, v.Cursor, wait, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return failed("read execution "+id+" after sending input", err), nil
	}
	res := s.executionReply(f, v.Cursor)
	res.Content = append([]mcp.Content{mcp.NewTextContent(fmt.Sprintf("Answered prompt %q.", prompt))}, res.Content...)
	return res, nil
}
