package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// executeWith runs code from the frontend with execute options and returns
// its execute_reply's content and everything read up to it.
func (f *frontend) executeWith(code string, opts map[string]any) (map[string]any, []frontMsg) {
	f.t.Helper()
	content := map[string]any{"code": code, "allow_stdin": false}
	for k, v := range opts {
		content[k] = v
	}
	id := f.send("shell", "execute_request", content)
	got := f.until("the execute_reply of "+id, func(m frontMsg) bool {
		return m.Channel == "shell" && m.h.MsgType == "execute_reply" && m.parent.MsgID == id
	})
	return got[len(got)-1].content(), got
}

// TestChannelsExecuteOptions: a frontend's silent and store_history false
// executions reach the kernel as such (they publish no execute_input and do
// not bump the execution count), and its user_expressions are evaluated
// and answered in its execute_reply.
func TestChannelsExecuteOptions(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "lab", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })

	first, _ := f.executeWith("x = 41", nil)
	n, _ := first["execution_count"].(float64)
	if first["status"] != "ok" || n < 1 {
		t.Fatalf("first execute_reply %v", first)
	}
	probe, got := f.executeWith("x += 1", map[string]any{"silent": true, "store_history": false})
	if probe["status"] != "ok" {
		t.Fatalf("silent execute_reply %v", probe)
	}
	if _, ok := find(got, "iopub", "execute_input", ""); ok {
		t.Fatalf("a silent execution published execute_input (it was sent not silent):%s", describe(got))
	}
	nohist, _ := f.executeWith("x += 0", map[string]any{"store_history": false})
	if nohist["status"] != "ok" {
		t.Fatalf("store_history false execute_reply %v", nohist)
	}
	last, got := f.executeWith("x", map[string]any{"user_expressions": map[string]any{"twice": "x * 2", "bad": "1/0"}})
	if c, _ := last["execution_count"].(float64); c != n+1 {
		t.Fatalf("execution_count %v after %v: the silent or no-history execution was counted", c, n)
	}
	if res, ok := find(got, "iopub", "execute_result", ""); !ok || !strings.Contains(string(res.Content), `"42"`) {
		t.Fatalf("the silent x += 1 did not run:%s", describe(got))
	}
	ue, _ := last["user_expressions"].(map[string]any)
	twice, _ := ue["twice"].(map[string]any)
	data, _ := twice["data"].(map[string]any)
	bad, _ := ue["bad"].(map[string]any)
	if twice["status"] != "ok" || data["text/plain"] != "84" || bad["status"] != "error" || bad["ename"] != "ZeroDivisionError" {
		t.Fatalf("user_expressions of the execute_reply: %v", last["user_expressions"])
	}
}

// TestChannelsExecuteReplyPayload: the execute_reply's payload (here the
// set_next_input that %load and get_ipython().set_next_input make, which
// JupyterLab turns into a new cell) reaches the frontend that asked.
func TestChannelsExecuteReplyPayload(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "lab", c.token, false)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	reply, _ := f.executeWith("get_ipython().set_next_input('print(\"next\")')", nil)
	payload, _ := reply["payload"].([]any)
	if reply["status"] != "ok" || len(payload) != 1 {
		t.Fatalf("execute_reply %v: want one payload entry", reply)
	}
	p, _ := payload[0].(map[string]any)
	if p["source"] != "set_next_input" || p["text"] != `print("next")` {
		t.Fatalf("payload %v", payload)
	}
	if _, ok := reply["user_expressions"].(map[string]any); !ok {
		t.Fatalf("execute_reply without user_expressions: %v", reply)
	}
}

// TestChannelsStopOnError: as JupyterLab's Run All, a frontend sends three
// cells at once with stop_on_error; the first fails, so the other two are
// answered "aborted" and never run, while an agent's execution and another
// frontend session's cell queued among them still run.
func TestChannelsStopOnError(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "runall", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	other := dialFrontend(t, base, k, "other", c.token, true)
	other.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })

	// NB: the first cell waits on input() so that everything below is
	// queued behind it before it fails.
	cell := func(code string, stdin bool) string {
		return f.send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": stdin, "stop_on_error": true})
	}
	first := cell("input('go? ')\n1/0", true)
	second := cell("print('second ran')", false)
	third := cell("print('third ran')", false)
	got := f.until("input_request", func(m frontMsg) bool { return m.Channel == "stdin" && m.h.MsgType == "input_request" })
	req := got[len(got)-1]
	done := agentRuns(t, agent, k, "print('agent ran')")
	defer func() { <-done }()
	others := other.send("shell", "execute_request", map[string]any{"code": "print('other ran')", "stop_on_error": true})
	_, sched, err := c.sys.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, time.Minute, "four executions queued behind the first cell", func() (bool, string) {
		res, err := c.sys.Actors().Root.RequestFuture(sched, scheduler.Snapshot{}, 10*time.Second).Result()
		if err != nil {
			return false, err.Error()
		}
		s := res.(scheduler.State)
		return len(s.Pending) == 4 && s.Next == nil, fmt.Sprintf("pending %d, next %v", len(s.Pending), s.Next != nil)
	})
	f.sendReply("stdin", "input_reply", req.Header, map[string]any{"value": "yes"})

	replies := map[string]map[string]any{}
	got = f.until("three execute_replies", func(m frontMsg) bool {
		if m.Channel == "shell" && m.h.MsgType == "execute_reply" {
			replies[m.parent.MsgID] = m.content()
		}
		return len(replies) == 3
	})
	if r := replies[first]; r["status"] != "error" || r["ename"] != "ZeroDivisionError" {
		t.Fatalf("first cell's reply %v", r)
	}
	for _, id := range []string{second, third} {
		if r := replies[id]; r["status"] != "aborted" {
			t.Fatalf("cell %s after the failing one: reply %v, want aborted:%s", id, r, describe(got))
		}
	}
	if strings.Contains(describe(got), "second ran") || strings.Contains(describe(got), "third ran") {
		t.Fatalf("an aborted cell ran:%s", describe(got))
	}
	// NB: the other session sees every IOPub message: the agent's output too.
	var otherReply map[string]any
	var agentRan, otherRan bool
	og := other.until("the other session's reply and the agent's output", func(m frontMsg) bool {
		if m.Channel == "shell" && m.h.MsgType == "execute_reply" && m.parent.MsgID == others {
			otherReply = m.content()
		}
		if m.h.MsgType == "stream" {
			agentRan = agentRan || strings.Contains(string(m.Content), "agent ran")
			otherRan = otherRan || (m.parent.MsgID == others && strings.Contains(string(m.Content), "other ran"))
		}
		return otherReply != nil && agentRan && otherRan
	})
	if otherReply["status"] != "ok" {
		t.Fatalf("the other session's cell: %v:%s", otherReply, describe(og))
	}
	if strings.Contains(describe(og), "second ran") || strings.Contains(describe(og), "third ran") {
		t.Fatalf("an aborted cell ran:%s", describe(og))
	}
}
