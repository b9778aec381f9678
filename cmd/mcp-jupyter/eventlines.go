package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// eventLevel is the log level of the events worth a line; others get none
// (IOPub traffic above all: the log holds it, the operator's log does not).
var eventLevel = map[string]slog.Level{
	events.TypeKernelStarted: slog.LevelInfo, events.TypeKernelStartFailed: slog.LevelWarn,
	events.TypeKernelRestarted: slog.LevelInfo, events.TypeKernelShutDown: slog.LevelInfo,
	events.TypeKernelDied: slog.LevelWarn, events.TypeKernelReattached: slog.LevelInfo, events.TypeKernelLost: slog.LevelWarn,
	events.TypeKernelInterrupted: slog.LevelInfo, events.TypeIOPubGapRecorded: slog.LevelWarn,
	events.TypeExecutionQueued: slog.LevelDebug, events.TypeExecutionStarted: slog.LevelDebug,
	events.TypeExecutionFinished: slog.LevelInfo, events.TypeExecutionInterrupted: slog.LevelInfo,
	events.TypeExecutionCancelled: slog.LevelInfo, events.TypeExecutionLost: slog.LevelWarn, events.TypeExecutionOutputLost: slog.LevelWarn,
	events.TypeCheckpointSaved: slog.LevelInfo, events.TypeCheckpointLoaded: slog.LevelInfo,
	events.TypeCheckpointRejected: slog.LevelWarn, events.TypeCheckpointDeleted: slog.LevelInfo,
	events.TypeAssetCollected: slog.LevelDebug, events.TypeLeaseExpired: slog.LevelDebug,
	events.TypeKernelShared:  slog.LevelInfo,
	events.TypePolicyDecided: slog.LevelInfo,
}

// maxPayloadInLog bounds the payload bytes copied into one log line.
const maxPayloadInLog = 512

// eventComponent names the component an event belongs to in the logs.
func eventComponent(typ string) string {
	switch {
	case strings.HasPrefix(typ, "Execution"):
		return "scheduler"
	case strings.HasPrefix(typ, "Checkpoint"):
		return "checkpointing"
	case strings.HasPrefix(typ, "Asset"), strings.HasPrefix(typ, "Lease"):
		return "assets"
	case strings.HasPrefix(typ, "Policy"):
		return "policy"
	}
	return "kernel"
}

// logEvents writes one structured line per notable durable event after
// `after`, with its component, kernel_id and execution_id, until ctx ends.
// It starts where the read models' replay ended, never from 0 (a restart
// does not log history again), and keeps its position in cursor, a
// retention floor.
// Logs derive from the event log, as metrics do: the actors stay free of
// logging calls and a line is written only for what is durable.
func logEvents(ctx context.Context, l *eventlog.Log, after uint64, cursor *atomic.Uint64, logger *slog.Logger) error {
	err := l.FollowRaw(ctx, after, func(e events.Event) error {
		cursor.Store(e.Seq)
		if e.Node != l.Node() {
			return nil // NB: imported from another node of a cluster: that node logs it
		}
		level, ok := eventLevel[e.Type]
		if !ok || !logger.Enabled(ctx, level) {
			return nil
		}
		attrs := []slog.Attr{slog.String("component", eventComponent(e.Type)), slog.Uint64("seq", e.Seq)}
		if e.Kernel != "" {
			attrs = append(attrs, slog.String("kernel_id", e.Kernel))
		}
		if e.Principal != "" {
			attrs = append(attrs, slog.String("principal", e.Principal))
		}
		switch events.StreamKind(e.Stream) {
		case "execution":
			attrs = append(attrs, slog.String("execution_id", events.StreamID(e.Stream)))
		case "checkpoint":
			attrs = append(attrs, slog.String("checkpoint", events.StreamID(e.Stream)))
		}
		if e.Type == events.TypePolicyDecided && level >= slog.LevelInfo {
			attrs = append(attrs, policyLineAttrs(e)...)
		} else if level >= slog.LevelInfo {
			raw := e.Raw
			if len(raw) > maxPayloadInLog {
				raw = raw[:maxPayloadInLog] // NB: tracebacks and stderr tails can be long
			}
			attrs = append(attrs, slog.String("payload", string(raw)))
		}
		logger.LogAttrs(ctx, level, e.Type, attrs...)
		return nil
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, eventlog.ErrClosed) {
		return nil
	}
	return err
}

// policyLineAttrs is what a PolicyDecided line says: the decision and the
// code's SHA-256 and size, never the code (the agent's code may carry
// secrets; the log keeps its head for whoever replays it, the operator's
// log does not, as ExecutionQueued stays at Debug).
func policyLineAttrs(e events.Event) []slog.Attr {
	var d events.PolicyDecided
	if err := json.Unmarshal(e.Raw, &d); err != nil {
		return []slog.Attr{slog.String("payload_error", err.Error())}
	}
	attrs := []slog.Attr{slog.String("tool", d.Tool), slog.String("rule", d.Rule), slog.String("action", d.Action),
		slog.String("decision", d.Decision)}
	if d.CodeSHA256 != "" {
		attrs = append(attrs, slog.String("code_sha256", d.CodeSHA256), slog.Int("code_bytes", d.CodeBytes))
	}
	if d.Request != "" {
		attrs = append(attrs, slog.String("request", d.Request))
	}
	return attrs
}
