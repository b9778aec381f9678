package mcpserver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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
// names the tool, kernel and rule and shows the head of the code, cut.
func TestPolicyQuestionShowsTheCall(t *testing.T) {
	code := "SECRET = 1\n" + strings.Repeat("é", 1000)
	q := policyQuestion(policyCall{Tool: "execute", Kernel: "k1", Code: code, HasCode: true}, `rule "ask" of the server's policy: why`)
	if !strings.HasPrefix(q.Message, `Allow execute on kernel k1? It needs your confirmation under rule "ask" of the server's policy: why.`) ||
		!strings.Contains(q.Message, "SECRET = 1") || len(q.Message) > 700 || !strings.HasSuffix(q.Message, "…") {
		t.Fatalf("message (%d bytes): %q", len(q.Message), q.Message)
	}
	if err := q.Validate(); err != nil {
		t.Fatalf("the form does not validate: %v", err)
	}
	props := q.RequestedSchema.(map[string]any)["properties"].(map[string]any)
	if len(props) != 1 || props["confirm"].(map[string]any)["type"] != "boolean" {
		t.Fatalf("schema: %+v", q.RequestedSchema)
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
