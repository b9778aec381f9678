package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Retention (docs/operations.md, "Bounded disk"): the core runner truncates
// the log after each periodic snapshot, keeping the newest --retain-events
// events and everything a reader still needs. Every reader of the log that
// is not one of the core runner's projections registers in core.floors:
//
//	floors (cursors: events from here on)     keepers (streams kept whole)
//	  the live runner's snapshots               queue: unfinished executions
//	  the NATS publisher's saved cursor         kernels: live kernels' lifecycle
//	  WebSocket clients catching up             checkpoint/* and notebook/*
//	  the event lines follower                  asset/* after the lease actor's snapshot
//
// NB: a new reader of the log (an actor recovering from a stream, a
// follower) must be added here, or retention deletes what it needs. The
// console's past (console_then.go) is not: its reads are short, each on a
// point-in-time view that checks the retained range first, and what is
// gone answers 410 naming the setting.

// retentionSetting is how the setting is named to users.
const retentionSetting = "--retain-events / MCP_RETAIN_EVENTS"

// retentionHint names the setting in every TruncatedError the server gives.
func retentionHint(cfg config) string {
	if cfg.RetainEvents == 0 {
		return "the log was truncated by an earlier run (" + retentionSetting + ")"
	}
	return fmt.Sprintf("the server keeps the last %d events (%s)", cfg.RetainEvents, retentionSetting)
}

// keepSmallStreams keeps, whole, the streams of actors that fold their
// stream from its start and have no snapshot yet: checkpoints (one event
// per save, load or delete) and notebooks (one per change made through the
// server). NB: they grow with use, slowly; snapshotting those actors would
// let them go.
func keepSmallStreams(e events.Event) bool {
	return strings.HasPrefix(e.Stream, "checkpoint/") || strings.HasPrefix(e.Stream, "notebook/")
}

// cursorFloor is a follower's position as a retention floor; once the
// follower stopped it holds nothing.
type cursorFloor struct {
	seq     atomic.Uint64
	stopped atomic.Bool
}

func (c *cursorFloor) LogFloor() (uint64, bool) {
	if c.stopped.Load() {
		return 0, false
	}
	return c.seq.Load() + 1, true
}

// registerFloors registers every reader outside the core runner and lets
// retention run. open calls it once all of them exist.
func (c *core) registerFloors() {
	f := c.floors
	f.AddKeeper("queue: unfinished executions", c.queue)
	f.AddKeeper("kernels: kernels not shut down", c.kernels)
	f.AddKeeper("checkpoint and notebook streams", projections.KeepFunc(keepSmallStreams))
	f.AddKeeper("policy answers of the last minutes (replay protection)", keepRecentPolicyDecisions())
	f.AddKeeper("lease actor: asset streams after its snapshot", &snapshotTail{log: c.log, snapshot: lease.SnapshotName, prefix: "asset/"})
	if c.live != nil {
		f.AddFloor("leases and backlog snapshots", c.live.runner)
		f.AddFloor("websocket clients", c.live.hub)
	}
	if c.pub != nil {
		f.AddFloor("nats publisher cursor", c.pub)
	}
	if c.history != nil {
		f.AddFloor("cluster history publisher cursor", c.history)
	}
	f.AddFloor("event lines", &c.lines)
	f.Enable()
}

// snapshotTail keeps the events of an actor's streams (by prefix) after the
// actor's stored snapshot: the actor recovers from that snapshot and the
// events after it. The snapshot's seq is re-read at most once a second; a
// stale (lower) value keeps more, never less.
type snapshotTail struct {
	log      *eventlog.Log
	snapshot string
	prefix   string

	mu      sync.Mutex
	seq     uint64
	checked time.Time
}

func (k *snapshotTail) Keep(e events.Event) bool {
	if !strings.HasPrefix(e.Stream, k.prefix) {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) > time.Second {
		if seq, _, ok, err := k.log.LoadSnapshot(k.snapshot); err == nil {
			k.checked = now
			if ok {
				k.seq = seq
			}
		}
	}
	return e.Seq > k.seq
}

// truncatedExecution explains an execution the log has no (complete) record
// of: when it is older than the retained log, the error names the setting
// and wraps eventlog.ErrTruncated; otherwise it returns nil (the id is just
// unknown). partial says its stream still had events (its start is gone).
func truncatedExecution(l *eventlog.Log, id string, partial bool) error {
	var te *eventlog.TruncatedError
	if !errors.As(l.Truncated(1), &te) {
		return nil // nothing was ever truncated
	}
	why := "its stream's start is gone"
	if !partial {
		born, ok := events.IDTime(id)
		if !ok {
			return nil
		}
		e, err := l.Get(te.First)
		if err != nil || !born.Before(e.Time) {
			return nil
		}
		why = fmt.Sprintf("its id dates from %s, before the first retained event (%s)", born.Format(time.RFC3339), e.Time.Format(time.RFC3339))
	}
	return fmt.Errorf("execution %s is older than the retained event log, which starts at event %d (%s): %s; "+
		"its record and outputs are gone (list_executions shows the executions still known); raise the setting to keep more: %w",
		id, te.First, why, te.Hint, eventlog.ErrTruncated)
}
