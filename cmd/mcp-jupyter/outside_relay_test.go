package main

import (
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestOutsideRelayedRepliesAlwaysArrive: a frontend's completion and
// inspection requests (relayed live to the kernel) each get their reply,
// every time, in both framings. The kernel's status idle for such a request
// comes through the log while the reply comes live, in either order (NOTES:
// their order is not fixed); the reply must not be dropped when the idle
// wins. Found through the gateway-mode jupyter_server, where about one
// completion in three never answered; 30 in a row make the race show.
func TestOutsideRelayedRepliesAlwaysArrive(t *testing.T) {
	srv := startLabServer(t)
	kernel, ok := events.UUIDForm(startKernelTool(t, srv.agent))
	if !ok {
		t.Fatal("kernel id without a UUID form")
	}
	for _, v1 := range []bool{true, false} {
		f := attachRaw(t, srv, kernel, "relay-"+randHex(6), v1)
		for i := 0; i < 30; i++ {
			msgType, content := "complete_request", map[string]any{"code": "import o", "cursor_pos": 8}
			if i%2 == 1 {
				msgType, content = "inspect_request", map[string]any{"code": "print", "cursor_pos": 5, "detail_level": 0}
			}
			id := f.send("shell", msgType, content)
			r := f.waitFor(msgType+" reply", 20*time.Second, func(m rawMsg) bool {
				return m.Channel == "shell" && m.parentID() == id
			})
			if r.Content["status"] != "ok" {
				t.Fatalf("request %d (%s, v1 %v): reply %s %v", i, msgType, v1, r.msgType(), r.Content)
			}
		}
	}
}
