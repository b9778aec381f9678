package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// applyPolicy is the --policy middleware, inside requireScope (a call the
// caller's scopes refuse is refused before any rule is asked). For each
// call it finds the first matching rule and:
//
//   - deny: records PolicyRefused and refuses; nothing runs.
//   - confirm: when the client can be asked (canAsk), records PolicyAsked
//     and returns an input_required result (request InputRequestPolicy, a
//     form with a boolean confirm) whose state seals a fresh nonce; the
//     retry's answer is accepted once: PolicyConfirmed then the call runs,
//     or PolicyDeclined and nothing runs. A client that cannot be asked gets
//     PolicyUnconfirmable and a refusal saying what it lacks.
//   - allow, or no rule: the call runs, nothing is recorded.
//
// Every decision is durable (Options.Decisions) before the call goes on; a
// decision that cannot be recorded refuses the call.
func (s *Server) applyPolicy(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		pol := s.opts.Policy
		if pol == nil {
			return next(ctx, req)
		}
		tool, now := req.Params.Name, time.Now()
		rt, hasState, stateErr := s.openRoundTrip(ctx, req, now)
		// NB: a later round of a call that already ran (its input() prompt)
		// carries its execution and submits nothing again: it was decided
		// when it ran. A state that only says Approved is not enough: it
		// would let a replay run the code again. What it may still do is
		// send an answer to input(): that is a send_input call.
		if hasState && stateErr == nil && rt.Execution != "" {
			return s.policyInputAnswer(ctx, next, req, rt, now)
		}
		p, err := auth.Caller(ctx)
		if err != nil {
			return mcp.NewToolResultError(tool + ": " + err.Error()), nil
		}
		call := s.policyCallOf(ctx, req, p.Name)
		if tool == "run_cell" || tool == "run_all" {
			ctx = context.WithValue(ctx, policyCheckedKey{}, &call)
		}
		rule := pol.match(call)
		if rule == nil || rule.Action == PolicyActionAllow {
			return next(ctx, req)
		}
		d := events.PolicyDecided{Tool: tool, Rule: rule.Name, Action: rule.Action, KernelID: call.Kernel, Reason: rule.Reason}
		if call.HasCode {
			d.CodeSHA256, d.Code = policyCodeSHA(call.Code), policyCodeShown(call.Code, rule)
		}
		because := fmt.Sprintf("rule %q of the server's policy", rule.Name)
		if rule.Reason != "" {
			because += ": " + rule.Reason
		}
		if call.HasCode {
			d.CodeBytes = len(call.Code)
		}
		if rule.Action == PolicyActionDeny {
			d.Decision = events.PolicyRefused
			if err := s.recordPolicy(ctx, p.Name, d); err != nil {
				return mcp.NewToolResultError(fmt.Sprintf("%s: refused by %s. Nothing ran (and the refusal could not be recorded: %v).", tool, because, err)), nil
			}
			return mcp.NewToolResultError(fmt.Sprintf("%s: refused by %s. Nothing ran. "+
				"Do it another way, or ask the server's operator (the policy file is --policy).", tool, because)), nil
		}
		// confirm
		if hasState && stateErr != nil {
			return mcp.NewToolResultError(tool + ": " + stateErr.Error()), nil
		}
		if hasState && rt.Policy != "" {
			if answer := server.ElicitationResponse(req.Params.InputResponses, InputRequestPolicy); answer != nil {
				return s.policyAnswered(ctx, next, req, p.Name, rt, d, answer, because, now)
			}
			// The state came back without an answer: ask again.
		}
		if !canAsk(ctx) {
			d.Decision = events.PolicyUnconfirmable
			recErr := s.recordPolicy(ctx, p.Name, d)
			msg := fmt.Sprintf("%s: needs your user's confirmation under %s, but this client cannot be asked: "+
				"it must declare the elicitation capability (answered through MCP 2026-07-28 input requests, or elicitation/create before it). Nothing ran.", tool, because)
			if recErr != nil {
				msg += fmt.Sprintf(" (The refusal could not be recorded: %v.)", recErr)
			}
			return mcp.NewToolResultError(msg), nil
		}
		d.Decision, d.Request = events.PolicyAsked, policyNonce()
		if err := s.recordPolicy(ctx, p.Name, d); err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: needs confirmation under %s, and the question could not be recorded: %v. Nothing ran; try again.", tool, because, err)), nil
		}
		state := s.sealRoundTripTTL(ctx, roundTrip{Tool: tool, Args: argsDigest(req), Policy: d.Request, PolicyCode: d.CodeSHA256}, now, PolicyAnswerTTL)
		return server.NewInputRequestBuilder(state).Elicit(InputRequestPolicy, policyQuestion(call, rule, because)).ToolResult(), nil
	}
}

// policyAnswered handles the retry that carries the user's answer to a
// confirmation: once per nonce; confirmed runs the call, anything else
// does not.
func (s *Server) policyAnswered(ctx context.Context, next server.ToolHandlerFunc, req mcp.CallToolRequest, principal string,
	rt roundTrip, d events.PolicyDecided, answer *mcp.ElicitationResult, because string, now time.Time) (*mcp.CallToolResult, error) {
	tool, pol := req.Params.Name, s.opts.Policy
	if rt.PolicyCode != d.CodeSHA256 {
		return mcp.NewToolResultError(tool + ": the code changed since the confirmation was asked (the cell was edited): " +
			"nothing ran. Call again without inputResponses and requestState to be asked about the code as it is now."), nil
	}
	if err := pol.claimAnswer(principal, rt.Policy, time.Unix(rt.Sealed, 0), time.Unix(rt.Expires, 0), now); err != nil {
		return mcp.NewToolResultError(tool + ": " + err.Error()), nil
	}
	d.Request = rt.Policy
	d.Decision = events.PolicyDeclined
	if policyConfirmed(answer) {
		d.Decision = events.PolicyConfirmed
	}
	if err := s.recordPolicy(ctx, principal, d); err != nil {
		pol.releaseAnswer(rt.Policy)
		return mcp.NewToolResultError(fmt.Sprintf("%s: the answer could not be recorded: %v. Nothing ran; answer again.", tool, err)), nil
	}
	if d.Decision != events.PolicyConfirmed {
		return mcp.NewToolResultError(fmt.Sprintf("%s: not confirmed (the user %s) under %s. Nothing ran. "+
			"Call again to be asked again, or do it another way.", tool, policyAnswerWord(answer), because)), nil
	}
	// The call runs with a state that says it was approved: a later round
	// trip of its own (an input() prompt) keeps Approved and is not asked
	// again. The policy's answer is not passed on.
	inner := req
	inner.Params.RequestState = s.sealRoundTrip(ctx, roundTrip{Tool: tool, Args: rt.Args, Policy: rt.Policy, Approved: true}, now)
	inner.Params.InputResponses = nil
	if rest := maps.Clone(req.Params.InputResponses); len(rest) > 1 {
		delete(rest, InputRequestPolicy)
		inner.Params.InputResponses = rest
	}
	return next(ctx, inner)
}

func policyConfirmed(a *mcp.ElicitationResult) bool {
	if a.Action != mcp.ElicitationResponseActionAccept {
		return false
	}
	content, ok := a.Content.(map[string]any)
	if !ok {
		return false
	}
	v, ok := content["confirm"].(bool)
	return ok && v
}

func policyAnswerWord(a *mcp.ElicitationResult) string {
	switch a.Action {
	case mcp.ElicitationResponseActionAccept:
		return "did not tick confirm"
	case mcp.ElicitationResponseActionDecline:
		return "declined"
	}
	return "cancelled"
}

// policyQuestion is the form a confirmation asks: the tool, the kernel,
// the rule's reason and the code's lines the rule matched.
func policyQuestion(c policyCall, r *policyRule, because string) mcp.ElicitationParams {
	var b strings.Builder
	fmt.Fprintf(&b, "Allow %s", c.Tool)
	if c.Kernel != "" {
		fmt.Fprintf(&b, " on kernel %s", c.Kernel)
	}
	fmt.Fprintf(&b, "? It needs your confirmation under %s.", because)
	if c.HasCode {
		fmt.Fprintf(&b, "\nCode %s", policyCodeShown(c.Code, r))
	}
	return mcp.ElicitationParams{
		Message: b.String(),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"confirm": map[string]any{
					"type":        "boolean",
					"title":       "Allow " + c.Tool,
					"description": "true runs the call; false or declining runs nothing",
					"default":     false,
				},
			},
			"required": []string{"confirm"},
		},
	}
}

// recordPolicy records d durably; without a recorder nothing can be
// recorded, and the call is refused (fail closed).
func (s *Server) recordPolicy(ctx context.Context, principal string, d events.PolicyDecided) error {
	if s.opts.Decisions == nil {
		return errors.New("no recorder configured (Options.Decisions)")
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	defer cancel()
	return s.opts.Decisions.RecordPolicy(rctx, principal, d)
}

// policyCallOf is what the rules see of a call: the tool, the caller, the
// kernel and the code it carries (policyCodeTools).
func (s *Server) policyCallOf(ctx context.Context, req mcp.CallToolRequest, principal string) policyCall {
	c := policyCall{Tool: req.Params.Name, Principal: principal}
	a := newArgs(req)
	str := func(name string) (string, bool) {
		v, ok := a.m[name].(string)
		return v, ok
	}
	switch c.Tool {
	case "execute":
		c.Code, c.HasCode = str("code")
	case "insert_cell", "edit_cell":
		c.Code, c.HasCode = str("source")
	case "run_cell", "run_all":
		if s.notebooks == nil {
			break
		}
		nbPath, _ := str("path")
		cell := ""
		if c.Tool == "run_cell" {
			// NB: read as the handler reads it: an index may come as a
			// number (cell: 0), which must find the same cell.
			if cell = a.cell("cell", cellHelp); cell == "" {
				break
			}
		}
		if runs, err := s.notebooks.CellsToRun(ctx, nbPath, cell); err == nil && len(runs) > 0 {
			c.Code, c.HasCode, c.Kernel = policyCellsCode(runs), true, runs[0].KernelID
		}
	}
	if c.Kernel == "" {
		ref, ok := str("kernel")
		if !ok {
			ref, ok = str("kernel_id")
		}
		if ok && ref != "" {
			c.Kernel = ref
			if id, err := s.backend.ResolveKernel(ctx, ref); err == nil {
				c.Kernel = id
			}
		}
	}
	return c
}

func policyCellsCode(runs []CellRun) string {
	srcs := make([]string, len(runs))
	for i, r := range runs {
		srcs[i] = r.Source
	}
	return strings.Join(srcs, "\n\n")
}

// policyCheckedKey carries, in a run_cell/run_all handler's context, the
// code the policy decided on (*policyCall).
type policyCheckedKey struct{}

// policyNotebooks is the notebook backend run_cell and run_all read their
// cells through when a policy is set: the cells they run must be the ones
// the policy checked, or an edit between the check and the run would slip
// code past a deny rule.
type policyNotebooks struct{ NotebookBackend }

func (n policyNotebooks) CellsToRun(ctx context.Context, nbPath, cell string) ([]CellRun, error) {
	runs, err := n.NotebookBackend.CellsToRun(ctx, nbPath, cell)
	if err != nil {
		return nil, err
	}
	if c, ok := ctx.Value(policyCheckedKey{}).(*policyCall); ok {
		if !c.HasCode || policyCellsCode(runs) != c.Code {
			return nil, errors.New("the notebook's cells changed while the server's policy checked this call: nothing ran; call again")
		}
	}
	return runs, nil
}

// policyNotebookBackend records b for the policy's reads and returns what
// the notebook tools should read through.
func (s *Server) policyNotebookBackend(b NotebookBackend) NotebookBackend {
	s.notebooks = b
	if s.opts.Policy == nil {
		return b
	}
	return policyNotebooks{b}
}

// policyInputAnswer applies the policy to a retry of execute or
// get_execution that answers its execution's input() prompt (a state
// carrying the execution, an accepted InputRequestStdin answer): sending
// that answer is a send_input call, and the rules on send_input decide it
// as they would send_input itself. deny: refused, nothing sent. confirm:
// the confirmation is asked together with the prompt again (the answer
// given is not kept between the rounds: it may be a password), and the
// retry that confirms sends the answer given with it, once. A retry that
// sends nothing (no answer, declined, another prompt, no longer waiting)
// goes on unchecked.
func (s *Server) policyInputAnswer(ctx context.Context, next server.ToolHandlerFunc, req mcp.CallToolRequest, rt roundTrip, now time.Time) (*mcp.CallToolResult, error) {
	tool, pol := req.Params.Name, s.opts.Policy
	answer := server.ElicitationResponse(req.Params.InputResponses, InputRequestStdin)
	if answer == nil || answer.Action != mcp.ElicitationResponseActionAccept {
		return next(ctx, req)
	}
	v, err := s.backend.Execution(ctx, rt.Execution, math.MaxUint64)
	if err != nil {
		return next(ctx, req) // the handler reports it; nothing is sent
	}
	x := v.Execution
	if x.Status != queue.StatusInputRequired || inputSeq(x) != rt.InputSeq {
		return next(ctx, req) // the handler sends nothing to another prompt
	}
	p, err := auth.Caller(ctx)
	if err != nil {
		return mcp.NewToolResultError(tool + ": " + err.Error()), nil
	}
	call := policyCall{Tool: "send_input", Principal: p.Name, Kernel: x.KernelID}
	rule := pol.match(call)
	if rule == nil || rule.Action == PolicyActionAllow {
		return next(ctx, req)
	}
	d := events.PolicyDecided{Tool: call.Tool, Rule: rule.Name, Action: rule.Action, KernelID: call.Kernel, Reason: rule.Reason}
	because := fmt.Sprintf("rule %q of the server's policy", rule.Name)
	if rule.Reason != "" {
		because += ": " + rule.Reason
	}
	stillWaits := fmt.Sprintf(" Execution %s still waits in input() (prompt %q); interrupt_kernel on kernel %s stops it.", x.ID, x.Prompt, x.KernelID)
	if rule.Action == PolicyActionDeny {
		d.Decision = events.PolicyRefused
		msg := fmt.Sprintf("%s: answering the input() prompt is a send_input call, refused by %s. Nothing was sent.", tool, because) + stillWaits
		if err := s.recordPolicy(ctx, p.Name, d); err != nil {
			msg += fmt.Sprintf(" (The refusal could not be recorded: %v.)", err)
		}
		return mcp.NewToolResultError(msg), nil
	}
	// confirm
	if rt.InputPolicy != "" {
		if confirm := server.ElicitationResponse(req.Params.InputResponses, InputRequestPolicy); confirm != nil {
			if err := pol.claimAnswer(p.Name, rt.InputPolicy, time.Unix(rt.Sealed, 0), time.Unix(rt.Expires, 0), now); err != nil {
				return mcp.NewToolResultError(tool + ": " + err.Error()), nil
			}
			d.Request, d.Decision = rt.InputPolicy, events.PolicyDeclined
			if policyConfirmed(confirm) {
				d.Decision = events.PolicyConfirmed
			}
			if err := s.recordPolicy(ctx, p.Name, d); err != nil {
				pol.releaseAnswer(rt.InputPolicy)
				return mcp.NewToolResultError(fmt.Sprintf("%s: the answer could not be recorded: %v. Nothing was sent; answer again.", tool, err)), nil
			}
			if d.Decision != events.PolicyConfirmed {
				return mcp.NewToolResultError(fmt.Sprintf("%s: sending your answer to input() was not confirmed (the user %s) under %s. Nothing was sent.",
					tool, policyAnswerWord(confirm), because) + stillWaits + " Call again to be asked again."), nil
			}
			inner := req
			inner.Params.InputResponses = maps.Clone(req.Params.InputResponses)
			delete(inner.Params.InputResponses, InputRequestPolicy)
			return next(ctx, inner)
		}
	}
	if !canAsk(ctx) {
		d.Decision = events.PolicyUnconfirmable
		msg := fmt.Sprintf("%s: answering the input() prompt is a send_input call, which needs your user's confirmation under %s, "+
			"but this client cannot be asked. Nothing was sent.", tool, because) + stillWaits
		if err := s.recordPolicy(ctx, p.Name, d); err != nil {
			msg += fmt.Sprintf(" (The refusal could not be recorded: %v.)", err)
		}
		return mcp.NewToolResultError(msg), nil
	}
	d.Decision, d.Request = events.PolicyAsked, policyNonce()
	if err := s.recordPolicy(ctx, p.Name, d); err != nil {
		return mcp.NewToolResultError(fmt.Sprintf("%s: sending your answer to input() needs confirmation under %s, and the question could not be recorded: %v. Nothing was sent; try again.", tool, because, err)), nil
	}
	next2 := rt
	next2.InputPolicy = d.Request
	state := s.sealRoundTripTTL(ctx, next2, now, PolicyAnswerTTL)
	q := policyQuestion(call, rule, because)
	q.Message += fmt.Sprintf("\nIt sends your answer to the prompt %q of execution %s (asked again with this question).", x.Prompt, x.ID)
	return server.NewInputRequestBuilder(state).
		Elicit(InputRequestPolicy, q).
		Elicit(InputRequestStdin, stdinQuestion(x)).
		ToolResult(), nil
}
