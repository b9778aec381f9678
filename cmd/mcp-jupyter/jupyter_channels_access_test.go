package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestChannelsSessionIDOfAnotherPrincipal: bob (read share) connects with
// alice's session_id (he sees it as parent_header.session on IOPub). Her
// connection stays open (no 1008 "replaced"), her execute_reply goes to
// her alone, and bob, who sees her execution's output as any reader, gets
// no execute_reply of hers.
func TestChannelsSessionIDOfAnotherPrincipal(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := ps.clients["alice"]
	k := startKernelTool(t, alice)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	base := "http://" + ps.hostPort
	uuid, _ := events.UUIDForm(k)
	af := dialFrontend(t, base, uuid, "alice-session", ps.tokens["alice"], true)
	af.until("alice's greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	bf := dialFrontend(t, base, uuid, "alice-session", ps.tokens["bob"], true)
	bf.until("bob's greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })

	// NB: alice's execute_reply proves her connection was not replaced
	// (a replaced one is closed with 1008 before it).
	id, _ := af.execute("print('alice ran this')")
	<-agentRuns(t, alice, k, "print('marker after alice')")
	got := bf.until("the marker after alice's execution", func(m frontMsg) bool {
		return m.h.MsgType == "stream" && strings.Contains(string(m.Content), "marker after alice")
	})
	if _, ok := find(got, "iopub", "stream", id); !ok {
		t.Fatalf("bob (a reader) did not see alice's output: %s", describe(got))
	}
	if m, ok := find(got, "shell", "execute_reply", id); ok {
		t.Fatalf("bob got alice's execute_reply by sending her session_id: %s", m.Content)
	}
	if n := ps.c.jupyter.Connections(k); n != 2 {
		t.Fatalf("%d channels connections on the kernel, want alice's and bob's", n)
	}
}

// expectClosed reads f until it closes and checks it closed with code and
// a reason containing want, without ever showing leak.
func expectClosed(t *testing.T, f *frontend, code websocket.StatusCode, want, leak string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		m, err := f.next(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Reason, want) {
				t.Fatalf("the connection ended with %v, want close %d with a reason naming %q", err, code, want)
			}
			return
		}
		if leak != "" && strings.Contains(string(m.Content), leak) {
			t.Fatalf("got %q after access ended: %s %s", leak, m.h.MsgType, m.Content)
		}
	}
}

// TestChannelsShareWithdrawnCloses: alice withdraws bob's read share; his
// open channels connection closes with 4001 before her next output.
func TestChannelsShareWithdrawnCloses(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := ps.clients["alice"]
	k := startKernelTool(t, alice)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	base := "http://" + ps.hostPort
	uuid, _ := events.UUIDForm(k)
	bf := dialFrontend(t, base, uuid, "bob-s", ps.tokens["bob"], true)
	bf.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "none"})
	<-agentRuns(t, alice, k, "print('secret after unshare')")
	expectClosed(t, bf, jupyterapi.CloseAccessEnded, "withdrawn", "secret after unshare")
}

// TestChannelsRevokedTokenCloses: `mcp-jupyter principal revoke alice`
// closes her open channels connection with 4001 and a reason naming the
// revocation, as /ws does.
func TestChannelsRevokedTokenCloses(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	k := startKernelTool(t, ps.clients["alice"])
	uuid, _ := events.UUIDForm(k)
	af := dialFrontend(t, "http://"+ps.hostPort, uuid, "alice-s", ps.tokens["alice"], false)
	af.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	if out, err := principalCLI(t, ps.dataDir, "revoke", "alice"); err != nil {
		t.Fatalf("principal revoke alice: %v %s", err, out)
	}
	expectClosed(t, af, jupyterapi.CloseAccessEnded, "revoked", "")
}

// TestChannelsBinaryBuffersRefused: a request with binary buffers (which
// the server does not carry to the kernel yet) gets an error reply saying
// so, never a relay without its buffers.
func TestChannelsBinaryBuffersRefused(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	f := dialFrontend(t, channelsServer(t, c), k, "buffers", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	h, _ := json.Marshal(jupyterapi.Header{MsgID: "with-buffers", MsgType: "comm_info_request", Session: "buffers", Version: "5.3"})
	m := jupyterapi.Message{Channel: "shell", Header: h, ParentHeader: json.RawMessage(`{}`), Metadata: json.RawMessage(`{}`),
		Content: json.RawMessage(`{}`), Buffers: [][]byte{{1, 2, 3}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.conn.Write(ctx, websocket.MessageBinary, jupyterapi.EncodeV1(m)); err != nil {
		t.Fatal(err)
	}
	got := f.until("the reply", func(m frontMsg) bool { return m.h.MsgType == "comm_info_reply" && m.parent.MsgID == "with-buffers" })
	rep := got[len(got)-1].content()
	if rep["status"] != "error" || !strings.Contains(fmt.Sprint(rep["evalue"]), "binary buffer") {
		t.Fatalf("comm_info_request with buffers answered %v, want an error naming the binary buffers", rep)
	}
}

// TestChannelsKernelInfoHeldWhileRestarting: a frontend connecting while
// the kernel restarts gets its kernel_info_reply (status ok) once the
// kernel runs, not an error reply.
func TestChannelsKernelInfoHeldWhileRestarting(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	// NB: a kernel that takes its time to stop makes the restart last.
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "import atexit, time\natexit.register(time.sleep, 3)"})
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = "restart_kernel", map[string]any{"kernel": k}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := agent.CallTool(asAdmin(ctx), req); err != nil {
			t.Errorf("restart_kernel: %v", err)
		}
	}()
	testkit.WaitUntil(t, 30*time.Second, "the kernel actor restarting", func() (bool, string) {
		err := c.sys.Relay(context.Background(), k, kernel.Relay{Channel: "shell", MsgType: "kernel_info_request", MsgID: "probe", Content: []byte(`{}`),
			Replies: make(chan kernel.Reply, 4)})
		return errors.Is(err, kernel.ErrNotRunning), fmt.Sprint(err)
	})
	f := dialFrontend(t, base, k, "during-restart", c.token, false)
	got := f.until("the greeting's kernel_info_reply", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	if st := got[len(got)-1].content()["status"]; st != "ok" {
		t.Fatalf("kernel_info_reply during a restart: status %v, want ok once the kernel runs: %s", st, describe(got))
	}
	<-restarted
}

// TestChannelsRestartDoesNotBlockReader: while the frontend's own restart
// (shutdown_request with restart, a kernel slow to stop) runs, its next
// request (an interrupt_request) is answered before the shutdown_reply.
func TestChannelsRestartDoesNotBlockReader(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "import atexit, time\natexit.register(time.sleep, 3)"})
	f := dialFrontend(t, channelsServer(t, c), k, "restarter", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	restart := f.send("control", "shutdown_request", map[string]any{"restart": true})
	interrupt := f.send("control", "interrupt_request", map[string]any{})
	got := f.until("the shutdown_reply", func(m frontMsg) bool { return m.h.MsgType == "shutdown_reply" && m.parent.MsgID == restart })
	if _, ok := find(got, "control", "interrupt_reply", interrupt); !ok {
		t.Fatalf("the interrupt_request sent during the restart was not answered before its shutdown_reply:%s", describe(got))
	}
}

// TestChannelsAgentRestartIsNewsWithSharedToken: an agent and a person
// share one token; the agent's restart_kernel (MCP) is told to the
// person's JupyterLab as status "restarting" (its own REST restart is not:
// TestChannelsOwnRestartIsNoNews).
func TestChannelsAgentRestartIsNewsWithSharedToken(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	uuid, _ := events.UUIDForm(k)
	f := dialFrontend(t, channelsServer(t, c), uuid, "lab", c.token, true)
	f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
	must(t, agent, "restart_kernel", map[string]any{"kernel": k})
	f.until("status restarting", func(m frontMsg) bool {
		return m.h.MsgType == "status" && m.content()["execution_state"] == "restarting"
	})
}

// TestChannelsGreetingStatusFirst: a session resuming with output recorded
// while it was away gets the greeting's status first, before the replayed
// statuses (a stale greeting after them would show the wrong state).
func TestChannelsGreetingStatusFirst(t *testing.T) {
	c, connect := inProcess(t)
	agent := connect()
	k := startKernelTool(t, agent)
	base := channelsServer(t, c)
	for i := range 3 {
		f := dialFrontend(t, base, k, "resumer", c.token, true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m, err := f.next(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if m.h.MsgType != "status" || m.parent.MsgID != "" {
			t.Fatalf("connection %d: first message %s (parent %q), want the greeting's status", i, m.h.MsgType, m.parent.MsgID)
		}
		f.until("greeting", func(m frontMsg) bool { return m.h.MsgType == "kernel_info_reply" })
		_ = f.conn.Close(websocket.StatusNormalClosure, "")
		testkit.WaitUntil(t, 10*time.Second, "the server to see the frontend gone", func() (bool, string) {
			n := c.jupyter.Connections(k)
			return n == 0, fmt.Sprint(n, " connections")
		})
		<-agentRuns(t, agent, k, "for i in range(20): print(i, flush=True)")
	}
}
