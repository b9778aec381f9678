package main

import (
	"strings"
	"testing"
)

// TestExecuteIsWokenOnceAtItsEnd: an execute (no progress token) of code
// that prints 300 lines is woken once, when its final event is applied, not
// at each output batch, and its reply still carries every line: through
// mcp-go's in-process client against the real core and a real kernel.
func TestExecuteIsWokenOnceAtItsEnd(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	before := c.execs.Stats().Wakes
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k,
		"code": "import time\ntime.sleep(0.3)\nfor i in range(300):\n    print('line', i, flush=True)", "timeout_s": 120})
	if sc["status"] != "ok" || !strings.Contains(text, "line 0") || !strings.Contains(text, "line 299") {
		t.Fatalf("execute: %v\n%.2000s", sc, text)
	}
	if w := c.execs.Stats().Wakes - before; w != 1 {
		t.Fatalf("the execute was woken %d times, want once (at its end)", w)
	}
	if n := c.execs.Stats().Awaiting; n != 0 {
		t.Fatalf("%d settle waits left behind", n)
	}
}
