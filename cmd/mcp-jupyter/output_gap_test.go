package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// outputLost returns the ExecutionOutputLost events durable on an
// execution's stream.
func outputLost(t *testing.T, c *core, id string) []events.ExecutionOutputLost {
	t.Helper()
	var got []events.ExecutionOutputLost
	err := c.log.ReadStream(context.Background(), events.ExecutionStream(id), 0, func(e events.Event) error {
		if e.Type != events.TypeExecutionOutputLost {
			return nil
		}
		if err := e.DecodePayload(); err != nil {
			return err
		}
		got = append(got, e.Payload.(events.ExecutionOutputLost))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestOutputBurstLossIsInTheResult (issue 13, finding 7): a real kernel
// displays faster than the server takes it in, with its IOPub send queue
// and our receive queue made small so that its PUB socket drops. The
// result says "outputs incomplete: N messages lost" (N > 0, no more than
// what is missing), the count is durable in the log, and a normal
// execution afterwards carries no such mark.
func TestOutputBurstLossIsInTheResult(t *testing.T) {
	c, connect := inProcess(t)
	c.launcher.IOPubHWM = 10
	c.launcher.Client.MaxQueueMessages = 2
	cl := connect()
	k := startKernelTool(t, cl)
	const n = 20000
	// NB: 2 KB each, 40 MB in all: more than the kernel's TCP buffers hold, so
	// its small send queue overflows whatever the machine's speed.
	code := fmt.Sprintf("from IPython.display import display\nfor i in range(%d):\n    display({'text/plain': str(i) + ' ' + 'x'*2000}, raw=True)", n)
	sc, text := executeToEnd(t, cl, map[string]any{"kernel": k, "code": code, "timeout_s": 300})
	id, _ := sc["execution_id"].(string)
	lost := outputLost(t, c, id)
	if len(lost) == 0 || lost[0].Messages <= 0 {
		t.Fatalf("no ExecutionOutputLost with a count on execution %s: %+v (result %v)", id, lost, sc)
	}
	displays := 0
	for since, more := uint64(0), true; more; {
		v, err := c.execs.Read(context.Background(), id, since)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range v.Outputs {
			if o.MsgType == "display_data" {
				displays++
			}
		}
		since, more = v.Cursor, v.More
	}
	if missing := n - displays; lost[0].Messages < missing || lost[0].Messages > missing+3 {
		t.Fatalf("%d displays of %d recorded, but %d messages counted lost", displays, n, lost[0].Messages)
	}
	want := fmt.Sprintf("outputs incomplete: %d messages lost", lost[0].Messages)
	if sc["outputs_incomplete"] != want || !strings.Contains(text, want) {
		t.Fatalf("the result does not say %q: %v\n%.400s", want, sc, text)
	}
	sc, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print('fine')"})
	if sc["status"] != "ok" || sc["outputs_incomplete"] != nil || strings.Contains(text, "incomplete") || len(outputLost(t, c, sc["execution_id"].(string))) != 0 {
		t.Fatalf("a normal execution is marked incomplete: %v\n%s", sc, text)
	}
}

// TestOutputPrintedWhileServerDownIsAGap (issue 13, finding 7): the server
// stops while a kernel (which outlives it) prints; the kernel prints on
// meanwhile; at the next start the server re-attaches and re-adopts the
// execution, which ends with a recorded gap naming the time the server was
// down — durable, and in get_execution.
func TestOutputPrintedWhileServerDownIsAGap(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cl := coreClient(t, c)
	k := startKernelTool(t, cl)
	dir := t.TempDir()
	gate, progress := filepath.Join(dir, "gate"), filepath.Join(dir, "progress")
	code := fmt.Sprintf("import os, time\ni = 0\nwhile not os.path.exists(%q):\n    print(i, flush=True)\n"+
		"    open(%q + '.tmp', 'w').write(str(i)); os.replace(%q + '.tmp', %q)\n    i += 1\n    time.sleep(0.005)\nprint('done')",
		gate, progress, progress, progress)
	sc, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 1})
	id, _ := sc["execution_id"].(string)
	printed := func() int {
		b, _ := os.ReadFile(progress)
		n, _ := strconv.Atoi(string(b))
		return n
	}
	testkit.WaitUntil(t, 60*time.Second, "the kernel prints", func() (bool, string) { return printed() > 20, strconv.Itoa(printed()) })
	_ = cl.Close()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := printed()
	testkit.WaitUntil(t, 60*time.Second, "the kernel prints while the server is down", func() (bool, string) {
		return printed() > down+100, strconv.Itoa(printed())
	})

	c2, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.close(context.Background()) })
	cl2 := coreClient(t, c2)
	testkit.WaitUntil(t, 60*time.Second, "the execution is re-adopted", func() (bool, string) {
		var reattached bool
		_ = c2.log.ReadStream(context.Background(), events.KernelStream(k), 0, func(e events.Event) error {
			reattached = reattached || e.Type == events.TypeKernelReattached
			return nil
		})
		return reattached, "waiting for KernelReattached"
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sc, text := callTool(t, cl2, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
	for sc["more_output"] == true || sc["status"] == "running" {
		sc, text = callTool(t, cl2, "get_execution", map[string]any{"execution_id": id, "since": sc["cursor"], "wait_s": 30})
	}
	lost := outputLost(t, c2, id)
	if sc["status"] != "ok" || len(lost) != 1 || lost[0].Messages < 100 || !strings.Contains(lost[0].Reason, "while the server was down from") {
		t.Fatalf("after the restart: %v, lost %+v\n%.600s", sc, lost, text)
	}
	want := fmt.Sprintf("outputs incomplete: %d messages lost", lost[0].Messages)
	if sc["outputs_incomplete"] != want {
		t.Fatalf("get_execution does not say %q: %v\n%.400s", want, sc, text)
	}
}

// coreClient is an in-process MCP client of c, closed at the end of the test.
func coreClient(t *testing.T, c *core) *client.Client {
	t.Helper()
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// TestBigBurstLosesNothing (issue 13, finding 7): a loop printing as fast
// as the kernel can, eight times more than the client's receive queue holds
// (made 1 MiB here, so that 8 MB show what 200 MB did against the default)
// — once a single stream message larger than the whole queue, dropped while
// the reply said ok — is recorded whole, in order, with no gap mark.
func TestBigBurstLosesNothing(t *testing.T) {
	c, connect := inProcess(t)
	c.launcher.Client.MaxQueueBytes = 1 << 20
	cl := connect()
	k := startKernelTool(t, cl)
	const lines = 8_000
	id, _ := readWholeExecution(t, cl, k, fmt.Sprintf("for i in range(%d):\n    print('%%07d' %% i + 'x'*992)", lines))
	var text strings.Builder
	for since, more := uint64(0), true; more; {
		v, err := c.execs.Read(context.Background(), id, since)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range v.Outputs {
			if o.MsgType == "stream" {
				var s struct{ Text string }
				if err := json.Unmarshal(o.Content, &s); err != nil {
					t.Fatal(err)
				}
				text.WriteString(s.Text)
			}
		}
		since, more = v.Cursor, v.More
	}
	got := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
	if len(got) != lines {
		t.Fatalf("%d lines recorded, want %d", len(got), lines)
	}
	for i, l := range got {
		if !strings.HasPrefix(l, fmt.Sprintf("%07d", i)) || len(l) != 999 {
			t.Fatalf("line %d is %.20q… (%d bytes)", i, l, len(l))
		}
	}
	if lost := outputLost(t, c, id); len(lost) != 0 {
		t.Fatalf("gaps recorded: %+v", lost)
	}
}
