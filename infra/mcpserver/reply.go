package mcpserver

import (
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// executionReply is an execution as the agent sees it: a header with its
// handle and status, the rendered outputs, and — when it is not finished —
// what to call next. since is the cursor the outputs start after.
func (s *Server) executionReply(f followed, since uint64) *mcp.CallToolResult {
	x := f.Execution
	var h strings.Builder
	fmt.Fprintf(&h, "execution_id: %s\nkernel_id: %s\nstatus: %s\n", x.ID, x.KernelID, x.Status)
	if x.ExecutionCount > 0 {
		fmt.Fprintf(&h, "execution_count: %d\n", x.ExecutionCount)
	}
	if x.Reason != "" {
		fmt.Fprintf(&h, "reason: %s\n", x.Reason)
	}
	if f.RestoreNotice != "" {
		fmt.Fprintf(&h, "notice: %s\n", f.RestoreNotice)
	}
	if o := x.Origin; o != nil {
		fmt.Fprintf(&h, "origin: %s (session %s, user %q)\n", o.Kind, o.Session, o.Username)
	}
	incomplete := x.Incomplete()
	if incomplete != "" {
		// NB: never silent: the outputs below are not all the code printed.
		fmt.Fprintf(&h, "%s (%s)\n", incomplete, strings.Join(x.OutputGaps, "; "))
	}
	fmt.Fprintf(&h, "cursor: %d\n", f.Cursor)
	switch x.Status {
	case queue.StatusQueued:
		fmt.Fprintf(&h, "The execution is queued behind others on this kernel and will run; nothing was cancelled. "+
			"Call get_execution with execution_id %q (wait_s up to %d) to get its result.\n", x.ID, int(s.opts.MaxWait.Seconds()))
	case queue.StatusRunning:
		fmt.Fprintf(&h, "The execution is still running (a timeout never stops it). Call get_execution with "+
			"execution_id %q and since %d (wait_s up to %d) to get the rest of the output and the result; "+
			"interrupt_kernel stops it.\n", x.ID, f.Cursor, int(s.opts.MaxWait.Seconds()))
	case queue.StatusInputRequired:
		kind := "input()"
		if x.Password {
			kind = "a password prompt"
		}
		fmt.Fprintf(&h, "The code is waiting in %s with prompt %q. Call send_input with execution_id %q and the value to type.\n",
			kind, shownPrompt(x.Prompt), x.ID)
	case queue.StatusInterrupted:
		h.WriteString("The execution was interrupted (KeyboardInterrupt); the kernel keeps its variables.\n")
	case queue.StatusLost:
		h.WriteString("The kernel was lost while this ran; it was not re-run automatically. Check the kernel with list_kernels and run the code again if it is safe to.\n")
	case queue.StatusAborted:
		h.WriteString("The kernel aborted this execution without running it (an earlier execution failed).\n")
	}

	cs := []mcp.Content{mcp.NewTextContent(strings.TrimRight(h.String(), "\n"))}
	rc := s.render
	rc.Assets.origin = AssetOrigin{KernelID: x.KernelID, ExecutionID: x.ID}
	outs := renderOutputs(f.Outputs, rc)
	if since > 0 && len(outs) > 0 {
		cs = append(cs, mcp.NewTextContent(fmt.Sprintf("(outputs after cursor %d)", since)))
	}
	cs = append(cs, outs...)
	if x.Status == queue.StatusError && !hasErrorOutput(f.Outputs) && x.ErrorName != "" {
		cs = append(cs, renderText("", formatError(x.ErrorName, x.ErrorValue, x.Traceback), rc)...)
	}
	if f.More {
		cs = append(cs, mcp.NewTextContent(fmt.Sprintf("(more output follows: call get_execution with execution_id %q "+
			"and since %d to read it)", x.ID, f.Cursor)))
	}
	if len(outs) == 0 && x.Status.Done() && since == 0 && x.Status != queue.StatusError {
		cs = append(cs, mcp.NewTextContent("(no output)"))
	}

	cs = append(cs, followLink(x)...)

	sc := map[string]any{"execution_id": x.ID, "kernel_id": x.KernelID, "status": x.Status, "cursor": f.Cursor}
	if f.More {
		sc["more_output"] = true
	}
	if x.ExecutionCount > 0 {
		sc["execution_count"] = x.ExecutionCount
	}
	if x.Origin != nil {
		sc["origin"] = x.Origin
	}
	if f.RestoreNotice != "" {
		sc["restore_notice"] = f.RestoreNotice
	}
	if incomplete != "" {
		sc["outputs_incomplete"] = incomplete
		sc["outputs_lost"] = x.OutputsLost
	}
	if x.Status == queue.StatusInputRequired {
		sc["prompt"] = shownPrompt(x.Prompt)
	}
	if x.ErrorName != "" {
		sc["ename"], sc["evalue"] = x.ErrorName, StripANSI(x.ErrorValue)
	}
	return &mcp.CallToolResult{Content: cs, StructuredContent: sc}
}

func hasErrorOutput(outs []queue.Output) bool {
	for _, o := range outs {
		if o.MsgType == "error" {
			return true
		}
	}
	return false
}
