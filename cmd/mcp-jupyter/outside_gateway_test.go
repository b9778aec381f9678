package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// gatewaySteps are the check.mjs steps that go through a gateway-mode
// jupyter_server to the gateway. (Contents and sessions are the
// jupyter_server's own in that mode; sessions still start, use and shut
// down the gateway's kernels, so they run too. Contents do not reach the
// gateway and are left out.)
var gatewaySteps = []string{"api", "kernelspecs", "start", "execute", "error", "stdin", "complete",
	"interrupt", "restart", "sessions", "shutdown"}

// TestOutsideJupyterServerGateway: Debian's jupyter_server started with
// --gateway-url pointing at our server (what JupyterLab runs on when
// attached to us) starts a kernel through us and runs code on it; a person
// in it attaches to an agent's kernel, sees the agent's MCP output live and
// runs a cell the agent then sees in list_executions as the frontend's.
// JupyterLab's own client library (check.mjs) drives the jupyter_server,
// as the JupyterLab page would.
func TestOutsideJupyterServerGateway(t *testing.T) {
	node := outsideLabReady(t)
	srv := startLabServer(t)
	js := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{GatewayURL: srv.base, GatewayToken: srv.token})

	agentKernel := startKernelTool(t, srv.agent)
	if _, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel, "code": `agent_was_here = "agent-gateway"`}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("agent's execute: %s", text)
	}
	uuid, ok := events.UUIDForm(agentKernel)
	if !ok {
		t.Fatalf("agent's kernel id %q has no UUID form", agentKernel)
	}
	agentMarker := "agent-says-gateway-" + events.NewID(time.Now())
	frontendMarker := "frontend-says-gateway-" + events.NewID(time.Now())
	agentRan := false
	res := runLab(t, node, js.URL, "v1", []string{
		"MCPJ_TOKEN=" + js.Token, "MCPJ_REFERENCE=1", "MCPJ_USERNAME=person-gateway",
		"MCPJ_STEPS=" + strings.Join(append([]string{"attach", "agent", "frontend_on_agent_kernel"}, gatewaySteps...), ","),
		"MCPJ_ATTACH_KERNEL=" + uuid, "MCPJ_AGENT_WAIT=1", "MCPJ_AGENT_MARKER=" + agentMarker,
		"MCPJ_FRONTEND_MARKER=" + frontendMarker,
	}, func(string) {
		sc, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel, "code": fmt.Sprintf("print(%q)", agentMarker)})
		agentRan = sc["status"] == "ok" && strings.Contains(text, agentMarker)
		if !agentRan {
			t.Errorf("agent's execute while the frontend is attached through the gateway: %v %s", sc, text)
		}
	})
	if !res.OK {
		t.Logf("jupyter_server (gateway mode) log:\n%s", js.Log())
	}
	res.mustPass(t, append([]string{"attach", "agent", "frontend_on_agent_kernel"}, gatewaySteps...)...)
	if !agentRan {
		t.Fatal("check.mjs never asked for the agent's execution")
	}
	if got := res.str("attach", "stdout"); got != "'agent-gateway'\n" {
		t.Fatalf("through the gateway the frontend sees agent_was_here = %q: not the agent's kernel", got)
	}

	// The kernel started through jupyter_server is ours, and so are the
	// executions: durable, attributed to the frontend.
	own := res.str("start", "kernel_id")
	ownID, ok := events.FromUUIDForm(own)
	if !ok {
		t.Fatalf("the kernel started through the gateway has id %q, not the UUID form of one of ours", own)
	}
	x := frontendExecution(t, srv.agent, own, "hello from the frontend")
	o, _ := x["origin"].(map[string]any)
	if o["kind"] != events.OriginFrontend || o["msg_id"] != res.str("execute", "msg_id") || o["username"] != "person-gateway" {
		t.Fatalf("the execution run through the gateway: origin %v; want kind %q, msg_id %q, username person-gateway",
			o, events.OriginFrontend, res.str("execute", "msg_id"))
	}
	x = frontendExecution(t, srv.agent, agentKernel, frontendMarker)
	if o, _ := x["origin"].(map[string]any); o["kind"] != events.OriginFrontend || o["msg_id"] != res.str("frontend_on_agent_kernel", "msg_id") {
		t.Fatalf("the person's cell on the agent's kernel, through the gateway: origin %v", o)
	}
	testkit.WaitUntil(t, 30*time.Second, "the kernel shut down through the gateway is shut down here", func() (bool, string) {
		k, _ := srv.core.back.kernels.Get(ownID)
		return k.State == kernels.StateShutDown, string(k.State)
	})
}

// TestOutsideJupyterServerGatewayReference: the same steps through a
// gateway-mode jupyter_server whose gateway is another (reference)
// jupyter_server: proves the gateway set-up and the steps, so a failure of
// TestOutsideJupyterServerGateway is ours.
func TestOutsideJupyterServerGatewayReference(t *testing.T) {
	node := outsideLabReady(t)
	backend := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{})
	js := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{GatewayURL: backend.URL, GatewayToken: backend.Token})
	res := runLab(t, node, js.URL, "v1", []string{
		"MCPJ_TOKEN=" + js.Token, "MCPJ_REFERENCE=1", "MCPJ_STEPS=" + strings.Join(gatewaySteps, ","),
	}, nil)
	if !res.OK {
		t.Logf("jupyter_server (gateway mode) log:\n%s\nbackend log:\n%s", js.Log(), backend.Log())
	}
	res.mustPass(t, gatewaySteps...)
}
