package mcpserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestExecuteWaitsForTheEndNotForTheSubmit: execute waits for its
// execution's end, woken when the end is applied, and never for the
// submit's own durability first (the end's durability implies it): with a
// submit whose Durable would block forever, a finished execution is
// answered at once and Durable is never called.
func TestExecuteWaitsForTheEndNotForTheSubmit(t *testing.T) {
	b := newFakeBackend()
	b.durable = make(chan struct{}) // never durable on its own
	c := startClient(t, b, Options{})
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "print(1)", "timeout_s": 60}), "status: ok")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.durableWaits != 0 {
		t.Fatalf("execute waited %d times for the submit's durability before answering a finished execution", b.durableWaits)
	}
}

// TestExecuteRunningReplyWaitsForDurability: an execute whose timeout_s
// passes before the end replies "running" only once the submit is
// durable: a reply is a promise the log must keep.
func TestExecuteRunningReplyWaitsForDurability(t *testing.T) {
	b := newFakeBackend()
	b.durable = make(chan struct{})
	b.onSubmit = func(*fakeBackend, string, string) {} // runs on
	c := startClient(t, b, Options{})
	replied := make(chan string, 1)
	go func() {
		var req mcp.CallToolRequest
		req.Params.Name = "execute"
		req.Params.Arguments = map[string]any{"kernel": "k1", "code": "import time; time.sleep(100)", "timeout_s": 0.01}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := c.CallTool(asAdmin(ctx), req)
		if err != nil {
			replied <- "protocol error: " + err.Error()
			return
		}
		replied <- textOf(res)
	}()
	testkit.WaitUntil(t, 30*time.Second, "execute waits for the submit's durability", func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.durableWaits == 1, fmt.Sprintf("%d waits", b.durableWaits)
	})
	select {
	case text := <-replied:
		t.Fatalf("execute replied while its submit was not durable: %s", text)
	default:
	}
	close(b.durable)
	text := testkit.Receive(t, replied, 30*time.Second, "the execute reply")
	if want := "status: " + string(queue.StatusRunning); !strings.Contains(text, want) {
		t.Fatalf("reply lacks %q:\n%s", want, text)
	}
}
