package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// policyRecorder records --policy decisions as PolicyDecided events on the
// caller's policy/<principal> stream (with the kernel, so that NATS
// subjects and `events tail --kernel` find them), durable before the call
// goes on.
type policyRecorder struct{ log *eventlog.Log }

func (r policyRecorder) RecordPolicy(ctx context.Context, principal string, d events.PolicyDecided) error {
	_, err := r.log.Append(ctx, events.Draft{Stream: events.PolicyStream(principal), Kernel: d.KernelID, Principal: principal, Payload: d})
	if err != nil {
		return fmt.Errorf("append %s: %w", events.PolicyStream(principal), err)
	}
	return nil
}

// policyAnswerWindow is how long an answered confirmation must be
// remembered (its request state is accepted for mcpserver.PolicyAnswerTTL):
// the confirmed and declined decisions younger than this are read back at
// start, so an answer is not accepted again after a restart, and retention
// keeps them (and nothing else of the policy streams) beyond its usual
// bound.
const policyAnswerWindow = mcpserver.PolicyAnswerTTL + 15*time.Minute // NB: slack for clocks

// loadPolicy reads --policy (nil without one) before anything starts: a
// bad file stops the server with its line and what to fix.
func loadPolicy(cfg config, logger *slog.Logger) (*mcpserver.Policy, error) {
	if cfg.Policy == "" {
		return nil, nil
	}
	p, err := mcpserver.LoadPolicy(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("--policy / MCP_POLICY: %w", err)
	}
	logger.Info("approval policy loaded", "component", "mcp", "file", cfg.Policy, "rules", p.Rules())
	return p, nil
}

// rememberPolicyAnswers reads the confirmations answered in the last
// window back from the log into p (replay protection across restarts).
// Answers whose state expired are skipped; one that does not fit p's
// bounds makes p refuse every state sealed before now (RememberAnswered).
func rememberPolicyAnswers(ctx context.Context, l *eventlog.Log, p *mcpserver.Policy) error {
	if p == nil {
		return nil
	}
	now := time.Now()
	since := now.Add(-policyAnswerWindow)
	return l.ReadStreams(ctx, "policy/", 0, func(e events.Event) error {
		if e.Time.Before(since) {
			return nil
		}
		d, ok := e.Payload.(events.PolicyDecided)
		if ok && policyAnswerDecision(d.Decision) {
			p.RememberAnswered(e.Principal, d.Request, e.Time, now)
		}
		return nil
	})
}

// policyAnswerDecision reports whether a decision answered a confirmation
// (what replay protection remembers).
func policyAnswerDecision(decision string) bool {
	return decision == events.PolicyConfirmed || decision == events.PolicyDeclined
}

// keepRecentPolicyDecisions is the retention keeper of the decisions the
// replay protection reads back at start: the answers (confirmed,
// declined) of the last window. Other decisions follow the usual
// retention.
func keepRecentPolicyDecisions() projections.Keeper {
	return projections.KeepFunc(func(e events.Event) bool {
		if !strings.HasPrefix(e.Stream, "policy/") || e.Type != events.TypePolicyDecided || time.Since(e.Time) >= policyAnswerWindow {
			return false
		}
		if d, ok := e.Payload.(events.PolicyDecided); ok {
			return policyAnswerDecision(d.Decision)
		}
		var d struct {
			Decision string `json:"decision"`
		}
		// NB: an undecodable record is kept (fail closed: it may be an answer).
		if err := json.Unmarshal(e.Raw, &d); err != nil {
			return true
		}
		return policyAnswerDecision(d.Decision)
	})
}
