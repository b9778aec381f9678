package mcpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

const shutdownPolicy = `
rules:
  - {name: ask-shutdown, tools: shutdown_kernel, action: confirm, reason: others use it}
`

// askedState is the request state the policy's ask seals for a
// shutdown_kernel call of the caller in ctx, at sealedAt.
func askedState(s *Server, ctx context.Context, req mcp.CallToolRequest, sealedAt time.Time) (state, nonce string) {
	nonce = policyNonce()
	return s.sealRoundTripTTL(ctx, roundTrip{Tool: req.Params.Name, Args: argsDigest(req), Policy: nonce}, sealedAt, PolicyAnswerTTL), nonce
}

// answered is req retried with state and the user's answer.
func answered(req mcp.CallToolRequest, state string, confirm bool) mcp.CallToolRequest {
	action := mcp.ElicitationResponseActionAccept
	if !confirm {
		action = mcp.ElicitationResponseActionDecline
	}
	req.Params.RequestState = state
	req.Params.InputResponses = mcp.InputResponses{InputRequestPolicy: mcp.NewElicitationInputResponse(mcp.ElicitationResult{
		ElicitationResponse: mcp.ElicitationResponse{Action: action, Content: map[string]any{"confirm": confirm}}})}
	return req
}

func principalCtx(name string) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{Name: name, Scopes: auth.DefaultScopes})
}

// TestPolicyAnswersBoundedPerPrincipal: alice asking and declining in a
// loop fills her own bound only: her next answer is refused, bob's
// confirmation still runs.
func TestPolicyAnswersBoundedPerPrincipal(t *testing.T) {
	s, h, runs := policyServer(t, shutdownPolicy, &recorded{})
	s.opts.Policy.answers.maxPer = 5
	s.opts.Policy.answers.maxTotal = 8 // NB: more than one principal's bound, less than two
	alice, bob := principalCtx("alice"), principalCtx("bob")
	req := toolCall("shutdown_kernel", map[string]any{"kernel": "k1"})
	for i := 0; i < 5; i++ {
		state, _ := askedState(s, alice, req, time.Now())
		res, _ := h(alice, answered(req, state, false))
		if !res.IsError || !strings.Contains(textOf(res), "not confirmed") {
			t.Fatalf("alice's decline %d: %s", i, textOf(res))
		}
	}
	state, _ := askedState(s, alice, req, time.Now())
	res, _ := h(alice, answered(req, state, false))
	if !res.IsError || !strings.Contains(textOf(res), "you answered too many confirmations") {
		t.Fatalf("alice beyond her bound: %s", textOf(res))
	}
	state, _ = askedState(s, bob, req, time.Now())
	res, _ = h(bob, answered(req, state, true))
	if res.IsError || *runs != 1 {
		t.Fatalf("bob's confirmation while alice is at her bound: %s (runs %d)", textOf(res), *runs)
	}
}

// TestPolicyConfirmationStateIsShortLived: the ask's state is accepted for
// PolicyAnswerTTL only, and a state the ask did not seal (the day-long one
// a confirmed call carries on, here replayed once its nonce has left the
// answered set) never counts as an answer.
func TestPolicyConfirmationStateIsShortLived(t *testing.T) {
	s, h, runs := policyServer(t, shutdownPolicy, &recorded{})
	alice := principalCtx("alice")
	req := toolCall("shutdown_kernel", map[string]any{"kernel": "k1"})
	old, _ := askedState(s, alice, req, time.Now().Add(-PolicyAnswerTTL-time.Minute))
	if res, _ := h(alice, answered(req, old, true)); !res.IsError || !strings.Contains(textOf(res), "expired") || *runs != 0 {
		t.Fatalf("an answer after %s: %s (runs %d)", PolicyAnswerTTL, textOf(res), *runs)
	}
	// The state a confirmed call runs with (policyAnswered's reseal), its
	// nonce no longer remembered (a fresh server, or expired from the set).
	approved := s.sealRoundTrip(alice, roundTrip{Tool: req.Params.Name, Args: argsDigest(req), Policy: policyNonce(), Approved: true}, time.Now().Add(-time.Hour))
	if res, _ := h(alice, answered(req, approved, true)); !res.IsError || !strings.Contains(textOf(res), "does not carry an open confirmation") || *runs != 0 {
		t.Fatalf("the approved state replayed as an answer: %s (runs %d)", textOf(res), *runs)
	}
	fresh, _ := askedState(s, alice, req, time.Now())
	if res, _ := h(alice, answered(req, fresh, true)); res.IsError || *runs != 1 {
		t.Fatalf("a fresh confirmation: %s (runs %d)", textOf(res), *runs)
	}
}

// TestPolicyRememberedAnswersNeverDroppedSilently: at start the answers
// are read back oldest first; with a small bound, an expired one is
// skipped and the newest do not fit: their states (and every state of
// that principal sealed before the restart) are refused on replay, while
// a new question is answered as usual and another principal is untouched.
func TestPolicyRememberedAnswersNeverDroppedSilently(t *testing.T) {
	s, h, runs := policyServer(t, shutdownPolicy, &recorded{})
	pol := s.opts.Policy
	pol.answers.maxPer = 2
	alice, bob := principalCtx("alice"), principalCtx("bob")
	req := toolCall("shutdown_kernel", map[string]any{"kernel": "k1"})
	now := time.Now()
	var states []string
	for _, ago := range []time.Duration{20 * time.Minute, 10 * time.Minute, 5 * time.Minute, time.Minute} {
		state, nonce := askedState(s, alice, req, now.Add(-ago))
		states = append(states, state)
		pol.RememberAnswered("alice", nonce, now.Add(-ago+30*time.Second), now) // the log, oldest first
	}
	if n := len(pol.answers.byNonce); n > 2 {
		t.Fatalf("the set holds %d after the read back, bound 2", n)
	}
	// NB: room again for alice (as when her oldest answers expire): the
	// bound no longer refuses, only what the read back kept does.
	pol.answers.maxPer = 3
	for i, state := range states[1:] {
		if res, _ := h(alice, answered(req, state, true)); !res.IsError || *runs != 0 {
			t.Fatalf("answer %d replayed after the restart: %s (runs %d)", i+1, textOf(res), *runs)
		}
	}
	bobState, _ := askedState(s, bob, req, now.Add(-time.Minute))
	if res, _ := h(bob, answered(req, bobState, true)); res.IsError || *runs != 1 {
		t.Fatalf("bob's open question after alice's overflow: %s (runs %d)", textOf(res), *runs)
	}
	fresh, _ := askedState(s, alice, req, now.Add(2*time.Second))
	if res, _ := h(alice, answered(req, fresh, true)); res.IsError || *runs != 2 {
		t.Fatalf("alice's question asked after the restart: %s (runs %d)", textOf(res), *runs)
	}
}
