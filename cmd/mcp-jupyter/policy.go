package main

import (
	"context"
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

// policyAnswerWindow is how long a confirmation's request state is
// accepted (the request-state TTL): answered requests younger than this
// are read back at start, so an answer is not accepted again after a
// restart, and retention keeps them.
const policyAnswerWindow = 24*time.Hour + time.Hour // NB: an hour of slack for clocks

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
func rememberPolicyAnswers(ctx context.Context, l *eventlog.Log, p *mcpserver.Policy) error {
	if p == nil {
		return nil
	}
	since := time.Now().Add(-policyAnswerWindow)
	return l.ReadStreams(ctx, "policy/", 0, func(e events.Event) error {
		d, ok := e.Payload.(events.PolicyDecided)
		if !ok || e.Time.Before(since) {
			return nil
		}
		if d.Decision == events.PolicyConfirmed || d.Decision == events.PolicyDeclined {
			p.RememberAnswered(d.Request, e.Time)
		}
		return nil
	})
}

// keepRecentPolicyDecisions is the retention keeper of the decisions the
// replay protection reads back at start.
func keepRecentPolicyDecisions() projections.Keeper {
	return projections.KeepFunc(func(e events.Event) bool {
		return strings.HasPrefix(e.Stream, "policy/") && time.Since(e.Time) < policyAnswerWindow
	})
}
