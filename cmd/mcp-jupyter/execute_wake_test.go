package main

import (
	"context"
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

// TestExecuteWokenAtItsEndReturnsAllItsOutput: an execute woken only at its
// end finds its output in the model at once, more than one read's page;
// it returns all of it (up to the reply's byte budget), with the cursor at
// the end, as it did when it read the output while it was produced.
func TestExecuteWokenAtItsEndReturnsAllItsOutput(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": printLines(20_000), "timeout_s": 300})
	if sc["status"] != "ok" || sc["more_output"] == true {
		t.Fatalf("execute of 20,000 lines: %v\n%.300s", sc, text)
	}
	id, _ := sc["execution_id"].(string)
	v, err := c.execs.Read(context.Background(), id, uint64(sc["cursor"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Outputs) != 0 || v.More {
		t.Fatalf("execute's cursor %v is not at the end: %d outputs after it (more %v)", sc["cursor"], len(v.Outputs), v.More)
	}
}
