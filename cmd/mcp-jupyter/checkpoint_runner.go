package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
	// Held, in a cluster, says whether this node may act for a kernel (nil
	// on a single server): a save runs only while it does, like a save an
	// agent asks for. NB: an auto-checkpoint of a node cut off from the
	// cluster would otherwise queue behind the lost lease and, once the
	// routes are back, overwrite the new owner's newer checkpoint.
	Held func(kernelID string) error
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
	// NB: a checkpoint's code runs only after the execution ahead of it:
	// one waiting in input() ends only when a person answers, so the save
	// or load is refused at once instead of waiting for the actor's
	// timeout. A restore runs on a kernel the server holds: nothing of the
	// agent's runs there yet.
	if !restore {
		if r.Held != nil {
			if err := r.Held(kernelID); err != nil {
				return "", err
			}
		}
		if w, ok := r.waitingForInput(kernelID, ""); ok {
			return "", waitsForInputError(kernelID, code, w, false)
		}
	}
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
		if ok && cur.Status == queue.StatusQueued && !restore {
			// NB: the race: queued behind an execution that then asked for
			// input. Withdrawn, so it does not run later unasked.
			if w, waits := r.waitingForInput(kernelID, x.ID); waits {
				if r.withdraw(kernelID, x.ID, by) {
					return "", waitsForInputError(kernelID, code, w, true)
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if cur, ok := r.Queue.Get(x.ID); ok && cur.Status == queue.StatusQueued && r.withdraw(kernelID, x.ID, by) {
				return "", fmt.Errorf("wait for execution %s: %w (withdrawn from the kernel's queue: it will not run)", x.ID, ctx.Err())
			}
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

// ErrKernelWaitsForInput: a checkpoint's save or load was refused (or
// withdrawn from the queue) because an execution of its kernel waits in
// input(): the checkpoint's code would run only once that is answered.
var ErrKernelWaitsForInput = errors.New("kernel waits for input")

// waitingForInput returns the execution of kernelID, other than self, that
// waits in input(), if one does.
func (r checkpointRunner) waitingForInput(kernelID, self string) (queue.Execution, bool) {
	if x, ok := r.Queue.Active(kernelID); ok && x.ID != self && x.Status == queue.StatusInputRequired {
		return x, true
	}
	// NB: an execution pipelined behind the one that waits is not Active.
	for _, x := range r.Queue.List(kernelID, queue.StatusInputRequired) {
		if x.ID != self {
			return x, true
		}
	}
	return queue.Execution{}, false
}

// withdraw takes the checkpoint's queued execution id out of the kernel's
// queue; false when it has started meanwhile (it then runs to its end).
func (r checkpointRunner) withdraw(kernelID, id, by string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// NB: a pipelined execution (sent to the kernel already) is asked to
	// abort; the kernel answers it "aborted" when it gets to it, without
	// running it.
	_, err := r.System.Cancel(ctx, kernelID, id, by)
	return err == nil
}

// waitsForInputError says which execution waits, for what, and what to do.
func waitsForInputError(kernelID, code string, w queue.Execution, withdrawn bool) error {
	op, tool := "checkpoint", "the checkpoint tool"
	switch checkpoint.CodeCall(code) {
	case "save":
		op, tool = "save", "save_environment"
	case "load", "check", "install":
		op, tool = "load", "load_environment"
	}
	prompt := fmt.Sprintf("%q", w.Prompt)
	if w.Password {
		prompt += " (a password prompt)"
	}
	what := "refused"
	if withdrawn {
		what = "withdrawn from the kernel's queue (it will not run)"
	}
	return fmt.Errorf("%w: the %s was %s: execution %s on kernel %s waits in input() for an answer to the prompt %s, and the %s could only run after it. "+
		"Answer the prompt with send_input (execution_id %q) or through the input request execute/get_execution returns, or stop it with interrupt_kernel; then call %s again",
		ErrKernelWaitsForInput, op, what, w.ID, kernelID, prompt, op, w.ID, tool)
}
