package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TestChannelsRelayReplyToAskerOnly: a complete_request is relayed to the
// kernel; its reply goes to the connection that asked, with its request as
// parent, and to no other.
func TestChannelsRelayReplyToAskerOnly(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	base := channelsServer(t, c)
	a := dialFrontend(t, base, k, "asker", c.token, true)
	b := dialFrontend(t, base, k, "other", c.token, false)
	for _, f := range []*frontend{a, b} {
		f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	}
	id := a.send("shell", "complete_request", map[string]any{"code": "impo", "cursor_pos": 4})
	got := a.until("complete_reply", func(m frontMsg) bool { return m.h.MsgType == "complete_reply" })
	rep := got[len(got)-1]
	if rep.parent.MsgID != id || rep.Channel != "shell" || !strings.Contains(string(rep.Content), "import") {
		t.Fatalf("complete_reply %s parent %+v", rep.Content, rep.parent)
	}
	a.until("idle of the complete_request, with it as parent", func(m frontMsg) bool {
		return m.h.MsgType == "status" && m.parent.MsgID == id && m.content()["execution_state"] == "idle"
	})
	// b works on, and never saw a complete_reply.
	_, seen := b.execute("1")
	for _, m := range seen {
		if m.h.MsgType == "complete_reply" {
			t.Fatalf("a frontend that did not ask got the complete_reply:%s", describe(seen))
		}
	}
}

// TestChannelsInputInterruptRestart: input() asked of the frontend that ran
// it and answered by it; interrupt_request on control interrupts (an
// error execute_reply, KeyboardInterrupt); shutdown_request with restart
// restarts the kernel (status restarting, then it runs again).
func TestChannelsInputInterruptRestart(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "person", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })

	id := f.send("shell", "execute_request", map[string]any{"code": "name = input('who? ')\nprint('hi', name)", "allow_stdin": true})
	got := f.until("input_request", func(m frontMsg) bool { return m.Channel == "stdin" && m.h.MsgType == "input_request" })
	req := got[len(got)-1]
	if req.parent.MsgID != id || req.content()["prompt"] != "who? " {
		t.Fatalf("input_request %s parent %+v", req.Content, req.parent)
	}
	f.sendReply("stdin", "input_reply", req.Header, map[string]any{"value": "Ada"})
	got = f.until("execute_reply", func(m frontMsg) bool { return m.h.MsgType == "execute_reply" && m.parent.MsgID == id })
	if out, ok := find(got, "iopub", "stream", id); !ok || !strings.Contains(string(out.Content), "hi Ada") {
		t.Fatalf("no 'hi Ada':%s", describe(got))
	}

	id = f.send("shell", "execute_request", map[string]any{"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(120)"})
	f.until("the sleep running", func(m frontMsg) bool { return m.h.MsgType == "stream" && m.parent.MsgID == id })
	intr := f.send("control", "interrupt_request", map[string]any{})
	got = f.until("execute_reply of the interrupted", func(m frontMsg) bool { return m.h.MsgType == "execute_reply" && m.parent.MsgID == id })
	if r := got[len(got)-1].content(); r["status"] != "error" || r["ename"] != "KeyboardInterrupt" {
		t.Fatalf("interrupted execute_reply %v", r)
	}
	if _, ok := find(got, "control", "interrupt_reply", intr); !ok {
		t.Fatalf("no interrupt_reply:%s", describe(got))
	}

	rs := f.send("control", "shutdown_request", map[string]any{"restart": true})
	got = f.until("status restarting", func(m frontMsg) bool {
		return m.h.MsgType == "status" && m.content()["execution_state"] == "restarting"
	})
	if _, ok := find(got, "control", "shutdown_reply", rs); !ok {
		rest := f.until("shutdown_reply", func(m frontMsg) bool { return m.h.MsgType == "shutdown_reply" })
		if r := rest[len(rest)-1]; r.parent.MsgID != rs || r.content()["restart"] != true {
			t.Fatalf("shutdown_reply %s", r.Content)
		}
	}
	if _, got := f.execute("'name' in dir()"); !strings.Contains(describe(got), "False") {
		t.Fatalf("the kernel was not restarted:%s", describe(got))
	}
}

// sendReply sends a reply to a message of the server's (input_reply).
func (f *frontend) sendReply(channel, msgType string, parent []byte, content any) {
	f.t.Helper()
	f.sendWith(channel, msgType, parent, content)
}

// TestChannelsAccess: a principal the kernel is shared with for read
// attaches and sees output, but its execute_request is refused with a
// PermissionError reply (the connection stays); one it is not shared with
// gets 404 as for a kernel that does not exist.
func TestChannelsAccess(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "carol": auth.DefaultScopes})
	alice := ps.clients["alice"]
	k := startKernelTool(t, alice)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	base := "http://" + ps.hostPort
	uuid, _ := events.UUIDForm(k)
	if _, res, err := tryDialFrontend(base, uuid, "c", ps.tokens["carol"], true); err == nil || res == nil || res.StatusCode != 404 {
		t.Fatalf("carol attached to alice's kernel: %v", err)
	}
	bob := dialFrontend(t, base, uuid, "bob-s", ps.tokens["bob"], true)
	bob.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	id, got := bob.execute("print('bob was here')")
	r := got[len(got)-1].content()
	if r["status"] != "error" || r["ename"] != "PermissionError" || !strings.Contains(fmt.Sprint(r["evalue"]), "read only") {
		t.Fatalf("bob's execute_request: %v", r)
	}
	if strings.Contains(describe(got), "bob was here") {
		t.Fatal("bob's code ran")
	}
	_ = id
	done := agentRuns(t, alice, k, "print('alice runs')")
	bob.until("alice's output", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "alice runs")
	})
	<-done
}

// TestChannelsStalledFrontendSlowsNoOne: while an agent streams thousands
// of lines, a frontend that reads nothing is closed with 4008 (slow
// consumer) and the others get every line in order; the stalled one,
// reconnecting with its session_id, gets the rest with nothing lost.
func TestChannelsStalledFrontendSlowsNoOne(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	live := dialFrontend(t, base, k, "live", c.token, true)
	live.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	stalled, _, err := tryDialFrontendBuf(base, k, "stalled", c.token, true, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	stalled.t = t
	t.Cleanup(func() { _ = stalled.conn.CloseNow() })
	// NB: it reads nothing from here until the live one got everything.
	const lines = 480 // of 64 KiB: 30 MiB, past the feed's and the send queue's bounds and the sockets' buffers
	done := agentRuns(t, agent, k, fmt.Sprintf("for i in range(%d):\n    print('line-%%06d' %% i, 'x' * 65536, flush=True)", lines))
	defer func() { <-done }()
	next := 0
	check := func(f *frontend, from int) int {
		n := from
		f.until(fmt.Sprintf("line %d", lines-1), func(m frontMsg) bool {
			if m.h.MsgType != "stream" {
				return false
			}
			text, _ := m.content()["text"].(string)
			for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
				var i int
				if _, err := fmt.Sscanf(l, "line-%06d", &i); err != nil {
					continue
				}
				if i != n {
					t.Fatalf("line %d after line %d", i, n-1)
				}
				n++
			}
			return n == lines
		})
		return n
	}
	next = check(live, 0)
	if next != lines {
		t.Fatalf("live frontend got %d lines", next)
	}
	// The stalled one: what it was sent, then 4008.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 0
	for {
		var m frontMsg
		m, err = stalled.next(ctx)
		if err != nil {
			break
		}
		if m.h.MsgType == "stream" {
			text, _ := m.content()["text"].(string)
			n += strings.Count(text, "line-")
		}
	}
	if websocket.CloseStatus(err) != 4008 || !strings.Contains(err.Error(), "slow consumer") {
		t.Fatalf("the stalled frontend ended with %v after %d lines, want 4008 slow consumer", err, n)
	}
	if n >= lines {
		t.Fatalf("the stalled frontend got all %d lines: it was not stalled enough to test anything", n)
	}
	again := dialFrontend(t, base, k, "stalled", c.token, true)
	if got := check(again, n); got != lines {
		t.Fatalf("resumed at %d, ended at %d", n, got)
	}
}
