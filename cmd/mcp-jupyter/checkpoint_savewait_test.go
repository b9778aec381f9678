package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// promptly is how soon a save or load on a kernel waiting in input() must
// be refused: the checkpoint actor's own timeout is 30 minutes.
const promptly = 10 * time.Second

// checkpointExecutions returns kernel k's executions of the checkpoint
// actor's call fn ("save", "load") in status st ("" for any).
func checkpointExecutions(c *core, k, fn string, st queue.Status) []queue.Execution {
	var out []queue.Execution
	for _, x := range c.queue.List(k, st) {
		if checkpoint.CodeCall(x.Code) == fn {
			out = append(out, x)
		}
	}
	return out
}

// askInput starts code on k that waits in input(prompt) and returns its
// execution id once it reports input_required.
func askInput(t *testing.T, cl *client.Client, k, prompt string) string {
	t.Helper()
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "answer = input('" + prompt + "')", "allow_stdin": true, "timeout_s": 20})
	if sc["status"] != "input_required" {
		t.Fatalf("want input_required: %v\n%s", sc, text)
	}
	return sc["execution_id"].(string)
}

// answerInput answers execution id and waits for it to end ok.
func answerInput(t *testing.T, cl *client.Client, id, value string) {
	t.Helper()
	if _, text := callTool(t, cl, "send_input", map[string]any{"execution_id": id, "value": value}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("send_input: %s", text)
	}
	if sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 20}); sc["status"] != "ok" {
		t.Fatalf("after send_input: %v\n%s", sc, text)
	}
}

// wantWaitsForInput checks a refusal names the execution, its prompt and
// what to do.
func wantWaitsForInput(t *testing.T, what, text, execID, prompt, tool string) {
	t.Helper()
	for _, want := range []string{"ERROR", execID, prompt, "send_input", "interrupt_kernel", tool} {
		if !strings.Contains(text, want) {
			t.Fatalf("%s: the refusal does not say %q:\n%s", what, want, text)
		}
	}
}

// TestSaveLoadRefusedWhileKernelWaitsForInput: save_environment and
// load_environment on a kernel whose execution waits in input() answer at
// once with an error naming the execution and its prompt, leave no queued
// checkpoint execution behind (nothing runs once the prompt is answered)
// and no busy name (the same name saves right after the answer).
func TestSaveLoadRefusedWhileKernelWaitsForInput(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 41", "timeout_s": 20}); strings.HasPrefix(text, "ERROR") {
		t.Fatal(text)
	}
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "before"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("first save: %s", text)
	}
	id := askInput(t, cl, k, "favourite colour? ")

	began := time.Now()
	_, text := callToolWithin(t, cl, promptly, "save_environment", map[string]any{"kernel": k, "name": "during"})
	wantWaitsForInput(t, "save_environment", text, id, "favourite colour? ", "save_environment")
	t.Logf("save refused in %s: %s", time.Since(began), text)

	_, text = callToolWithin(t, cl, promptly, "load_environment", map[string]any{"kernel": k, "name": "before"})
	wantWaitsForInput(t, "load_environment", text, id, "favourite colour? ", "load_environment")

	if q := c.queue.List(k, queue.StatusQueued); len(q) != 0 {
		t.Fatalf("refused checkpoint work left queued executions: %+v", q)
	}
	answerInput(t, cl, id, "blue")
	if ran := append(checkpointExecutions(c, k, "save", ""), checkpointExecutions(c, k, "load", "")...); len(ran) != 1 {
		t.Fatalf("want only the first save's execution, got %d: %+v", len(ran), ran)
	}
	sc, text := callToolWithin(t, cl, 60*time.Second, "save_environment", map[string]any{"kernel": k, "name": "during"})
	if sc == nil || !strings.Contains(text, "answer") {
		t.Fatalf("save after the answer: %v\n%s", sc, text)
	}
	if sc, text := callToolWithin(t, cl, 60*time.Second, "load_environment", map[string]any{"kernel": k, "name": "before"}); sc == nil {
		t.Fatalf("load after the answer: %s", text)
	}
}

// TestSaveQueuedThenExecutionWaitsForInput: a save queued behind a busy
// execution that then asks for input is withdrawn at once with the error
// naming the prompt (it neither hangs for the actor's timeout nor runs
// later unasked); a save queued behind a busy execution that just ends
// runs when the kernel frees.
func TestSaveQueuedThenExecutionWaitsForInput(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	gate := filepath.Join(t.TempDir(), "gate")
	code := "import os, time\nx = 1\nwhile not os.path.exists(" + pyQuote(gate) + "):\n    time.sleep(0.02)\n"
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code + "answer = input('race prompt? ')", "allow_stdin": true, "timeout_s": 0.5})
	if sc == nil || sc["status"] == "input_required" || queue.Status(sc["status"].(string)).Done() {
		t.Fatalf("want the gated execution running: %v\n%s", sc, text)
	}
	id := sc["execution_id"].(string)

	type reply struct {
		sc   map[string]any
		text string
	}
	saved := make(chan reply, 1)
	go func() {
		sc, text := callToolNoFatal(cl, "save_environment", map[string]any{"kernel": k, "name": "race"})
		saved <- reply{sc, text}
	}()
	testkit.WaitUntil(t, 30*time.Second, "the save queued behind the gated execution", func() (bool, string) {
		q := checkpointExecutions(c, k, "save", queue.StatusQueued)
		return len(q) == 1, "queue: " + strings.Join(statuses(c.queue.List(k, "")), ", ")
	})
	saveID := checkpointExecutions(c, k, "save", queue.StatusQueued)[0].ID
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var r reply
	select {
	case r = <-saved:
	case <-time.After(promptly + 20*time.Second): // NB: from the gate: the loop's sleep and input() come first
		t.Fatal("the queued save still waits after the execution ahead of it asked for input")
	}
	wantWaitsForInput(t, "queued save_environment", r.text, id, "race prompt? ", "save_environment")
	if !strings.Contains(r.text, "withdrawn") {
		t.Fatalf("the error does not say the queued save was withdrawn:\n%s", r.text)
	}
	answerInput(t, cl, id, "42")
	// NB: a save pipelined behind the waiting execution (already sent to
	// the kernel) ends when the kernel takes it up, answering the abort.
	testkit.WaitUntil(t, 30*time.Second, "the withdrawn save's execution ended", func() (bool, string) {
		x, _ := c.queue.Get(saveID)
		return x.Status.Done(), string(x.Status)
	})
	if x, _ := c.queue.Get(saveID); x.Status != queue.StatusCancelled {
		t.Fatalf("the withdrawn save's execution: want cancelled (it must not run after the answer), got %s %s", x.Status, x.Reason)
	}

	// The normal case: queued behind a busy execution that needs no input,
	// the save runs once the kernel is free.
	gate2 := gate + "2"
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": strings.ReplaceAll(code, pyQuote(gate), pyQuote(gate2)), "timeout_s": 0.5})
	if sc == nil || queue.Status(sc["status"].(string)).Done() {
		t.Fatalf("want the second gated execution running: %v\n%s", sc, text)
	}
	go func() {
		sc, text := callToolNoFatal(cl, "save_environment", map[string]any{"kernel": k, "name": "race"})
		saved <- reply{sc, text}
	}()
	testkit.WaitUntil(t, 30*time.Second, "the second save queued", func() (bool, string) {
		return len(checkpointExecutions(c, k, "save", queue.StatusQueued)) == 1, ""
	})
	if err := os.WriteFile(gate2, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-saved:
	case <-time.After(60 * time.Second):
		t.Fatal("the save queued behind a busy kernel did not end after the kernel freed")
	}
	if r.sc == nil || !strings.Contains(r.text, "answer") {
		t.Fatalf("save queued behind a busy kernel: %v\n%s", r.sc, r.text)
	}
}

func pyQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

func statuses(xs []queue.Execution) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID+"="+string(x.Status))
	}
	return out
}

// TestAutoCheckpointNeverWaitsOnAPrompt: the shutdown pass and the cull's
// auto-checkpoint skip a kernel waiting in input() as busy, at once; and an
// auto-save that reaches such a kernel anyway (it asked for input between
// the idle check and the save) is refused at once, leaving nothing queued.
func TestAutoCheckpointNeverWaitsOnAPrompt(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 1", "timeout_s": 20}); strings.HasPrefix(text, "ERROR") {
		t.Fatal(text)
	}
	id := askInput(t, cl, k, "shutdown prompt? ")

	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	r := c.autoCheckpointAll(ctx)
	if ctx.Err() != nil || r.Skipped[k] != skipBusy || len(r.Saved) != 0 {
		t.Fatalf("shutdown pass on a kernel waiting in input(): want skipped busy at once, got %+v (ctx %v)", r, ctx.Err())
	}
	if err := c.autoCheckpoint(ctx, k); !errors.Is(err, errAutoBusy) {
		t.Fatalf("cull's auto-checkpoint: want errAutoBusy, got %v", err)
	}
	k0, _ := c.kernels.Get(k)
	_, err := c.autoSave(ctx, autoCandidate{ID: k, Owner: k0.Owner})
	if !errors.Is(err, ErrKernelWaitsForInput) || !strings.Contains(err.Error(), id) || ctx.Err() != nil {
		t.Fatalf("auto-save reaching a kernel waiting in input(): want ErrKernelWaitsForInput naming %s at once, got %v (ctx %v)", id, err, ctx.Err())
	}
	if q := c.queue.List(k, queue.StatusQueued); len(q) != 0 {
		t.Fatalf("refused auto-save left queued executions: %+v", q)
	}
	answerInput(t, cl, id, "ok")
	if len(checkpointExecutions(c, k, "save", "")) != 0 {
		t.Fatal("an auto-save execution ran after the answer")
	}
}
