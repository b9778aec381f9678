package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// inProcessWith is inProcess with the configuration changed first.
func inProcessWith(t testing.TB, change func(*config)) (*core, func() *client.Client) {
	t.Helper()
	cfg := testConfig(t, testkit.TempDataDir(t))
	change(&cfg)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	return c, func() *client.Client {
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, inproc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
}

// callAs calls a tool as principal p (what the HTTP middleware puts in
// the request context), from any goroutine: failures come back as text
// starting "ERROR: ".
func callAs(cl *client.Client, p auth.Principal, name string, args map[string]any) (map[string]any, string) {
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := cl.CallTool(auth.WithPrincipal(ctx, p), req)
	if err != nil {
		return nil, "ERROR: " + err.Error()
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		return nil, "ERROR: " + strings.Join(text, "\n")
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, strings.Join(text, "\n")
}

func agent(name string, maxKernels int) auth.Principal {
	return auth.Principal{Name: name, Scopes: auth.DefaultScopes, MaxKernels: maxKernels}
}

// TestKernelQuotaUnderConcurrentStarts: with --max-kernels 2, four
// start_kernel calls of one principal at once start exactly two kernels;
// the others are refused naming the limit, the setting and the kernels
// that hold it; the two kernels keep working; another principal has its
// own quota, and a principal's own max_kernels overrides the setting.
func TestKernelQuotaUnderConcurrentStarts(t *testing.T) {
	c, connect := inProcessWith(t, func(cfg *config) { cfg.MaxKernels = 2 })
	cl := connect()
	alice := agent("alice", 0)
	var wg sync.WaitGroup
	texts := make([]string, 4)
	for i := range texts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, texts[i] = callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
		}(i)
	}
	wg.Wait()
	var started []string
	for _, text := range texts {
		if !strings.HasPrefix(text, "ERROR") {
			started = append(started, kernelIDPattern.FindString(text))
			continue
		}
		for _, want := range []string{"kernel quota reached", `principal "alice" has 2 of 2 kernels`, "--max-kernels 2", "shutdown_kernel", "nothing was started"} {
			if !strings.Contains(text, want) {
				t.Fatalf("refusal %q does not say %q", text, want)
			}
		}
	}
	if len(started) != 2 {
		t.Fatalf("%d kernels started with --max-kernels 2: %q", len(started), texts)
	}
	live := 0
	for _, k := range c.back.kernels.List() {
		if k.Owner == "alice" {
			live++
		}
	}
	if live != 2 {
		t.Fatalf("alice owns %d kernels", live)
	}
	for _, k := range started {
		if sc, text := callAs(cl, alice, "execute", map[string]any{"kernel": k, "code": "6*7"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
			t.Fatalf("alice's kernel %s after the refusals: %v %s", k, sc, text)
		}
	}
	// The refusal names what holds the quota.
	_, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	for _, k := range started {
		if !strings.Contains(text, k) {
			t.Fatalf("refusal %q does not name kernel %s", text, k)
		}
	}
	// Bob has his own quota, and his own max_kernels 1 overrides --max-kernels.
	bob := agent("bob", 1)
	if _, text := callAs(cl, bob, "start_kernel", map[string]any{"kernelspec": "python3"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("bob's first kernel: %s", text)
	}
	if _, text := callAs(cl, bob, "start_kernel", map[string]any{"kernelspec": "python3"}); !strings.Contains(text, `principal "bob" has 1 of 1 kernels`) ||
		!strings.Contains(text, `max_kernels 1`) {
		t.Fatalf("bob's second kernel: %s", text)
	}
	// Shutting one down frees a place.
	if _, text := callAs(cl, alice, "shutdown_kernel", map[string]any{"kernel": started[0]}); strings.HasPrefix(text, "ERROR") {
		t.Fatal(text)
	}
	if _, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("a start after a shutdown: %s", text)
	}
}

// TestQueueQuotaUnderConcurrentSubmits: with --max-queued-per-principal
// 3, while alice's two kernels are busy, eight submits at once across both
// queue exactly three; the rest are refused saying so; once the kernels
// are free every accepted execution finishes.
func TestQueueQuotaUnderConcurrentSubmits(t *testing.T) {
	c, connect := inProcessWith(t, func(cfg *config) { cfg.MaxQueuedPerPrincipal = 3 })
	cl := connect()
	alice := agent("alice", 0)
	var kernels []string
	for range 2 {
		_, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
		if strings.HasPrefix(text, "ERROR") {
			t.Fatal(text)
		}
		kernels = append(kernels, kernelIDPattern.FindString(text))
	}
	hold := testkit.NewSentinel(t)
	var holders []string
	for _, k := range kernels {
		sc, text := callAs(cl, alice, "execute", map[string]any{"kernel": k, "code": hold.Code(""), "timeout_s": 0.05})
		id, _ := sc["execution_id"].(string)
		if id == "" {
			t.Fatalf("hold kernel %s: %v %s", k, sc, text)
		}
		holders = append(holders, id)
	}
	testkit.WaitUntil(t, 30*time.Second, "both kernels run the held executions", func() (bool, string) {
		n := 0
		for _, id := range holders {
			if x, ok := c.back.queue.Get(id); ok && x.Status == queue.StatusRunning {
				n++
			}
		}
		return n == 2, fmt.Sprint(n, " running")
	})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	texts := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var sc map[string]any
			sc, texts[i] = callAs(cl, alice, "execute", map[string]any{"kernel": kernels[i%2], "code": fmt.Sprintf("print(%d)", i), "timeout_s": 0.05})
			ids[i], _ = sc["execution_id"].(string)
		}(i)
	}
	wg.Wait()
	var accepted []string
	for i, text := range texts {
		if !strings.HasPrefix(text, "ERROR") {
			accepted = append(accepted, ids[i])
			continue
		}
		for _, want := range []string{"queue quota reached", `principal "alice" has 3 of 3 executions waiting`, "--max-queued-per-principal 3", "cancel_execution", "not queued"} {
			if !strings.Contains(text, want) {
				t.Fatalf("refusal %q does not say %q", text, want)
			}
		}
	}
	if len(accepted) != 3 {
		t.Fatalf("%d executions queued with --max-queued-per-principal 3: %q", len(accepted), texts)
	}
	if n := c.back.queue.Waiting("alice", auth.AdminName); n != 3 {
		t.Fatalf("%d of alice's executions wait", n)
	}
	// The admin's submits are not alice's.
	if _, text := callAs(cl, auth.Admin(), "execute", map[string]any{"kernel": kernels[0], "code": "1", "timeout_s": 0.05}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("the admin's submit: %s", text)
	}
	hold.Release()
	for _, id := range append(holders, accepted...) {
		sc, text := callAs(cl, alice, "get_execution", map[string]any{"execution_id": id, "wait_s": 50})
		if sc["status"] != "ok" {
			t.Fatalf("accepted execution %s did not finish: %v %s", id, sc, text)
		}
	}
}
