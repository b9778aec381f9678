package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestOwnershipOverHTTPWithTokens: two agents with their own tokens from
// `principal add` drive one real server over Streamable HTTP. The kernel
// each starts is owned by it, its events carry it, its checkpoint "x" is
// its own, and alice's own --max-kernels 1 refuses her second kernel while
// bob's start goes through.
func TestOwnershipOverHTTPWithTokens(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	dir := c.cfg.DataDir
	tokens := map[string]string{}
	for _, add := range [][]string{{"add", "alice", "--max-kernels", "1"}, {"add", "bob"}} {
		out, err := principalCLI(t, dir, add...)
		if err != nil {
			t.Fatal(err)
		}
		tokens[add[1]] = printedToken(t, out)
	}
	kernels := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		testkit.WaitUntil(t, 5*time.Second, name+"'s token accepted", func() (bool, string) {
			s := mcpStatus(t, ts.URL, tokens[name])
			return s == 200, fmt.Sprint(s)
		})
		cl := httpMCPClient(t, ts.URL, tokens[name])
		kernels[name] = startKernelTool(t, cl)
		if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": kernels[name], "code": "v = '" + name + "'"}); sc["status"] != "ok" {
			t.Fatalf("%s: %v %s", name, sc, text)
		}
		if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": kernels[name], "name": "x"}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("%s saves x: %s", name, text)
		}
		if k, ok := c.back.kernels.Get(kernels[name]); !ok || k.Owner != name {
			t.Fatalf("%s's kernel has owner %q", name, k.Owner)
		}
	}
	alice := httpMCPClient(t, ts.URL, tokens["alice"])
	if _, text := callTool(t, alice, "start_kernel", map[string]any{"kernelspec": "python3"}); !strings.Contains(text, `principal "alice" has 1 of 1 kernels`) ||
		!strings.Contains(text, "max_kernels 1") || !strings.Contains(text, kernels["alice"]) {
		t.Fatalf("alice's second kernel: %s", text)
	}
	sc, text := callTool(t, alice, "list_checkpoints", nil)
	if list, _ := sc["checkpoints"].([]any); len(list) != 1 || list[0].(map[string]any)["owner"] != "alice" {
		t.Fatalf("alice's checkpoints: %s", text)
	}
	// The log says who did what.
	for name, k := range kernels {
		var types []string
		err := c.log.ReadKernel(context.Background(), k, 0, func(e events.Event) error {
			if e.Type == events.TypeKernelStarted || e.Type == events.TypeExecutionQueued || e.Type == events.TypeExecutionFinished {
				if e.Principal != name {
					return fmt.Errorf("%s on %s's kernel carries %q", e.Type, name, e.Principal)
				}
				types = append(types, e.Type)
			}
			return nil
		})
		if err != nil || len(types) < 3 {
			t.Fatalf("%s's kernel events %v: %v", name, types, err)
		}
	}
}
