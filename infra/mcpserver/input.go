package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// input() as a multi round-trip request (MCP 2026-07-28, and older clients
// that declared elicitation through mcp-go's bridge): when execute or
// get_execution finds its execution waiting in input(), it returns an
// input_required result asking the prompt (input request InputRequestStdin)
// instead of a reply that says "call send_input". The client asks its user
// and calls the same tool again with the same arguments, the answer and the
// request state; the retry sends the answer to the kernel and follows the
// execution as the first call would have.
//
// Nothing is held in the server between the two calls: the state names the
// execution and the input request (the seq of its ExecutionInputRequested),
// and both are in the event log, so a retry after a server restart still
// lands in the kernel, which is still blocked in input() (ipykernel takes
// an input_reply from whichever client sends one).
//
// Clients that cannot be asked (an older revision without elicitation)
// get the reply they always got: status input_required, the prompt, and
// send_input to answer.

// SensitiveMetaKey marks, in an input request's _meta, a question whose
// answer is a secret (a getpass() prompt): a client should mask it and
// must not show or keep it. The form's field says so in its description
// too, for clients that ignore _meta. NB: JSON Schema's "format" cannot
// carry it: the revision restricts string formats to email, uri, date and
// date-time, and clients validate that.
const SensitiveMetaKey = "io.mcp-jupyter/sensitive"

// stdinField is the one field of the stdin question's form.
const stdinField = "value"

// inputSeq is the input request an execution waits on: the seq of its
// ExecutionInputRequested (LastSeq for a read model restored from a
// snapshot that predates InputSeq, where they are the same event).
func inputSeq(x queue.Execution) uint64 {
	if x.InputSeq != 0 {
		return x.InputSeq
	}
	return x.LastSeq
}

// maxShownPrompt bounds, in bytes, the prompt shown to a user or an agent:
// the kernel's code chose it and may make it as long as it likes.
const maxShownPrompt = 1024

// stdinQuestion is the elicitation that asks an execution's input() prompt.
// NB: the kernel's code chooses the prompt, so the server writes the frame
// around it: the message starts with who asks (code in execution x on
// kernel k, not mcp-jupyter nor the client), the title is fixed, and the
// prompt is only quoted, bounded and cleaned, so that code cannot pass its
// question off as the server's or the client's (say, a getpass() asking
// for the MCP bearer token).
func stdinQuestion(x queue.Execution) mcp.ElicitationParams {
	kind := "input()"
	if x.Password {
		kind = "input() (getpass: the answer is hidden)"
	}
	message := fmt.Sprintf("Code running in execution %s on kernel %s called %s and waits for a line. ", x.ID, x.KernelID, kind)
	if prompt := shownPrompt(x.Prompt); strings.TrimSpace(prompt) == "" {
		message += "It printed no prompt."
	} else {
		message += "Its prompt: \u00ab" + prompt + "\u00bb"
	}
	field := map[string]any{"type": "string", "title": "Input for execution " + x.ID,
		"description": fmt.Sprintf("The line input() returns to the code of execution %s on kernel %s (no newline "+
			"is added). The code wrote the prompt, not mcp-jupyter nor your client.", x.ID, x.KernelID)}
	p := mcp.ElicitationParams{Mode: mcp.ElicitationModeForm, Message: message}
	if x.Password {
		field["title"] = "Hidden input for execution " + x.ID
		field["description"] = fmt.Sprintf("Sensitive: a password prompt (getpass) of the code of execution %s "+
			"on kernel %s; the value goes to that code only and is never shown in outputs nor recorded. The code "+
			"wrote the prompt, not mcp-jupyter nor your client: give it no secret that is not meant for it.", x.ID, x.KernelID)
		p.Meta = &mcp.Meta{AdditionalFields: map[string]any{SensitiveMetaKey: true}}
	}
	p.RequestedSchema = map[string]any{
		"type":       "object",
		"properties": map[string]any{stdinField: field},
		"required":   []string{stdinField},
	}
	return p
}

// shownPrompt is an input() prompt as the server shows it to a user or an
// agent: ANSI escapes removed, line breaks and tabs made spaces, other
// control and format characters (bidi overrides included) dropped, the
// quotes the server frames it with replaced, and the whole cut to
// maxShownPrompt bytes with a note saying how much was left out.
func shownPrompt(prompt string) string {
	prompt = StripANSI(prompt)
	var b strings.Builder
	cut := 0
	for i, r := range prompt {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case r == '\u00ab':
			r = '\u2039'
		case r == '\u00bb':
			r = '\u203a'
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxShownPrompt {
			cut = len(prompt) - i
			break
		}
		b.WriteRune(r)
	}
	if cut > 0 {
		fmt.Fprintf(&b, "\u2026 (prompt cut: %d more bytes not shown)", cut)
	}
	return b.String()
}

// askStdin is the input_required result asking x's prompt. prior is the
// state of the call being answered (empty on a first call): a policy
// confirmation already given for this call stays given.
func (s *Server) askStdin(ctx context.Context, req mcp.CallToolRequest, prior roundTrip, x queue.Execution, since uint64) *mcp.CallToolResult {
	rt := roundTrip{Tool: req.Params.Name, Args: argsDigest(req), Policy: prior.Policy,
		// NB: the handler runs only once the policy let the call through: a
		// state that asked a confirmation was answered yes.
		Approved:  prior.Approved || prior.Policy != "",
		Execution: x.ID, InputSeq: inputSeq(x), Since: since}
	state := s.sealRoundTrip(ctx, rt, time.Now())
	return server.NewInputRequestBuilder(state).Elicit(InputRequestStdin, stdinQuestion(x)).ToolResult()
}

// finishExecutionCall ends execute or get_execution with what follow saw:
// the input_required question when the execution waits in input() and the
// caller can be asked, otherwise the usual reply (note first, when given).
func (s *Server) finishExecutionCall(ctx context.Context, req mcp.CallToolRequest, prior roundTrip, f followed, since uint64, note string) *mcp.CallToolResult {
	if f.Execution.Status == queue.StatusInputRequired && f.Execution.AllowStdin && mayAnswer(ctx) {
		return s.askStdin(ctx, req, prior, f.Execution, since)
	}
	res := s.executionReply(f, since)
	if note != "" {
		res.Content = append([]mcp.Content{mcp.NewTextContent(note)}, res.Content...)
	}
	return s.withAppData(ctx, req, res, f, since)
}

// openExecutionRoundTrip opens the request state of an execute or
// get_execution call. resume is true when the state carries an execution:
// the call is an answer to its input() and must not run anything again.
func (s *Server) openExecutionRoundTrip(ctx context.Context, req mcp.CallToolRequest) (rt roundTrip, resume bool, err error) {
	rt, _, err = s.openRoundTrip(ctx, req, time.Now())
	if err != nil {
		return roundTrip{}, false, err
	}
	return rt, rt.Execution != "", nil
}

// resumeInput answers a retry of execute or get_execution whose state
// carries an execution: it sends the client's answer to the input request
// the state names, if the execution still waits on that very request, and
// follows the execution for up to wait. A newer prompt is asked without
// sending anything; an execution that no longer waits is shown as it is.
func (s *Server) resumeInput(ctx context.Context, req mcp.CallToolRequest, rt roundTrip, wait time.Duration, p *progress) (*mcp.CallToolResult, error) {
	action := req.Params.Name
	id := rt.Execution
	v, err := s.backend.Execution(ctx, id, math.MaxUint64) // its state; outputs come with follow
	if err != nil {
		return failed(action+" "+id, err), nil
	}
	x := v.Execution
	answer := server.ElicitationResponse(req.Params.InputResponses, InputRequestStdin)
	note := ""
	switch {
	case x.Status != queue.StatusInputRequired:
		if answer != nil && answer.Action == mcp.ElicitationResponseActionAccept {
			note = fmt.Sprintf("Execution %s no longer waits for input (status %s): your answer was not sent.", id, x.Status)
		}
	case inputSeq(x) != rt.InputSeq:
		// NB: the answer was typed for an earlier prompt; it must not
		// answer this one.
		if mayAnswer(ctx) {
			return s.askStdin(ctx, req, rt, x, rt.Since), nil
		}
		note = fmt.Sprintf("Execution %s now waits on another prompt (%q): your answer was not sent.", id, shownPrompt(x.Prompt))
	case answer == nil:
		if mayAnswer(ctx) {
			return s.askStdin(ctx, req, rt, x, rt.Since), nil
		}
	case answer.Action == mcp.ElicitationResponseActionAccept:
		value, err := stdinAnswer(answer)
		if err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: %v", action, err)), nil
		}
		if err := s.backend.SendInput(ctx, id, value); err != nil {
			return failed("send input to "+id, err), nil
		}
		note = fmt.Sprintf("Answered prompt %q.", shownPrompt(x.Prompt))
	default: // decline or cancel
		f, err := s.follow(ctx, id, rt.Since, 0, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return failed(action+" "+id, err), nil
		}
		res := s.executionReply(f, rt.Since)
		verb := "declined"
		if answer.Action == mcp.ElicitationResponseActionCancel {
			verb = "cancelled"
		}
		res.Content = append([]mcp.Content{mcp.NewTextContent(fmt.Sprintf("The input request was %s: nothing was "+
			"sent, and execution %s still waits in input() (prompt %q). To answer later, call send_input with "+
			"execution_id %q and the value, or call %s again with the same arguments to be asked again; "+
			"interrupt_kernel on kernel %s stops it.", verb, id, shownPrompt(x.Prompt), id, action, x.KernelID))}, res.Content...)
		return s.withAppData(ctx, req, res, f, rt.Since), nil
	}
	f, err := s.follow(ctx, id, rt.Since, wait, p)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return failed(fmt.Sprintf("read execution %s (it runs on; call get_execution)", id), err), nil
	}
	return s.finishExecutionCall(ctx, req, rt, f, rt.Since, note), nil
}

// stdinAnswer is the line an accepted stdin answer carries.
func stdinAnswer(r *mcp.ElicitationResult) (string, error) {
	// NB: through JSON whatever its Go type (a map from the wire, or the
	// handler's own value in process).
	b, err := json.Marshal(r.Content)
	if err != nil {
		return "", fmt.Errorf("the answer to input request %q cannot be read (%v): answer with an object {%q: \"the line\"}", InputRequestStdin, err, stdinField)
	}
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	switch v := c[stdinField].(type) {
	case string:
		return v, nil
	case nil:
		return "", fmt.Errorf("the answer to input request %q has no field %q: answer with an object {%q: \"the line\"}, "+
			"or call send_input; nothing was sent and the execution still waits", InputRequestStdin, stdinField, stdinField)
	default:
		return "", fmt.Errorf("the answer to input request %q has %q of type %T, not a string: answer with the line as a string; "+
			"nothing was sent and the execution still waits", InputRequestStdin, stdinField, v)
	}
}

// mayAnswer reports whether the caller is asked an input() prompt: its
// client can answer an elicitation, and it holds send_input's scope (a
// reader following an execution with get_execution is shown the prompt,
// not asked a question whose answer would be refused).
func mayAnswer(ctx context.Context) bool {
	if !canAsk(ctx) {
		return false
	}
	p, err := auth.Caller(ctx)
	return err == nil && p.Scopes.Has(ToolScope("send_input"))
}
