package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

type recorded struct {
	mu   sync.Mutex
	ds   []events.PolicyDecided
	fail error
}

func (r *recorded) RecordPolicy(_ context.Context, principal string, d events.PolicyDecided) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.ds = append(r.ds, d)
	return nil
}

// policyServer is a Server with policy body and recorder rec, and the
// middleware around a handler that counts its runs.
func policyServer(t *testing.T, body string, rec PolicyRecorder) (*Server, server.ToolHandlerFunc, *int) {
	t.Helper()
	p, err := ParsePolicy("p.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	s := New(newFakeBackend(), Options{Policy: p, Decisions: rec})
	runs := new(int)
	h := s.applyPolicy(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		*runs++
		return mcp.NewToolResultText("ran"), nil
	})
	return s, h, runs
}

func toolCall(tool string, args map[string]any) mcp.CallToolRequest {
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = tool, args
	return req
}

const edgePolicy = `
rules:
  - {name: no-shell, tools: execute, code: 'os\.system', action: deny, reason: no shell}
  - {name: ask, tools: execute, code: SECRET, action: confirm}
`

// TestPolicyFailsClosedWhenItCannotRecord: a decision that cannot be made
// durable refuses the call, and says so; without a recorder likewise.
func TestPolicyFailsClosedWhenItCannotRecord(t *testing.T) {
	ctx := auth.WithPrincipal(context.Background(), auth.Admin())
	rec := &recorded{fail: errors.New("disk full")}
	_, h, runs := policyServer(t, edgePolicy, rec)
	res, _ := h(ctx, toolCall("execute", map[string]any{"kernel": "k1", "code": "os.system('x')"}))
	if !res.IsError || !strings.Contains(textOf(res), "could not be recorded: disk full") || *runs != 0 {
		t.Fatalf("deny with a failing recorder: %s (runs %d)", textOf(res), *runs)
	}
	_, h, runs = policyServer(t, edgePolicy, nil)
	res, _ = h(ctx, toolCall("execute", map[string]any{"kernel": "k1", "code": "SECRET"}))
	if !res.IsError || !strings.Contains(textOf(res), "no recorder configured") || *runs != 0 {
		t.Fatalf("confirm without a recorder: %s (runs %d)", textOf(res), *runs)
	}
	// A call no rule matches runs, recorder or not.
	if res, _ = h(ctx, toolCall("execute", map[string]any{"kernel": "k1", "code": "1+1"})); res.IsError || *runs != 1 {
		t.Fatalf("an unmatched call: %s (runs %d)", textOf(res), *runs)
	}
}

// TestPolicyRefusesForgedAndExpiredStates: a requestState altered by the
// client, sealed with another key, or expired is refused with what to do,
// and runs nothing; one that carries an execution but was forged does not
// get past the policy either.
func TestPolicyRefusesForgedAndExpiredStates(t *testing.T) {
	ctx := auth.WithPrincipal(context.Background(), auth.Admin())
	s, h, runs := policyServer(t, edgePolicy, &recorded{})
	args := map[string]any{"kernel": "k1", "code": "SECRET"}
	req := toolCall("execute", args)
	other := New(newFakeBackend(), Options{})
	approved := roundTrip{Tool: "execute", Args: argsDigest(req), Policy: "n", Approved: true, Execution: "x1"}
	for name, state := range map[string]string{
		"altered":     s.sealRoundTrip(ctx, roundTrip{Tool: "execute", Args: argsDigest(req), Policy: "n"}, time.Now()) + "x",
		"another key": other.sealRoundTrip(ctx, approved, time.Now()),
		"expired":     s.sealRoundTrip(ctx, roundTrip{Tool: "execute", Args: argsDigest(req), Policy: "n"}, time.Now().Add(-25*time.Hour)),
		"garbage":     "not a state",
	} {
		r := req
		r.Params.RequestState = state
		r.Params.InputResponses = mcp.InputResponses{InputRequestPolicy: mcp.NewElicitationInputResponse(mcp.ElicitationResult{
			ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirm": true}}})}
		res, _ := h(ctx, r)
		want := ErrRoundTripTampered.Error()
		if name == "expired" {
			want = ErrRoundTripExpired.Error()
		}
		if !res.IsError || !strings.Contains(textOf(res), want) || *runs != 0 {
			t.Fatalf("%s state: %s (runs %d)", name, textOf(res), *runs)
		}
	}
}

// TestPolicyQuestionShowsTheCall: the form asks one boolean, and its message
// names the tool, kernel and rule and shows the lines the rule matched,
// wherever they are: 400 bytes of comments before `!pip install evil` once
// pushed it out of a head-of-code view, and the user approved it unseen.
// The event keeps the same lines.
func TestPolicyQuestionShowsTheCall(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - {name: ask, tools: execute, code: ['pip\\s+install'], action: confirm, reason: why}\n"))
	if err != nil {
		t.Fatal(err)
	}
	code := strings.Repeat("# a harmless comment, nothing to see here, keep reading\n", 8) + "!pip install evil\nprint('done')\n"
	q := policyQuestion(policyCall{Tool: "execute", Kernel: "k1", Code: code, HasCode: true}, &p.rules[0], `rule "ask" of the server's policy: why`)
	if !strings.HasPrefix(q.Message, `Allow execute on kernel k1? It needs your confirmation under rule "ask" of the server's policy: why.`) ||
		!strings.Contains(q.Message, "    9| !pip install evil") || !strings.Contains(q.Message, fmt.Sprintf("(%d bytes, 10 lines; showing the 1 matching the rule; 9 lines are not shown)", len(code))) ||
		strings.Contains(q.Message, "harmless") {
		t.Fatalf("message: %q", q.Message)
	}
	if err := q.Validate(); err != nil {
		t.Fatalf("the form does not validate: %v", err)
	}
	props := q.RequestedSchema.(map[string]any)["properties"].(map[string]any)
	if len(props) != 1 || props["confirm"].(map[string]any)["type"] != "boolean" {
		t.Fatalf("schema: %+v", q.RequestedSchema)
	}

	// Through the middleware: the event keeps what the user is shown (here
	// the client cannot be asked; the unconfirmable event keeps the same).
	rec := &recorded{}
	_, h, runs := policyServer(t, "rules:\n  - {name: ask, tools: execute, code: ['pip\\s+install'], action: confirm}\n", rec)
	ctx := auth.WithPrincipal(context.Background(), auth.Admin())
	res, _ := h(ctx, toolCall("execute", map[string]any{"kernel": "k1", "code": code}))
	if *runs != 0 || len(rec.ds) != 1 || !strings.Contains(rec.ds[0].Code, "    9| !pip install evil") || strings.Contains(rec.ds[0].Code, "harmless") {
		t.Fatalf("the asked event: %+v (%s)", rec.ds, textOf(res))
	}
}

// TestPolicyCodeShownIsBounded: at most 20 lines of at most 200 bytes
// (cut on a rune boundary), saying more lines match and how many are not
// shown; a rule without patterns shows the first lines.
func TestPolicyCodeShownIsBounded(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - {name: a, tools: execute, code: [SECRET], action: confirm}\n  - {name: b, tools: execute, action: confirm}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 1000 {
		if i%10 == 5 {
			b.WriteString("SECRET" + strings.Repeat("é", 300) + "\n")
		} else {
			b.WriteString("x = 1\n")
		}
	}
	code := b.String()
	shown := policyCodeShown(code, &p.rules[0])
	lines := strings.Split(shown, "\n")
	if len(lines) != 1+policyShownLines || !strings.Contains(lines[0], "1000 lines; showing the 20 matching the rule; more lines match; 980 lines are not shown") ||
		!strings.HasPrefix(lines[1], "    6| SECRET") || !strings.HasPrefix(lines[20], "  196| SECRET") {
		t.Fatalf("shown: %q", lines[:2])
	}
	for _, l := range lines[1:] {
		if len(l) > policyShownLineLen+len("    6| ")+len("…") || !utf8.ValidString(l) || !strings.HasSuffix(l, "…") {
			t.Fatalf("a line of %d bytes, or cut inside a rune: %q", len(l), l)
		}
	}
	head := policyCodeShown("a\nb\n", &p.rules[1])
	if head != "(4 bytes, 2 lines; showing the 2 first)\n    1| a\n    2| b" {
		t.Fatalf("a rule without patterns: %q", head)
	}
}

// fixedNotebooks is a notebook with one code cell, "c1" at index 0, that
// records the cell references CellsToRun was asked for.
type fixedNotebooks struct {
	NotebookBackend
	mu    sync.Mutex
	asked []string
}

func (n *fixedNotebooks) CellsToRun(_ context.Context, path, cell string) ([]CellRun, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.asked = append(n.asked, cell)
	if cell != "c1" && cell != "0" {
		return nil, errors.New("no such cell")
	}
	return []CellRun{{KernelID: "k1", Path: path, CellID: "c1", Source: "x = 1"}}, nil
}

// TestPolicyRunCellByNumber: with a policy set, run_cell with a numeric
// cell index (cell: 0, as agents send it) runs, as it does without one:
// the policy reads the cell the way the handler does.
func TestPolicyRunCellByNumber(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - {name: no-shell, tools: [run_cell], code: 'os\\.system', action: deny}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend()
	submitted := 0
	b.onSubmit = func(b *fakeBackend, id, code string) { submitted++; b.finish(id, "ok") }
	s := New(b, Options{Policy: p, Decisions: &recorded{}})
	s.AddNotebookTools(&fixedNotebooks{})
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	for i, args := range []map[string]any{{"path": "nb.ipynb", "cell": 0}, {"path": "nb.ipynb", "cell_index": 0}, {"path": "nb.ipynb", "cell": "c1"}} {
		if res := call(t, c, "run_cell", args); res.IsError || submitted != i+1 {
			t.Fatalf("run_cell %v under a policy: %s (submitted %d)", args, textOf(res), submitted)
		}
	}
}

// swappingNotebooks is a notebook whose cell changes between two reads,
// as when another agent edits it while the policy checks a run_cell.
type swappingNotebooks struct {
	NotebookBackend
	mu    sync.Mutex
	reads int
}

func (n *swappingNotebooks) CellsToRun(_ context.Context, path, cell string) ([]CellRun, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reads++
	src := "x = 1"
	if n.reads > 1 {
		src = "import os; os.system('true')"
	}
	return []CellRun{{KernelID: "k1", Path: path, CellID: "c1", Source: src}}, nil
}

// TestPolicyRunCellRunsWhatWasChecked: a cell edited between the policy's
// check and the run (a race with another writer) is not run: the deny
// rule cannot be slipped past by swapping the cell's source.
func TestPolicyRunCellRunsWhatWasChecked(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - {name: no-shell, tools: [run_cell], code: 'os\\.system', action: deny}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend()
	submitted := 0
	b.onSubmit = func(b *fakeBackend, id, code string) { submitted++; b.finish(id, "ok") }
	s := New(b, Options{Policy: p, Decisions: &recorded{}})
	nb := &swappingNotebooks{}
	s.AddNotebookTools(nb)
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	res := call(t, c, "run_cell", map[string]any{"path": "nb.ipynb", "cell": "c1"})
	if !res.IsError || !strings.Contains(textOf(res), "cells changed while the server's policy checked this call") || submitted != 0 {
		t.Fatalf("run_cell of a cell swapped after the check: %s (submitted %d)", textOf(res), submitted)
	}
}
