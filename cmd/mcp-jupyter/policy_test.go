package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// testPolicy is the --policy file the tests run under.
const testPolicy = `
version: 1
rules:
  - name: no-shell
    tools: [execute, run_cell, run_all]
    code: ['\bos\.system\(']
    action: deny
    reason: shell commands are not allowed from agents
  - name: ask-secrets
    tools: [execute, run_cell]
    code: ['SECRET']
    action: confirm
    reason: it touches the secrets
  - name: ask-shutdown
    tools: shutdown_kernel
    action: confirm
`

func writePolicy(t testing.TB, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// answerer is a client's user answering confirmations: it says yes (confirm
// true), no (accept with confirm false), declines or cancels, and keeps
// the questions it was shown.
type answerer struct {
	mu     sync.Mutex
	answer string // "yes", "no", "decline", "cancel"
	asked  []mcp.ElicitationParams
	// meanwhile, when set, runs while the user reads the question (before
	// the answer goes back).
	meanwhile func()
}

func (a *answerer) set(answer string) { a.mu.Lock(); a.answer = answer; a.mu.Unlock() }

func (a *answerer) questions() []mcp.ElicitationParams {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]mcp.ElicitationParams(nil), a.asked...)
}

func (a *answerer) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.mu.Lock()
	meanwhile := a.meanwhile
	a.meanwhile = nil
	a.mu.Unlock()
	if meanwhile != nil {
		meanwhile()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, req.Params)
	r := &mcp.ElicitationResult{}
	if schema, _ := json.Marshal(req.Params.RequestedSchema); strings.Contains(string(schema), `"value"`) {
		// an input() prompt (input.go), not a confirmation
		r.Action, r.Content = mcp.ElicitationResponseActionAccept, map[string]any{"value": "typed-" + fmt.Sprint(len(a.asked))}
		return r, nil
	}
	switch a.answer {
	case "yes":
		r.Action, r.Content = mcp.ElicitationResponseActionAccept, map[string]any{"confirm": true}
	case "no":
		r.Action, r.Content = mcp.ElicitationResponseActionAccept, map[string]any{"confirm": false}
	case "decline":
		r.Action = mcp.ElicitationResponseActionDecline
	default:
		r.Action = mcp.ElicitationResponseActionCancel
	}
	return r, nil
}

// recordingTransport is the client's transport with the tools/call
// requests it sent kept, so a test can send one again as an attacker
// would (a replayed answer, the same answer for other arguments).
type recordingTransport struct {
	transport.Interface
	mu    sync.Mutex
	calls []transport.JSONRPCRequest
	// resent numbers resent requests apart from the client's own (small:
	// a JSON number past 2^53 would not come back equal).
	resent atomic.Int64
}

func (r *recordingTransport) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	if req.Method == string(mcp.MethodToolsCall) {
		r.mu.Lock()
		r.calls = append(r.calls, req)
		r.mu.Unlock()
	}
	return r.Interface.SendRequest(ctx, req)
}

// SetRequestHandler passes server-initiated requests (elicitation/create on
// the older revision) through to the client.
func (r *recordingTransport) SetRequestHandler(h transport.RequestHandler) {
	if b, ok := r.Interface.(transport.BidirectionalInterface); ok {
		b.SetRequestHandler(h)
	}
}

// lastAnswered returns the params of the last tools/call that carried
// inputResponses, as JSON fields.
func (r *recordingTransport) lastAnswered(t testing.TB) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.calls) - 1; i >= 0; i-- {
		b, err := json.Marshal(r.calls[i].Params)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		if fields["inputResponses"] != nil {
			return fields
		}
	}
	t.Fatal("no tools/call with inputResponses was sent")
	return nil
}

// resend sends params as a new tools/call, as a client replaying it would,
// and returns the result's text and whether it is an error.
func (r *recordingTransport) resend(t testing.TB, params map[string]any) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 60*time.Second)
	defer cancel()
	resp, err := r.Interface.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION,
		ID: mcp.NewRequestId(1<<30 + r.resent.Add(1)), Method: string(mcp.MethodToolsCall), Params: params})
	if err != nil {
		t.Fatalf("resend: %v", err)
	}
	if resp.Error != nil {
		return resp.Error.Message, true
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		t.Fatalf("resend result: %v\n%s", err, resp.Result)
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n"), res.IsError
}

// policyDecisions reads the PolicyDecided events of principal's policy
// stream from the log.
func policyDecisions(t testing.TB, l *eventlog.Log, principal string) []events.PolicyDecided {
	t.Helper()
	var out []events.PolicyDecided
	err := l.ReadStream(context.Background(), events.PolicyStream(principal), 0, func(e events.Event) error {
		d, ok := e.Payload.(events.PolicyDecided)
		if !ok {
			return fmt.Errorf("event %d on %s is a %s", e.Seq, e.Stream, e.Type)
		}
		if e.Principal != principal {
			return fmt.Errorf("event %d: principal %q, want %q", e.Seq, e.Principal, principal)
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decisionsOf(ds []events.PolicyDecided) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Rule + ":" + d.Decision
	}
	return out
}

// policyCore opens a real core with --policy set to body and a notebook
// root; it returns the core and a function connecting a client on the
// current revision whose user answers with a.
func policyCore(t *testing.T, body string) (*core, string, func(a *answerer) (*client.Client, *recordingTransport)) {
	t.Helper()
	root := t.TempDir()
	t.Setenv("MCP_NOTEBOOK_ROOT", root)
	t.Setenv("MCP_POLICY", writePolicy(t, body))
	cfg := testConfig(t, testkit.TempDataDir(t))
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	return c, root, func(a *answerer) (*client.Client, *recordingTransport) {
		rec := &recordingTransport{Interface: transport.NewInProcessTransport(c.mcp.MCP())}
		var opts []client.ClientOption
		if a != nil {
			opts = append(opts, client.WithElicitationHandler(a))
		}
		cl := mcpClient(t, client.NewClient(rec, opts...))
		t.Cleanup(func() { _ = cl.Close() })
		if v := cl.ProtocolVersion(); v != mcp.ProtocolVersion20260728 {
			t.Fatalf("negotiated %q, want %s", v, mcp.ProtocolVersion20260728)
		}
		return cl, rec
	}
}

// TestPolicyOnTheCurrentRevision drives --policy through mcp-go's client
// on MCP 2026-07-28 (input requests) against a real core and kernel: a
// deny rule refuses and nothing runs; a confirm rule asks, and runs only
// on yes; a replayed answer and an answer carried to other arguments are
// refused; every decision is a PolicyDecided event in the log.
func TestPolicyOnTheCurrentRevision(t *testing.T) {
	c, _, connect := policyCore(t, testPolicy)
	user := &answerer{answer: "yes"}
	cl, rec := connect(user)
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "runs = []"})

	// deny
	_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import os\nruns.append('shell'); os.system('true')"})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, `rule "no-shell"`) || !strings.Contains(text, "shell commands are not allowed") ||
		!strings.Contains(text, "Nothing ran") {
		t.Fatalf("a denied execute: %s", text)
	}
	if len(user.questions()) != 0 {
		t.Fatalf("a deny rule asked the user: %+v", user.questions())
	}

	// confirm: yes runs it, once
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "SECRET = 41 + 1\nruns.append('yes')\nprint(SECRET)"})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("a confirmed execute: %v %s", sc, text)
	}
	qs := user.questions()
	if len(qs) != 1 || !strings.Contains(qs[0].Message, "Allow execute on kernel "+k) || !strings.Contains(qs[0].Message, `rule "ask-secrets"`) ||
		!strings.Contains(qs[0].Message, "it touches the secrets") || !strings.Contains(qs[0].Message, "SECRET = 41 + 1") {
		t.Fatalf("the question: %+v", qs)
	}
	answered := rec.lastAnswered(t)

	// a replayed answer is refused, and runs nothing
	if text, isErr := rec.resend(t, answered); !isErr || !strings.Contains(text, "already answered") {
		t.Fatalf("a replayed answer: %v %s", isErr, text)
	}
	// the same answer and state for other arguments
	other := map[string]any{}
	for k, v := range answered {
		other[k] = v
	}
	other["arguments"] = map[string]any{"kernel": k, "code": "SECRET = 0\nruns.append('other')"}
	if text, isErr := rec.resend(t, other); !isErr || !strings.Contains(text, "belongs to another call") {
		t.Fatalf("an answer carried to other arguments: %v %s", isErr, text)
	}

	// confirm: no, decline and cancel run nothing
	for _, a := range []string{"no", "decline", "cancel"} {
		user.set(a)
		_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "runs.append('" + a + "')  # SECRET"})
		if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "not confirmed") || !strings.Contains(text, "Nothing ran") {
			t.Fatalf("answer %s: %s", a, text)
		}
	}
	// what ran: the confirmed call, once
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(runs)"}); !strings.Contains(text, "['yes']") {
		t.Fatalf("the kernel ran %s, want only ['yes']", text)
	}

	ds := policyDecisions(t, c.log, "admin")
	want := []string{"no-shell:refused", "ask-secrets:asked", "ask-secrets:confirmed",
		"ask-secrets:asked", "ask-secrets:declined", "ask-secrets:asked", "ask-secrets:declined", "ask-secrets:asked", "ask-secrets:declined"}
	if got := decisionsOf(ds); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("decisions in the log:\n got %v\nwant %v", got, want)
	}
	if ds[0].KernelID != k || ds[0].Action != "deny" || ds[0].CodeSHA256 == "" || !strings.Contains(ds[0].Code, "os.system") {
		t.Fatalf("the refusal's event: %+v", ds[0])
	}
	if ds[1].Request == "" || ds[1].Request != ds[2].Request || ds[3].Request == ds[1].Request {
		t.Fatalf("ask and answer must share a nonce, and each ask have its own: %+v", ds[1:4])
	}
}

// TestPolicyChecksTheCellsRunCellRuns: run_cell's code is the cell's
// source (from the notebook, not the arguments): a deny rule on it
// refuses, whatever the agent calls it with.
func TestPolicyChecksTheCellsRunCellRuns(t *testing.T) {
	c, root, connect := policyCore(t, testPolicy)
	user := &answerer{answer: "yes"}
	cl, _ := connect(user)
	if err := os.MkdirAll(filepath.Join(root, "w"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := must(t, cl, "create_notebook", map[string]any{"path": "w/n.ipynb"})
	sc = must(t, cl, "insert_cell", map[string]any{"path": "w/n.ipynb", "expected_hash": sc["sha256"], "source": "import os\nos.system('true')"})
	shell := sc["cell_id"]
	sc = must(t, cl, "insert_cell", map[string]any{"path": "w/n.ipynb", "expected_hash": sc["sha256"], "source": "SECRET = 7\nprint(SECRET * 6)"})
	secret := sc["cell_id"]
	must(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "notebook": "w/n.ipynb"})
	if _, text := callTool(t, cl, "run_cell", map[string]any{"path": "w/n.ipynb", "cell": shell}); !strings.Contains(text, `refused by rule "no-shell"`) {
		t.Fatalf("run_cell of a denied cell: %s", text)
	}
	if _, text := callTool(t, cl, "run_all", map[string]any{"path": "w/n.ipynb"}); !strings.Contains(text, `refused by rule "no-shell"`) {
		t.Fatalf("run_all with a denied cell: %s", text)
	}
	if sc, text := callTool(t, cl, "run_cell", map[string]any{"path": "w/n.ipynb", "cell": secret}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("a confirmed run_cell: %v %s", sc, text)
	}
	// The cell is edited while the user reads the question: the yes was
	// for the code shown, so nothing runs.
	nb := must(t, cl, "read_notebook", map[string]any{"path": "w/n.ipynb", "outputs": false})
	user.mu.Lock()
	user.meanwhile = func() {
		must(t, cl, "edit_cell", map[string]any{"path": "w/n.ipynb", "expected_hash": nb["sha256"], "cell": secret,
			"source": "SECRET = 'swapped'\nprint('swapped ran')"})
	}
	user.mu.Unlock()
	if _, text := callTool(t, cl, "run_cell", map[string]any{"path": "w/n.ipynb", "cell": secret}); !strings.Contains(text, "the code changed since the confirmation was asked") {
		t.Fatalf("run_cell of a cell edited during the question: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": nb["kernel_id"], "code": "print('value is', globals().get('SEC' + 'RET'))"}); !strings.Contains(text, "value is 7") {
		t.Fatalf("the swapped cell ran: %s", text)
	}
	got := decisionsOf(policyDecisions(t, c.log, "admin"))
	if want := "no-shell:refused no-shell:refused ask-secrets:asked ask-secrets:confirmed ask-secrets:asked"; strings.Join(got, " ") != want {
		t.Fatalf("decisions %v, want %s", got, want)
	}
}

// TestPolicyOffByDefault: without --policy, code a policy would refuse
// runs, and nothing is recorded.
func TestPolicyOffByDefault(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import os\nSECRET = os.system('true')\nprint('ran', SECRET)"}); sc["status"] != "ok" || !strings.Contains(text, "ran 0") {
		t.Fatalf("without --policy every call runs: %v %s", sc, text)
	}
	if ds := policyDecisions(t, c.log, "admin"); len(ds) != 0 {
		t.Fatalf("decisions recorded without a policy: %+v", ds)
	}
}

// TestBadPolicyFileStopsTheServer: a server given a bad policy file does
// not start, and says the line and what to fix.
func TestBadPolicyFileStopsTheServer(t *testing.T) {
	t.Setenv("MCP_POLICY", writePolicy(t, "rules:\n  - name: a\n    tools: execute\n    code: 'os.system('\n    action: deny\n"))
	cfg := testConfig(t, testkit.TempDataDir(t))
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = c.close(context.Background())
		t.Fatal("a bad policy file was accepted")
	}
	if !strings.Contains(err.Error(), "--policy / MCP_POLICY: policy ") || !strings.Contains(err.Error(), "policy.yaml:4: ") ||
		!strings.Contains(err.Error(), "regular expression") {
		t.Fatalf("the refusal: %v", err)
	}
}

// policyStdio runs the real binary over stdio with env, its client wrapped
// in a recordingTransport and configured with opts; stop sends SIGTERM and
// waits for the server to end.
func policyStdio(t *testing.T, bin string, env []string, opts ...client.ClientOption) (cl *client.Client, rec *recordingTransport, stop func()) {
	t.Helper()
	var cmd *exec.Cmd
	tr := transport.NewStdioWithOptions(bin, env, []string{"stdio"},
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		}))
	rec = &recordingTransport{Interface: tr}
	cl = mcpClient(t, client.NewClient(rec, opts...))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _, _ = cmd.Process.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("the server did not end within 60 s of SIGTERM")
				<-done
			}
			_ = cl.Close()
		})
	}
	t.Cleanup(stop)
	return cl, rec, stop
}

// TestPolicyRealBinaryBothRevisions runs the real binary over stdio with
// --policy and drives it with mcp-go's client on both revisions:
// 2025-11-25 with elicitation (mcp-go's bridge asks the user), 2025-11-25
// without (refused: the client cannot be asked), and 2026-07-28 (input
// requests). An answer captured before a SIGTERM restart is refused after
// it (the answered requests are read back from the log). The decisions
// are read back from the Pebble log once the server has stopped.
func TestPolicyRealBinaryBothRevisions(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+testkit.KernelSpecDir(t), "MCP_POLICY="+writePolicy(t, testPolicy))
	legacy := client.WithProtocolVersion(mcp.ProtocolVersion20251125)
	secret := func(tag string) string { return "SECRET = '" + tag + "'\nprint('ran', SECRET)" }

	// 2025-11-25 with elicitation: the bridge asks; yes runs, no does not.
	user := &answerer{answer: "yes"}
	cl, _, stop := policyStdio(t, bin, env, legacy, client.WithElicitationHandler(user))
	if v := cl.ProtocolVersion(); v != mcp.ProtocolVersion20251125 {
		t.Fatalf("negotiated %q, want 2025-11-25", v)
	}
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": secret("legacy-yes")}); sc["status"] != "ok" || !strings.Contains(text, "ran legacy-yes") {
		t.Fatalf("confirmed through elicitation/create: %v %s", sc, text)
	}
	// A confirmed execute that then waits in input() is asked its prompt,
	// not the confirmation again (the bridge re-invokes the handler).
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "SECRET = input('word? ')\nprint('got', SECRET)"}); sc["status"] != "ok" || !strings.Contains(text, "got typed-3") {
		t.Fatalf("confirmed, then input(): %v %s", sc, text)
	}
	user.set("decline")
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": secret("legacy-no")}); !strings.Contains(text, "not confirmed (the user declined)") {
		t.Fatalf("declined through elicitation/create: %s", text)
	}
	if qs := user.questions(); len(qs) != 4 || !strings.Contains(qs[0].Message, `rule "ask-secrets"`) || !strings.Contains(qs[2].Message, "word?") {
		t.Fatalf("questions: %+v", qs)
	}
	stop()

	// 2025-11-25 without elicitation: refused, saying what the client lacks.
	cl, _, stop = policyStdio(t, bin, env, legacy)
	k = startKernelTool(t, cl)
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": secret("unaskable")}); !strings.Contains(text, "this client cannot be asked") ||
		!strings.Contains(text, "declare the elicitation capability") {
		t.Fatalf("a client that cannot be asked: %s", text)
	}
	if _, text := callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": k}); !strings.Contains(text, "cannot be asked") {
		t.Fatalf("shutdown_kernel by a client that cannot be asked: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import os; os.system('true')"}); !strings.Contains(text, `refused by rule "no-shell"`) {
		t.Fatalf("deny on the older revision: %s", text)
	}
	stop()

	// 2026-07-28: input requests; the answer is captured, then the server restarts.
	user = &answerer{answer: "yes"}
	cl, rec, stop := policyStdio(t, bin, env, client.WithElicitationHandler(user))
	if v := cl.ProtocolVersion(); v != mcp.ProtocolVersion20260728 {
		t.Fatalf("negotiated %q, want 2026-07-28", v)
	}
	k = startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": secret("modern-yes")}); sc["status"] != "ok" || !strings.Contains(text, "ran modern-yes") {
		t.Fatalf("confirmed through an input request: %v %s", sc, text)
	}
	answered := rec.lastAnswered(t)
	stop()

	_, rec, stop = policyStdio(t, bin, env, client.WithElicitationHandler(user))
	if text, isErr := rec.resend(t, answered); !isErr || !strings.Contains(text, "already answered") {
		t.Fatalf("an answer replayed after a restart: %v %s", isErr, text)
	}
	stop()

	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := decisionsOf(policyDecisions(t, l, "admin"))
	want := []string{"ask-secrets:asked", "ask-secrets:confirmed", "ask-secrets:asked", "ask-secrets:confirmed", "ask-secrets:asked", "ask-secrets:declined",
		"ask-secrets:unconfirmable", "ask-shutdown:unconfirmable", "no-shell:refused",
		"ask-secrets:asked", "ask-secrets:confirmed"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("decisions in the log:\n got %v\nwant %v", got, want)
	}
	l.Close()
	// Where an operator looks: events tail on the stopped server's data dir.
	out, err := exec.Command(bin, "events", "tail", "--data-dir", dataDir, "--type", "PolicyDecided", "--principal", "admin", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("events tail: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) || !strings.Contains(lines[0], `"decision":"asked"`) || !strings.Contains(lines[0], `"stream":"policy/admin"`) ||
		!strings.Contains(lines[8], `"decision":"refused"`) {
		t.Fatalf("events tail --type PolicyDecided: %d lines, want %d:\n%s", len(lines), len(want), out)
	}
}

// TestPolicyConfirmedOnceThenInput: a confirmed execute that then waits in
// input() (twice) is asked its prompts, never the confirmation again: its
// own retries carry the execution (and Approved). A client on 2026-07-28
// that declared no elicitation is not asked at all: refused, unconfirmable.
func TestPolicyConfirmedOnceThenInput(t *testing.T) {
	c, _, connect := policyCore(t, testPolicy)
	user := &answerer{answer: "yes"}
	cl, _ := connect(user)
	k := startKernelTool(t, cl)
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "SECRET = input('first? ') + '/' + input('second? ')\nprint('got', SECRET)"})
	if sc["status"] != "ok" || !strings.Contains(text, "got typed-2/typed-3") {
		t.Fatalf("confirmed, then two input() prompts: %v %s", sc, text)
	}
	qs := user.questions()
	if len(qs) != 3 || !strings.Contains(qs[0].Message, `rule "ask-secrets"`) || !strings.Contains(qs[1].Message, "first?") || !strings.Contains(qs[2].Message, "second?") {
		t.Fatalf("questions (want the confirmation, then the two prompts): %+v", qs)
	}
	mute, _ := connect(nil)
	if _, text := callTool(t, mute, "execute", map[string]any{"kernel": k, "code": "SECRET = 'mute'"}); !strings.Contains(text, "this client cannot be asked") {
		t.Fatalf("a client without elicitation: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(SECRET)"}); !strings.Contains(text, "typed-2/typed-3") {
		t.Fatalf("the unconfirmable call ran: %s", text)
	}
	got := decisionsOf(policyDecisions(t, c.log, "admin"))
	if want := "ask-secrets:asked ask-secrets:confirmed ask-secrets:unconfirmable ask-secrets:asked ask-secrets:confirmed"; strings.Join(got, " ") != want {
		t.Fatalf("decisions %v, want %s", got, want)
	}
}

// TestPolicyOverHTTPPerPrincipal: over Streamable HTTP (a real listener),
// a rule naming principals binds only them: agent-1 (a named token) may
// not shut a kernel down, the admin may; both are asked about SECRET, the
// agent on 2026-07-28 and the admin on 2025-11-25 through mcp-go's
// elicitation bridge. Each decision is on its caller's stream.
func TestPolicyOverHTTPPerPrincipal(t *testing.T) {
	c, _, _ := policyCore(t, `
rules:
  - name: agents-keep-kernels
    tools: [shutdown_kernel, restart_kernel]
    principals: ['agent-*']
    action: deny
    reason: agents may not stop kernels
  - name: ask-secrets
    tools: execute
    code: SECRET
    action: confirm
`)
	port := serveOn(t, c)
	url := "http://127.0.0.1:" + port
	out, err := principalCLI(t, c.cfg.DataDir, "add", "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	agentToken := printedToken(t, out)
	testkit.WaitUntil(t, 5*time.Second, "agent-1's token accepted", func() (bool, string) {
		s := mcpStatus(t, url, agentToken)
		return s == 200, fmt.Sprint(s)
	})
	connect := func(token string, opts ...client.ClientOption) *client.Client {
		hc, err := transport.NewStreamableHTTP(url+pathMCP, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, client.NewClient(hc, opts...))
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	user := &answerer{answer: "yes"}
	agent := connect(agentToken, client.WithElicitationHandler(user))
	admin := connect(c.token, client.WithElicitationHandler(user), client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if agent.ProtocolVersion() != mcp.ProtocolVersion20260728 || admin.ProtocolVersion() != mcp.ProtocolVersion20251125 {
		t.Fatalf("negotiated %s and %s", agent.ProtocolVersion(), admin.ProtocolVersion())
	}

	k := startKernelTool(t, agent)
	if sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "SECRET = 'agent'\nprint('ran', SECRET)"}); sc["status"] != "ok" || !strings.Contains(text, "ran agent") {
		t.Fatalf("agent-1, confirmed: %v %s", sc, text)
	}
	if _, text := callTool(t, agent, "shutdown_kernel", map[string]any{"kernel": k}); !strings.Contains(text, `refused by rule "agents-keep-kernels"`) ||
		!strings.Contains(text, "agents may not stop kernels") {
		t.Fatalf("agent-1 shuts its kernel down: %s", text)
	}
	ka := startKernelTool(t, admin)
	if sc, text := callTool(t, admin, "execute", map[string]any{"kernel": ka, "code": "SECRET = 'admin'\nprint('ran', SECRET)"}); sc["status"] != "ok" || !strings.Contains(text, "ran admin") {
		t.Fatalf("the admin, confirmed through elicitation/create over HTTP: %v %s", sc, text)
	}
	if _, text := callTool(t, admin, "shutdown_kernel", map[string]any{"kernel": ka}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("the admin shuts its kernel down: %s", text)
	}
	if got := strings.Join(decisionsOf(policyDecisions(t, c.log, "agent-1")), " "); got != "ask-secrets:asked ask-secrets:confirmed agents-keep-kernels:refused" {
		t.Fatalf("agent-1's decisions: %s", got)
	}
	if got := strings.Join(decisionsOf(policyDecisions(t, c.log, "admin")), " "); got != "ask-secrets:asked ask-secrets:confirmed" {
		t.Fatalf("the admin's decisions: %s", got)
	}
}

// TestPolicyOutsideTSClient: the official TypeScript client of 2026-07-28
// (@modelcontextprotocol/client, testkit/outside/mcpsdk2/policy.mjs)
// against the real binary over HTTP with --policy: it accepts the
// confirmation form and its auto-fulfilment runs the call on yes, a decline
// and a deny run nothing, and a manual retry runs once (the same retry
// sent again is refused).
func TestPolicyOutsideTSClient(t *testing.T) {
	node := outsideSDK2Ready(t)
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(t), "MCP_POLICY=" + writePolicy(t, testPolicy)}
	addr := freeAddr(t)
	startServerAt(t, bin, env, addr)
	waitReady(t, addr, 90*time.Second)
	token, err := os.ReadFile(filepath.Join(dataDir, mcpserver.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunNodeJSON(t, testkit.NodeCheck{Node: node, Dir: outsideSDK2Dir, Script: "policy.mjs", Args: []string{"http://" + addr + pathMCP},
		Env: append(os.Environ(), "MCPJ_TOKEN="+strings.TrimSpace(string(token))), Timeout: 5 * time.Minute}, nil)
}
