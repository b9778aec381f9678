package main

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestPlacementFollowsWhatAnnounceSends: node a's heartbeat is what
// (*core).announce really sends (its running kernels, its memory); node b
// announces no kernels and almost no memory. Placement picks a while both
// run nothing (more memory), and b once a runs a real kernel.
func TestPlacementFollowsWhatAnnounceSends(t *testing.T) {
	srv := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.ScopeRead | auth.ScopeExecute | auth.ScopeManage})
	owners := newRoutedOwnership(t)
	a, b := owners.node("a"), owners.node("b")
	b.Announce(natsbus.NodeInfo{MemAvailable: 1})
	testkit.WaitUntil(t, 10*time.Second, "a hears b", func() (bool, string) {
		for _, n := range a.Nodes() {
			if n.Name == "b" && n.MemAvailable == 1 {
				return true, ""
			}
		}
		return false, "b not heard"
	})
	srv.c.announce(a)
	if got := a.Place("python3"); got != "a" {
		t.Fatalf("no kernels anywhere, a has more memory: placed on %s, want a (a announces %+v)", got, a.Nodes())
	}
	must(t, srv.clients["alice"], "start_kernel", map[string]any{})
	srv.c.announce(a)
	if got := a.Place("python3"); got != "b" {
		t.Fatalf("a runs a kernel, b none: placed on %s, want b (announced %+v)", got, a.Nodes())
	}
}

// TestStartKernelWithNotebookStartsWhereReceived: placement would send a
// start_kernel elsewhere, but one bound to a notebook stays on the node
// that received it (the notebook is its file; run_cell runs there).
func TestStartKernelWithNotebookStartsWhereReceived(t *testing.T) {
	st := &routeState{place: func(string) string { return "elsewhere" }}
	r := &clusterRoute{}
	if got := r.node(st, mcpserver.ForwardCall{Tool: "start_kernel", Args: map[string]any{}}); got != "elsewhere" {
		t.Fatalf("start_kernel without a notebook: routed to %q, want the placed node", got)
	}
	call := mcpserver.ForwardCall{Tool: "start_kernel", Args: map[string]any{"notebook": "analysis.ipynb", "kernelspec": "python3"}}
	if got := r.node(st, call); got != "" {
		t.Fatalf("start_kernel with a notebook: routed to %q, want here (\"\")", got)
	}
}

// TestCloseRoutingWaitsForTheTunnelListener: when closeRouting returns,
// the tunnel listener's Serve goroutine has returned.
func TestCloseRoutingWaitsForTheTunnelListener(t *testing.T) {
	srv := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.ScopeRead})
	owners := newRoutedOwnership(t)
	for range 5 {
		owners.route(srv.c, "a")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := srv.c.closeRouting(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		if s := string(buf[:runtime.Stack(buf, true)]); strings.Contains(s, "serveTunnels.func") {
			t.Fatalf("closeRouting returned with the tunnel listener still serving:\n%s", s)
		}
	}
}
