package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestEventsFilterByPrincipal: alice and bob each start a kernel and run
// code on one server; once it stopped, `events tail|export|show
// --principal` on its data dir show only what the one asked for caused,
// in the public JSON form (with "principal") and the line form.
func TestEventsFilterByPrincipal(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	execs := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		p := agent(name, 0)
		_, text := callAs(cl, p, "start_kernel", map[string]any{"kernelspec": "python3"})
		k := kernelIDPattern.FindString(text)
		sc, text := callAs(cl, p, "execute", map[string]any{"kernel": k, "code": "print('hello from " + name + "')"})
		if sc["status"] != "ok" {
			t.Fatalf("%s's execution: %v %s", name, sc, text)
		}
		execs[name], _ = sc["execution_id"].(string)
	}
	_ = cl.Close()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := cfg.DataDir

	lines := func(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }
	out := mustEvents(t, "tail", "--data-dir", dir, "--principal", "alice")
	for _, l := range lines(out) {
		if !strings.Contains(l, " by alice") || strings.Contains(l, "bob") {
			t.Fatalf("tail --principal alice printed %q", l)
		}
	}
	for _, want := range []string{"KernelStarted", "ExecutionQueued", "ExecutionFinished", "hello from alice"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tail --principal alice lacks %s:\n%s", want, out)
		}
	}

	// JSON Lines: every one is bob's and is the public form of the event.
	exported := lines(mustEvents(t, "export", "--data-dir", dir, "--principal", "bob"))
	l, err := eventlog.Open(filepath.Join(dir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range exported {
		var e events.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Principal != "bob" {
			t.Fatalf("export --principal bob wrote an event of %q: %s", e.Principal, line)
		}
		stored, err := l.Get(e.Seq)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := stored.MarshalJSON()
		if line != string(want) {
			t.Fatalf("export line is not the public form:\n got %s\nwant %s", line, want)
		}
	}
	_ = l.Close()

	// "-": the server's own (started, stopped, re-attached ...), nobody's.
	for _, line := range lines(mustEvents(t, "tail", "--json", "--data-dir", dir, "--principal", "-")) {
		if strings.Contains(line, `"principal"`) {
			t.Fatalf("tail --principal - printed %s", line)
		}
	}
	if out := mustEvents(t, "show", execs["alice"], "--data-dir", dir, "--principal", "alice"); !strings.Contains(out, "by alice") || !strings.Contains(out, "hello from alice") {
		t.Fatalf("show alice's execution as alice:\n%s", out)
	}
	if _, err := events_(t, "show", execs["alice"], "--data-dir", dir, "--principal", "bob"); err == nil || !strings.Contains(err.Error(), `caused by "alice"`) {
		t.Fatalf("show alice's execution --principal bob: %v", err)
	}
}
