package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// checkpointRunner runs checkpoint code as an ordinary execution: queued behind
// the kernel's other work, recorded in the log, finished when both the
// reply and the idle status arrived. It waits on the queue read model's
// Changed signal, never by polling.
type checkpointRunner struct {
	System *system.System
	Queue  *queue.Model // following the log
	Log    interface {
		ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error
	}
}

var _ checkpoint.RestoreRunner = checkpointRunner{}

// Run submits code and returns the stdout of its stream outputs.
func (r checkpointRunner) Run(ctx context.Context, kernelID, code string) (string, error) {
	return r.run(ctx, kernelID, code, false)
}

// RunRestore is Run for the server's restore of a relaunched kernel
// (restore.go): the execution starts at once on the kernel held for its
// restore, ahead of the executions that wait for it.
func (r checkpointRunner) RunRestore(ctx context.Context, kernelID, code string) (string, error) {
	return r.run(ctx, kernelID, code, true)
}

func (r checkpointRunner) run(ctx context.Context, kernelID, code string, restore bool) (string, error) {
	by := events.PrincipalFrom(ctx)
	// NB: the server's own (auto-checkpoints, restores) leave the kernel's
	// execution count alone: an agent sees no In[n] it did not run.
	sx, err := r.System.Submit(ctx, kernelID, scheduler.Submit{Code: code, By: by, SkipHistory: by == "", Restore: restore})
	if err != nil {
		return "", err
	}
	x := queue.Execution{ID: sx.ID}
	for {
		changed := r.Queue.Changed() // NB: taken before reading, so no change is missed
		cur, ok := r.Queue.Get(x.ID)
		if ok && cur.Status.Done() {
			x = cur
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for execution %s: %w (it keeps running in the kernel)", x.ID, ctx.Err())
		}
	}
	var out strings.Builder
	err = r.Log.ReadStream(ctx, events.ExecutionStream(x.ID), 0, func(e events.Event) error {
		p, ok := e.Payload.(events.IOPubMessageReceived)
		if !ok || p.MsgType != "stream" {
			return nil
		}
		var c struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}
		if json.Unmarshal(p.Content, &c) == nil && c.Name == "stdout" {
			out.WriteString(c.Text)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read outputs of execution %s: %w", x.ID, err)
	}
	if x.Status != queue.StatusOK {
		msg := string(x.Status)
		if x.ErrorName != "" {
			msg += ": " + x.ErrorName + ": " + x.ErrorValue
		}
		if x.Reason != "" {
			msg += " (" + x.Reason + ")"
		}
		return out.String(), fmt.Errorf("execution %s ended %s", x.ID, msg)
	}
	return out.String(), nil
}
