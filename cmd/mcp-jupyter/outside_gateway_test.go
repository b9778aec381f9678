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
// attached to us) starts a kernel through us and runs code on it
// (execute, error, input(), completion, interrupt, restart, sessions,
// shutdown); while the person is attached, an agent runs code on that
// kernel through MCP (naming it by the id the person sees) and the person
// sees the output live; the agent's list_executions shows the person's
// cell, attributed to the frontend. JupyterLab's own client library
// (check.mjs) drives the jupyter_server, as the JupyterLab page would.
//
// NB: jupyter_server in gateway mode lists and attaches to the kernels it
// started itself only (1.23's GatewayMappingKernelManager filters the
// gateway's list by its own): a person reaches an agent's existing kernel
// by connecting straight to our server (TestOutsideJupyterLab), not
// through the gateway.
func TestOutsideJupyterServerGateway(t *testing.T) {
	node := outsideLabReady(t)
	srv := startLabServer(t)
	js := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{GatewayURL: srv.base, GatewayToken: srv.token})

	agentMarker := "agent-says-gateway-" + events.NewID(time.Now())
	agentRan := false
	res := runLab(t, node, js.URL, "v1", []string{
		"MCPJ_TOKEN=" + js.Token, "MCPJ_REFERENCE=1", "MCPJ_USERNAME=person-gateway",
		"MCPJ_STEPS=" + strings.Join(append([]string{"agent"}, gatewaySteps...), ","),
		"MCPJ_AGENT_WAIT=1", "MCPJ_AGENT_MARKER=" + agentMarker,
	}, func(personKernel string) {
		// The agent names the kernel as the person sees it (UUID form).
		sc, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": personKernel, "code": fmt.Sprintf("print(%q)", agentMarker)})
		agentRan = sc["status"] == "ok" && strings.Contains(text, agentMarker)
		if !agentRan {
			t.Errorf("agent's execute on the kernel the person started through the gateway: %v %s", sc, text)
		}
	})
	if !res.OK {
		t.Logf("jupyter_server (gateway mode) log:\n%s", js.Log())
	}
	res.mustPass(t, append([]string{"agent"}, gatewaySteps...)...)
	if !agentRan {
		t.Fatal("check.mjs never asked for the agent's execution")
	}

	// The kernel started through jupyter_server is ours, and so are the
	// executions: durable, attributed to the frontend.
	own := res.str("start", "kernel_id")
	ownID, ok := events.FromUUIDForm(own)
	if !ok {
		t.Fatalf("the kernel started through the gateway has id %q, not the UUID form of one of ours", own)
	}
	if res.str("agent", "kernel_id") != own {
		t.Fatalf("check.mjs watched kernel %s for the agent's output, it started %s", res.str("agent", "kernel_id"), own)
	}
	x := frontendExecution(t, srv.agent, own, "hello from the frontend")
	o, _ := x["origin"].(map[string]any)
	if o["kind"] != events.OriginFrontend || o["msg_id"] != res.str("execute", "msg_id") || o["username"] != "person-gateway" || o["session"] == "" {
		t.Fatalf("the execution run through the gateway: origin %v; want kind %q, a session, msg_id %q, username person-gateway",
			o, events.OriginFrontend, res.str("execute", "msg_id"))
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
