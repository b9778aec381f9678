package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
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
	// NB: the reply is relayed live and the idle comes from the log: they
	// arrive in either order.
	var rep *frontMsg
	idle := false
	a.until("complete_reply and the idle of the complete_request, with it as parent", func(m frontMsg) bool {
		if m.h.MsgType == "complete_reply" {
			rep = &m
		}
		idle = idle || (m.h.MsgType == "status" && m.parent.MsgID == id && m.content()["execution_state"] == "idle")
		return rep != nil && idle
	})
	if rep.parent.MsgID != id || rep.Channel != "shell" || !strings.Contains(string(rep.Content), "import") {
		t.Fatalf("complete_reply %s parent %+v", rep.Content, rep.parent)
	}
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

	sd := f.send("control", "shutdown_request", map[string]any{"restart": false})
	// NB: our shutdown_reply (control) and the dead status (IOPub, from
	// the log) come in either order.
	var dead, replied bool
	f.until("status dead and the shutdown_reply", func(m frontMsg) bool {
		dead = dead || (m.h.MsgType == "status" && m.content()["execution_state"] == "dead")
		replied = replied || (m.Channel == "control" && m.h.MsgType == "shutdown_reply" && m.parent.MsgID == sd)
		return dead && replied
	})
	if _, text := callTool(t, agent, "list_kernels", map[string]any{}); strings.Contains(text, `"running"`) {
		t.Fatalf("the kernel still runs after the frontend shut it down: %s", text)
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
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "carol": auth.DefaultScopes,
		"dave": auth.ScopeRead})
	alice := ps.clients["alice"]
	k := startKernelTool(t, alice)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "dave", "access": "execute"})
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
	// dave may execute on the kernel, but his token has the read scope only.
	dave := dialFrontend(t, "http://"+ps.hostPort, k, "dave-s", ps.tokens["dave"], false)
	dave.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	if _, got := dave.execute("print('dave was here')"); got[len(got)-1].content()["ename"] != "PermissionError" ||
		!strings.Contains(string(got[len(got)-1].Content), "execute scope") {
		t.Fatalf("a read-scope token's execute_request:%s", describe(got))
	}
	intr := dave.send("control", "interrupt_request", map[string]any{})
	got = dave.until("interrupt refusal", func(m frontMsg) bool { return m.h.MsgType == "interrupt_reply" && m.parent.MsgID == intr })
	if got[len(got)-1].content()["ename"] != "PermissionError" {
		t.Fatalf("a read-scope token's interrupt_request:%s", describe(got))
	}
	done := agentRuns(t, alice, k, "print('alice runs')")
	bob.until("alice's output", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "alice runs")
	})
	<-done
	// Alice restarts her kernel: news to bob's frontend (status restarting,
	// which frontends answer by reconnecting).
	must(t, alice, "restart_kernel", map[string]any{"kernel": k})
	bob.until("status restarting", func(m frontMsg) bool {
		return m.h.MsgType == "status" && m.content()["execution_state"] == "restarting"
	})
}

// TestChannelsStalledFrontendSlowsNoOne: while an agent streams thousands
// of lines, a frontend that reads nothing is closed with 4008 (slow
// consumer) and the others get every line in order; the stalled one,
// reconnecting with its session_id, gets the rest with nothing lost.
func TestChannelsStalledFrontendSlowsNoOne(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	// NB: the stalled frontend's blocked write must outlast the live one
	// reading everything, however loaded the machine: then it is cut off
	// by its feed overflowing (4008), not by a timed-out write.
	cfg.JupyterWriteTimeout = 10 * time.Minute
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	agent := mcpClient(t, inproc)
	t.Cleanup(func() { _ = agent.Close() })
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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

// TestChannelsResumeAfterServerRestart: the server drains and closes its
// channels with 1001 and a hint when it stops; a frontend session that
// attached before the restart reconnects and gets the output recorded
// since this process started (before it reconnected); a session never
// seen gets live output only.
func TestChannelsResumeAfterServerRestart(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	connect := func(c *core) *client.Client {
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, inproc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	c1, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	k := startKernelTool(t, connect(c1))
	f := dialFrontend(t, channelsServer(t, c1), k, "returning", c1.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	if err := c1.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := readUntilClosed(ctx, f); websocket.CloseStatus(err) != websocket.StatusGoingAway || !strings.Contains(err.Error(), "session_id") {
		t.Fatalf("at shutdown the frontend got %v, want 1001 with a hint", err)
	}

	c2, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	agent := connect(c2)
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('while you reconnected')"})
	base := channelsServer(t, c2)
	back := dialFrontend(t, base, k, "returning", c2.token, true)
	back.until("the output recorded before it reconnected", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "while you reconnected")
	})
	fresh := dialFrontend(t, base, k, "newcomer", c2.token, true)
	fresh.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	done := agentRuns(t, agent, k, "print('marker')")
	got := fresh.until("marker", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "marker")
	})
	<-done
	if strings.Contains(describe(got), "while you reconnected") {
		t.Fatalf("a session never seen got old output:%s", describe(got))
	}
}

// TestChannelsLiveSessionCursorStartsAtNow: a session that attached live
// and got no event before it left resumes from where it joined, not from
// the kernel's first event (its old output is not replayed).
func TestChannelsLiveSessionCursorStartsAtNow(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('old output')"})
	must(t, agent, "shutdown_kernel", map[string]any{"kernel": k})
	base := channelsServer(t, c)
	f := dialFrontend(t, base, k, "brief", c.token, true)
	f.until("the dead status", func(m frontMsg) bool { return m.h.MsgType == "status" && m.content()["execution_state"] == "dead" })
	_ = f.conn.Close(websocket.StatusNormalClosure, "")
	testkit.WaitUntil(t, 10*time.Second, "the server to see the frontend gone", func() (bool, string) {
		n := c.jupyter.Connections(k)
		return n == 0, fmt.Sprint(n, " connections")
	})
	g := dialFrontend(t, base, k, "brief", c.token, true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for {
		m, err := g.next(ctx)
		if err != nil {
			break // NB: nothing more to come: a dead kernel
		}
		if strings.Contains(string(m.Content), "old output") {
			t.Fatalf("the kernel's history was replayed to a session that joined after it: %s", m.Content)
		}
	}
}

// TestChannelsOwnRestartIsNoNews: a restart the frontend's own principal
// asked for through the REST API (JupyterLab's restart: POST
// /api/kernels/<id>/restart, then it reconnects by itself) is not told as
// status restarting, which JupyterLab would take for an automatic restart
// and reconnect again; nor is one recorded before a connection attached.
func TestChannelsOwnRestartIsNoNews(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	uuid, _ := events.UUIDForm(k)
	base := channelsServer(t, c)
	f := dialFrontend(t, base, uuid, "lab", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	req, _ := http.NewRequest("POST", base+"/api/kernels/"+uuid+"/restart", nil)
	req.Header.Set("Authorization", "token "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("POST restart: %v %v", res, err)
	}
	res.Body.Close()
	later := dialFrontend(t, base, uuid, "later", c.token, false)
	done := agentRuns(t, agent, k, "print('after the restart')")
	defer func() { <-done }()
	for _, fr := range []*frontend{f, later} {
		got := fr.until("the output after the restart", func(m frontMsg) bool {
			return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "after the restart")
		})
		for _, m := range got {
			if m.h.MsgType == "status" && m.content()["execution_state"] == "restarting" {
				t.Fatalf("session %s was told status restarting:%s", fr.session, describe(got))
			}
		}
	}
}
