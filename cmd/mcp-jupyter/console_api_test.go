package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// apiCall is one request to the console's API as a browser page makes it
// (the bearer header; no cookie).
type apiCall struct {
	method, path, token, body string
	header                    map[string]string
}

// consoleDo sends call to hostPort and returns the status and body.
func consoleDo(t testing.TB, hostPort string, call apiCall) (int, []byte) {
	t.Helper()
	if call.method == "" {
		call.method = "GET"
	}
	var body io.Reader
	if call.body != "" {
		body = strings.NewReader(call.body)
	}
	req, err := http.NewRequest(call.method, "http://"+hostPort+call.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if call.token != "" {
		req.Header.Set("Authorization", "Bearer "+call.token)
	}
	if call.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range call.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", call.method, call.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", call.method, call.path, err)
	}
	return resp.StatusCode, b
}

// consoleGet GETs path as token and decodes a 200 answer into v.
func consoleGet(t testing.TB, hostPort, path, token string, v any) {
	t.Helper()
	code, body := consoleDo(t, hostPort, apiCall{path: path, token: token})
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
}

// consoleError asserts that call answers status with a JSON error and
// returns its message.
func consoleError(t testing.TB, hostPort string, call apiCall, status int) string {
	t.Helper()
	code, body := consoleDo(t, hostPort, call)
	if code != status {
		t.Fatalf("%s %s: %d %s, want %d", call.method, call.path, code, body, status)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("%s %s: %d: not a JSON error: %s", call.method, call.path, code, body)
	}
	return e.Error
}

// streamText joins the stream texts of outputs.
func streamText(t testing.TB, outs []struct {
	Seq     uint64          `json:"seq"`
	MsgType string          `json:"msg_type"`
	Content json.RawMessage `json:"content"`
}) string {
	t.Helper()
	var sb strings.Builder
	for _, o := range outs {
		if o.MsgType != "stream" {
			continue
		}
		var c struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(o.Content, &c); err != nil {
			t.Fatalf("stream content %s: %v", o.Content, err)
		}
		sb.WriteString(c.Text)
	}
	return sb.String()
}

// outputsPage is GET /ui/api/executions/{id}'s answer as the page reads it.
type outputsPage struct {
	Execution console.Execution `json:"execution"`
	Outputs   []struct {
		Seq     uint64          `json:"seq"`
		MsgType string          `json:"msg_type"`
		Content json.RawMessage `json:"content"`
	} `json:"outputs"`
	Cursor uint64 `json:"cursor"`
	More   bool   `json:"more"`
}

// TestConsoleReadAPI: alice and bob, each with a real kernel on a real
// HTTP server. Each sees only its own kernels and executions through the
// console's read API (the other's are 404 in the words an unknown id
// gets); outputs come back raw with a cursor, and since=cursor returns
// nothing already read; /me says who and what they may do; without a
// token every route is 401, from another site's page 403; the page itself
// is served without a token and holds nothing of the kernels.
func TestConsoleReadAPI(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "reader": auth.ScopeRead})
	hp := ps.hostPort
	ka := startKernelTool(t, ps.clients["alice"])
	kb := startKernelTool(t, ps.clients["bob"])
	xa := executeOK(t, ps, "alice", ka, "print('hello from alice')")
	xb := executeOK(t, ps, "bob", kb, "print('hello from bob')")

	// /me
	var me console.Me
	consoleGet(t, hp, "/ui/api/me", ps.tokens["alice"], &me)
	if me.Name != "alice" || !me.CanSteer || !me.CanManage || me.Admin || !strings.Contains(strings.Join(me.Scopes, ","), "execute") {
		t.Fatalf("alice's /me: %+v", me)
	}
	consoleGet(t, hp, "/ui/api/me", ps.tokens["reader"], &me)
	if me.Name != "reader" || me.CanSteer || me.CanManage || strings.Join(me.Scopes, ",") != "read" {
		t.Fatalf("reader's /me: %+v", me)
	}

	// /now: each its own.
	var now console.Now
	consoleGet(t, hp, "/ui/api/now", ps.tokens["alice"], &now)
	if len(now.Kernels) != 1 || now.Kernels[0].ID != ka || now.Seq == 0 {
		t.Fatalf("alice's /now: %+v, want her kernel %s alone", now, ka)
	}
	k := now.Kernels[0]
	if k.Owner != "alice" || k.State != "running" || k.Kernelspec != "python3" || k.Label != "e2e" || k.UUID == "" ||
		k.LastActivity.IsZero() || k.StartedAt.IsZero() || k.Running != "" || k.QueueDepth != 0 {
		t.Fatalf("alice's kernel on /now: %+v", k)
	}
	consoleGet(t, hp, "/ui/api/now", ps.tokens["admin"], &now)
	if len(now.Kernels) != 2 {
		t.Fatalf("the admin's /now: %+v, want both kernels", now)
	}

	// Executions of alice's kernel, newest first, with who submitted them.
	var page console.ExecutionsPage
	consoleGet(t, hp, "/ui/api/kernels/"+ka+"/executions", ps.tokens["alice"], &page)
	if len(page.Executions) != 1 || page.More {
		t.Fatalf("alice's executions: %+v", page)
	}
	x := page.Executions[0]
	if x.ID != xa || x.Status != "ok" || x.Submitter != (console.Submitter{Kind: "agent", Name: "alice"}) || x.QueuedSeq == 0 {
		t.Fatalf("alice's execution: %+v", x)
	}
	// The UUID form names the same kernel (frontends show it).
	consoleGet(t, hp, "/ui/api/kernels/"+k.UUID+"/executions", ps.tokens["alice"], &page)
	if len(page.Executions) != 1 || page.Executions[0].ID != xa {
		t.Fatalf("alice's executions by the UUID form: %+v", page)
	}

	// Outputs, raw, with a cursor; since=cursor has nothing more.
	var out outputsPage
	consoleGet(t, hp, "/ui/api/executions/"+xa, ps.tokens["alice"], &out)
	if got := streamText(t, out.Outputs); got != "hello from alice\n" || out.More || out.Cursor == 0 || out.Execution.ID != xa {
		t.Fatalf("alice's outputs: %q more %v cursor %d", got, out.More, out.Cursor)
	}
	if out.Execution.Submitter.Kind != "agent" {
		t.Fatalf("submitter: %+v", out.Execution.Submitter)
	}
	var after outputsPage
	consoleGet(t, hp, "/ui/api/executions/"+xa+"?since="+strconv.FormatUint(out.Cursor, 10), ps.tokens["alice"], &after)
	if len(after.Outputs) != 0 || after.Outputs == nil {
		t.Fatalf("since=cursor: %+v, want an empty list", after.Outputs)
	}

	// Bob sees nothing of alice's, in the words an unknown id gets.
	consoleGet(t, hp, "/ui/api/now", ps.tokens["bob"], &now)
	if len(now.Kernels) != 1 || now.Kernels[0].ID != kb {
		t.Fatalf("bob's /now: %+v", now)
	}
	const unknownKernel, unknownExec = "01jzzzzzzzzzzzzzzzzzzzzzzz", "01jyyyyyyyyyyyyyyyyyyyyyyy"
	sameAs404 := func(path func(id string) string, hidden, unknown string) {
		t.Helper()
		a := consoleError(t, hp, apiCall{path: path(hidden), token: ps.tokens["bob"]}, http.StatusNotFound)
		b := consoleError(t, hp, apiCall{path: path(unknown), token: ps.tokens["bob"]}, http.StatusNotFound)
		if strings.ReplaceAll(a, hidden, "ID") != strings.ReplaceAll(b, unknown, "ID") {
			t.Fatalf("a foreign id reads differently from an unknown one:\n%s\n%s", a, b)
		}
	}
	sameAs404(func(id string) string { return "/ui/api/kernels/" + id + "/executions" }, ka, unknownKernel)
	sameAs404(func(id string) string { return "/ui/api/executions/" + id }, xa, unknownExec)
	sameAs404(func(id string) string { return "/ui/api/executions/" + id + "?since=0" }, xa, unknownExec)
	if code, body := consoleDo(t, hp, apiCall{method: "POST", path: "/ui/api/executions/" + xa + "/fulltext", token: ps.tokens["bob"], body: `{"seq":1}`}); code != http.StatusNotFound {
		t.Fatalf("bob's fulltext of alice's execution: %d %s", code, body)
	}
	consoleGet(t, hp, "/ui/api/executions/"+xb, ps.tokens["bob"], &out)
	if streamText(t, out.Outputs) != "hello from bob\n" {
		t.Fatalf("bob's own outputs: %+v", out)
	}

	// Bad input: 400 saying what was wrong.
	for path, want := range map[string]string{
		"/ui/api/executions/" + xa + "?since=-1":          "since",
		"/ui/api/executions/" + xa + "?since=abc":         "since",
		"/ui/api/kernels/" + ka + "/executions?limit=0":   "limit",
		"/ui/api/kernels/" + ka + "/executions?limit=x":   "limit",
		"/ui/api/kernels/" + ka + "/executions?limit=501": "limit",
		"/ui/api/kernels/" + ka + "/executions?before=-3": "before",
		"/ui/api/executions/a.b":                          "not a valid execution id",
		"/ui/api/kernels/a.b/executions":                  "not a valid kernel id",
	} {
		if msg := consoleError(t, hp, apiCall{path: path, token: ps.tokens["alice"]}, http.StatusBadRequest); !strings.Contains(msg, want) {
			t.Errorf("GET %s: %q does not say %q", path, msg, want)
		}
	}

	if msg := consoleError(t, hp, apiCall{path: "/ui/api/nosuch", token: ps.tokens["alice"]}, http.StatusNotFound); !strings.Contains(msg, "docs/console.md") {
		t.Errorf("an unknown API path: %q", msg)
	}

	// No token: 401 on every route; a foreign Origin: 403 even with one.
	routes := []apiCall{{path: "/ui/api/me"}, {path: "/ui/api/now"}, {path: "/ui/api/kernels/" + ka + "/executions"},
		{path: "/ui/api/executions/" + xa}, {method: "POST", path: "/ui/api/executions/" + xa + "/fulltext", body: `{"seq":1}`},
		{method: "POST", path: "/ui/api/kernels/" + ka + "/interrupt"}, {method: "POST", path: "/ui/api/kernels/" + ka + "/restart", body: `{"confirm":true}`},
		{method: "POST", path: "/ui/api/executions/" + xa + "/cancel"}, {path: "/ui/api/kernels/" + ka + "/checkpoints"},
		{method: "POST", path: "/ui/api/kernels/" + ka + "/checkpoints", body: `{"name":"x"}`},
		{method: "POST", path: "/ui/api/kernels/" + ka + "/checkpoints/x/load", body: `{"confirm":true}`}}
	for _, r := range routes {
		code, body := consoleDo(t, hp, r)
		if code != http.StatusUnauthorized || bytes.Contains(body, []byte(ka)) || bytes.Contains(body, []byte("hello")) {
			t.Errorf("%s %s without a token: %d %s, want 401 telling nothing", r.method, r.path, code, body)
		}
		r.token = ps.tokens["admin"]
		r.header = map[string]string{"Origin": "https://evil.example"}
		if code, body := consoleDo(t, hp, r); code != http.StatusForbidden {
			t.Errorf("%s %s from another site's page: %d %s, want 403", r.method, r.path, code, body)
		}
	}

	// The page: served without a token, nothing of the kernels in it.
	for _, path := range []string{"/ui/", "/ui/index.html", "/ui/api.js", "/ui/app.js"} {
		code, body := consoleDo(t, hp, apiCall{path: path})
		if code != http.StatusOK {
			t.Fatalf("GET %s without a token: %d", path, code)
		}
		for _, secret := range []string{ka, kb, xa, "hello from", ps.tokens["admin"]} {
			if bytes.Contains(body, []byte(secret)) {
				t.Fatalf("GET %s holds %q", path, secret)
			}
		}
	}

	// A huge ?kernel= is no kernel id (400), echoed clipped.
	long := strings.Repeat("k", 4000)
	msg := consoleError(t, hp, apiCall{path: "/ui/api/timeline?kernel=" + long, token: ps.tokens["alice"]}, http.StatusBadRequest)
	if len(msg) > 400 || !strings.Contains(msg, "is not a valid kernel id") || !strings.Contains(msg, "k…") {
		t.Errorf("timeline?kernel=<4000 characters>: a %d-byte message: %.300q", len(msg), msg)
	}
}

// consolePost POSTs body to path as token and returns the status and body.
func consolePost(t testing.TB, hostPort, path, token, body string) (int, []byte) {
	t.Helper()
	return consoleDo(t, hostPort, apiCall{method: "POST", path: path, token: token, body: body})
}

// waitStatus waits until execution x has status want, as token reads it.
func waitStatus(t testing.TB, hostPort, token, x, want string) outputsPage {
	t.Helper()
	var out outputsPage
	testkit.WaitUntil(t, 60*time.Second, "execution "+x+" "+want, func() (bool, string) {
		out = outputsPage{}
		consoleGet(t, hostPort, "/ui/api/executions/"+x, token, &out)
		return string(out.Execution.Status) == want, string(out.Execution.Status)
	})
	return out
}

// submit queues code on kernel k as who and returns within 0.1 s.
func submit(t testing.TB, ps *principalsServer, who, k, code string) string {
	t.Helper()
	sc, text := callTool(t, ps.clients[who], "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 0.1})
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("%s's execute on %s: %v %s", who, k, sc, text)
	}
	return id
}

// oneEventBy requires exactly one event of type typ after seq after
// (payload field key equal to value) and that it names principal who; it
// returns the log's last seq.
func oneEventBy(t testing.TB, ps *principalsServer, after uint64, typ, key, value, who string) uint64 {
	t.Helper()
	var found []edgeEvent
	last := after
	for _, e := range eventsAPI(t, ps.hostPort, ps.tokens["admin"]) {
		last = max(last, e.Seq)
		if e.Seq <= after || e.Type != typ {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(e.Payload, &fields); err != nil {
			t.Fatalf("%s payload %s: %v", typ, e.Payload, err)
		}
		if fields[key] == value {
			found = append(found, e)
		}
	}
	if len(found) != 1 || found[0].Principal != who {
		t.Fatalf("%s events with %s=%s after seq %d: %v, want exactly one by %q", typ, key, value, after, found, who)
	}
	return last
}

// lastSeq is the log's last seq as the admin reads it.
func lastSeq(t testing.TB, ps *principalsServer) uint64 {
	t.Helper()
	var last uint64
	for _, e := range eventsAPI(t, ps.hostPort, ps.tokens["admin"]) {
		last = max(last, e.Seq)
	}
	return last
}

// TestConsoleSteering: a person steers alice's kernel through the console
// API as the MCP tools would. Interrupt stops a running time.sleep (its
// status interrupted) and KernelInterrupted carries alice's principal;
// cancel withdraws a queued execution (and is 409 once it is done);
// restart without confirm is 400 and with it the variables are gone;
// checkpoint save then load brings a variable back; overwriting a saved
// checkpoint needs confirm (without it 400, the old one unchanged). Every
// command appends exactly one event of its kind naming the caller
// (ExecutionCancelled of both cancel paths, KernelInterrupted,
// CheckpointSaved, CheckpointLoaded; KernelRestarted names the admin who
// restarted alice's kernel). A read-only principal is 403 naming the scope
// it lacks; bob, given read on the kernel, is 403 saying whom to ask.
func TestConsoleSteering(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "carol": auth.DefaultScopes,
		"reader": auth.ScopeRead})
	hp, tok := ps.hostPort, ps.tokens["alice"]
	k := startKernelTool(t, ps.clients["alice"])
	must(t, ps.clients["alice"], "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	done := executeOK(t, ps, "alice", k, "1")

	// Carol, who has nothing of alice's, gets every command on it as 404 in
	// the words an unknown id gets.
	const unknownKernel, unknownExec = "01jzzzzzzzzzzzzzzzzzzzzzzz", "01jyyyyyyyyyyyyyyyyyyyyyyy"
	for _, c := range []struct{ method, path, body, hidden, unknown string }{
		{"POST", "/ui/api/kernels/%s/interrupt", "", k, unknownKernel},
		{"POST", "/ui/api/kernels/%s/restart", `{"confirm":true}`, k, unknownKernel},
		{"GET", "/ui/api/kernels/%s/checkpoints", "", k, unknownKernel},
		{"POST", "/ui/api/kernels/%s/checkpoints", `{"name":"x"}`, k, unknownKernel},
		{"POST", "/ui/api/kernels/%s/checkpoints/x/load", `{"confirm":true}`, k, unknownKernel},
		{"POST", "/ui/api/executions/%s/cancel", "", done, unknownExec},
	} {
		a := consoleError(t, hp, apiCall{method: c.method, path: fmt.Sprintf(c.path, c.hidden), token: ps.tokens["carol"], body: c.body}, http.StatusNotFound)
		b := consoleError(t, hp, apiCall{method: c.method, path: fmt.Sprintf(c.path, c.unknown), token: ps.tokens["carol"], body: c.body}, http.StatusNotFound)
		if strings.ReplaceAll(a, c.hidden, "ID") != strings.ReplaceAll(b, c.unknown, "ID") {
			t.Errorf("%s %s: a foreign id reads differently from an unknown one:\n%s\n%s", c.method, c.path, a, b)
		}
	}

	// Scopes and shares.
	for path, scope := range map[string]string{"/ui/api/kernels/" + k + "/interrupt": "execute", "/ui/api/kernels/" + k + "/restart": "manage",
		"/ui/api/kernels/" + k + "/checkpoints": "manage", "/ui/api/kernels/" + k + "/checkpoints/x/load": "manage"} {
		msg := consoleError(t, hp, apiCall{method: "POST", path: path, token: ps.tokens["reader"], body: `{"confirm":true}`}, http.StatusForbidden)
		if !strings.Contains(msg, "the "+scope+" scope") || !strings.Contains(msg, `"reader"`) {
			t.Errorf("reader's POST %s: %q does not name the %s scope", path, msg, scope)
		}
	}
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/interrupt", token: ps.tokens["bob"]}, http.StatusForbidden); !strings.Contains(msg, "alice") {
		t.Errorf("bob (read share) interrupting: %q does not say whom to ask", msg)
	}

	// Interrupt a running sleep.
	running := submit(t, ps, "alice", k, "import time\nprint('sleeping', flush=True)\ntime.sleep(120)")
	pipelined := submit(t, ps, "alice", k, "after_pipelined = 1")
	queued := submit(t, ps, "alice", k, "after_queued = 1")
	testkit.WaitUntil(t, 60*time.Second, "the sleep printed", func() (bool, string) {
		var out outputsPage
		consoleGet(t, hp, "/ui/api/executions/"+running, tok, &out)
		return strings.Contains(streamText(t, out.Outputs), "sleeping"), string(out.Execution.Status)
	})
	// Cancel: the server-queued one is withdrawn, the pipelined one's abort asked.
	before := lastSeq(t, ps)
	var cr console.CancelResult
	code, body := consolePost(t, hp, "/ui/api/executions/"+queued+"/cancel", tok, "")
	if code != http.StatusOK || json.Unmarshal(body, &cr) != nil || cr.Path != console.CancelWithdrawn {
		t.Fatalf("cancel the queued execution: %d %s", code, body)
	}
	waitStatus(t, hp, tok, queued, "cancelled")
	code, body = consolePost(t, hp, "/ui/api/executions/"+pipelined+"/cancel", tok, "")
	if code != http.StatusOK || json.Unmarshal(body, &cr) != nil || cr.Path != console.CancelAbortRequested {
		t.Fatalf("cancel the pipelined execution: %d %s", code, body)
	}
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/executions/" + queued + "/cancel", token: tok}, http.StatusConflict); !strings.Contains(msg, "cancelled") {
		t.Errorf("cancel of a cancelled execution: %q", msg)
	}
	code, body = consolePost(t, hp, "/ui/api/kernels/"+k+"/interrupt", tok, "")
	if code != http.StatusAccepted {
		t.Fatalf("interrupt: %d %s", code, body)
	}
	waitStatus(t, hp, tok, running, "interrupted")
	waitStatus(t, hp, tok, pipelined, "cancelled")
	oneEventBy(t, ps, before, "ExecutionCancelled", "execution_id", queued, "alice")
	oneEventBy(t, ps, before, "ExecutionCancelled", "execution_id", pipelined, "alice")
	oneEventBy(t, ps, before, "KernelInterrupted", "kernel_id", k, "alice")
	var interrupted []edgeEvent
	for _, e := range eventsAPI(t, hp, ps.tokens["admin"]) {
		if e.Type == "KernelInterrupted" && e.Kernel == k {
			interrupted = append(interrupted, e)
		}
	}
	if len(interrupted) != 1 || interrupted[0].Principal != "alice" {
		t.Fatalf("KernelInterrupted events: %v, want one by alice", interrupted)
	}

	// Checkpoint save, then load after the variable is gone.
	executeOK(t, ps, "alice", k, "kept = 7")
	before = lastSeq(t, ps)
	code, body = consolePost(t, hp, "/ui/api/kernels/"+k+"/checkpoints", tok, `{"name":"friday"}`)
	var cp console.Checkpoint
	if code != http.StatusOK || json.Unmarshal(body, &cp) != nil || cp.Name != "friday" || !slices.Contains(cp.Variables, "kept") {
		t.Fatalf("save: %d %s", code, body)
	}
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/checkpoints", token: tok, body: `{"name":"friday"}`}, http.StatusConflict); !strings.Contains(msg, "overwrite") {
		t.Fatalf("saving over a name: %q", msg)
	}
	before = oneEventBy(t, ps, before, "CheckpointSaved", "kernel_id", k, "alice")
	// Overwrite without confirm: 400, and the saved checkpoint is the old one.
	executeOK(t, ps, "alice", k, "extra = 1")
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/checkpoints", token: tok, body: `{"name":"friday","overwrite":true}`}, http.StatusBadRequest); !strings.Contains(msg, `"confirm": true`) {
		t.Fatalf("overwrite without confirm: %q", msg)
	}
	var list console.CheckpointList
	consoleGet(t, hp, "/ui/api/kernels/"+k+"/checkpoints", tok, &list)
	if len(list.Checkpoints) != 1 || !list.Checkpoints[0].CreatedAt.Equal(cp.CreatedAt) || slices.Contains(list.Checkpoints[0].Variables, "extra") {
		t.Fatalf("overwrite without confirm changed the checkpoint: %+v, saved %+v", list, cp)
	}
	for _, e := range eventsAPI(t, hp, ps.tokens["admin"]) {
		if e.Seq > before && strings.HasPrefix(e.Type, "Checkpoint") {
			t.Fatalf("overwrite without confirm appended %v", e)
		}
	}
	if code, body := consolePost(t, hp, "/ui/api/kernels/"+k+"/checkpoints", tok, `{"name":"friday","overwrite":true,"confirm":true}`); code != http.StatusOK {
		t.Fatalf("save with overwrite and confirm: %d %s", code, body)
	}
	before = oneEventBy(t, ps, before, "CheckpointSaved", "kernel_id", k, "alice")
	list = console.CheckpointList{}
	consoleGet(t, hp, "/ui/api/kernels/"+k+"/checkpoints", tok, &list)
	if len(list.Checkpoints) != 1 || list.Checkpoints[0].Name != "friday" || list.Checkpoints[0].KernelID != k || !list.Checkpoints[0].Verified ||
		!slices.Contains(list.Checkpoints[0].Variables, "extra") {
		t.Fatalf("checkpoints: %+v", list)
	}
	executeOK(t, ps, "alice", k, "del kept")
	consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/checkpoints/friday/load", token: tok}, http.StatusBadRequest)
	code, body = consolePost(t, hp, "/ui/api/kernels/"+k+"/checkpoints/friday/load", tok, `{"confirm":true}`)
	var loaded console.Loaded
	if code != http.StatusOK || json.Unmarshal(body, &loaded) != nil || !loaded.OK || !slices.Contains(loaded.Restored, "kept") {
		t.Fatalf("load: %d %s", code, body)
	}
	oneEventBy(t, ps, before, "CheckpointLoaded", "kernel_id", k, "alice")
	if sc, text := callTool(t, ps.clients["alice"], "execute", map[string]any{"kernel": k, "code": "print(kept)"}); sc["status"] != "ok" || !strings.Contains(text, "7") {
		t.Fatalf("after load: %v %s", sc, text)
	}
	consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/checkpoints/nosuch/load", token: tok, body: `{"confirm":true}`}, http.StatusNotFound)

	// Restart: refused without confirm, then the variables are gone.
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/restart", token: tok}, http.StatusBadRequest); !strings.Contains(msg, "confirm") {
		t.Fatalf("restart without confirm: %q", msg)
	}
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/restart", token: tok, body: `{"confirmed":true}`}, http.StatusBadRequest); !strings.Contains(msg, "confirmed") {
		t.Fatalf("restart with a misspelt field: %q", msg)
	}
	before = lastSeq(t, ps)
	if code, body := consolePost(t, hp, "/ui/api/kernels/"+k+"/restart", ps.tokens["admin"], `{"confirm":true}`); code != http.StatusOK {
		t.Fatalf("the admin's restart: %d %s", code, body)
	}
	oneEventBy(t, ps, before, "KernelRestarted", "kernel_id", k, "admin")
	if sc, text := callTool(t, ps.clients["alice"], "execute", map[string]any{"kernel": k, "code": "print(kept)"}); sc["status"] != "error" || !strings.Contains(text, "NameError") {
		t.Fatalf("after restart, kept is still there: %v %s", sc, text)
	}

	// Bodies: too large is 413, not JSON is 400.
	big := `{"name":"` + strings.Repeat("a", console.MaxBodyBytes) + `"}`
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/checkpoints", token: tok, body: big}, http.StatusRequestEntityTooLarge); !strings.Contains(msg, "too large") {
		t.Errorf("a big body: %q", msg)
	}
	if msg := consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/kernels/" + k + "/restart", token: tok, body: `{"confirm":`}, http.StatusBadRequest); !strings.Contains(msg, "JSON") {
		t.Errorf("bad JSON: %q", msg)
	}
}

// TestConsoleOutputsPagedAndFullText: an execution printing ~2.4 MB is
// read in pages bounded in bytes (more, then since=cursor until done),
// which together are exactly what was printed, never repeating an output;
// the full text of its stream output becomes an asset alice reads at
// /assets/<sha256> with her bearer token (bob gets 404), holding exactly
// the merged text. A frontend's execution is listed as such.
func TestConsoleOutputsPagedAndFullText(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	hp, tok := ps.hostPort, ps.tokens["alice"]
	k := startKernelTool(t, ps.clients["alice"])
	const lines = 200_000
	x := executeOK(t, ps, "alice", k, "import sys\nfor i in range(200000):\n    sys.stdout.write('line %06d\\n' % i)\n")
	var want strings.Builder
	for i := range lines {
		want.WriteString("line " + strings.Repeat("0", 6-len(strconv.Itoa(i))) + strconv.Itoa(i) + "\n")
	}

	var got strings.Builder
	var first uint64
	seen := map[uint64]bool{}
	since, pages := uint64(0), 0
	for {
		code, body := consoleDo(t, hp, apiCall{path: "/ui/api/executions/" + x + "?since=" + strconv.FormatUint(since, 10), token: tok})
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		if len(body) > 3<<20/2 {
			t.Fatalf("page %d is %d bytes: not bounded near 1 MiB", pages, len(body))
		}
		var page outputsPage
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Outputs {
			if seen[o.Seq] || o.Seq <= since {
				t.Fatalf("output %d repeated (since %d)", o.Seq, since)
			}
			seen[o.Seq] = true
			if first == 0 && o.MsgType == "stream" {
				first = o.Seq
			}
		}
		got.WriteString(streamText(t, page.Outputs))
		if !page.More {
			break
		}
		if page.Cursor <= since {
			t.Fatalf("more, but the cursor did not move: %d", page.Cursor)
		}
		since = page.Cursor
	}
	if pages < 2 {
		t.Fatalf("%d page(s) for %d bytes: the bound did not cut", pages, want.Len())
	}
	if got.String() != want.String() {
		t.Fatalf("paged text: %d bytes, want %d", got.Len(), want.Len())
	}

	code, body := consolePost(t, hp, "/ui/api/executions/"+x+"/fulltext", tok, `{"seq":`+strconv.FormatUint(first, 10)+`}`)
	var ft console.FullText
	if code != http.StatusOK || json.Unmarshal(body, &ft) != nil || ft.URL != "/assets/"+ft.Asset || ft.Bytes != want.Len() || ft.Lines != lines {
		t.Fatalf("fulltext: %d %s", code, body)
	}
	code, asset := consoleDo(t, hp, apiCall{path: ft.URL, token: tok})
	if code != http.StatusOK || string(asset) != want.String() {
		t.Fatalf("GET %s as alice: %d, %d bytes (want %d)", ft.URL, code, len(asset), want.Len())
	}
	if code, _ := consoleDo(t, hp, apiCall{path: ft.URL, token: ps.tokens["bob"]}); code != http.StatusNotFound {
		t.Fatalf("GET %s as bob: %d, want 404", ft.URL, code)
	}
	for body, status := range map[string]int{`{}`: 400, `{"seq":1}`: 404, `{"seq":"x"}`: 400, `{"seq":` + strconv.FormatUint(first, 10) + `,"x":1}`: 400} {
		consoleError(t, hp, apiCall{method: "POST", path: "/ui/api/executions/" + x + "/fulltext", token: tok, body: body}, status)
	}

	// A frontend (the Jupyter channels, alice's token) runs code: listed as a frontend's.
	uuid, _ := events.UUIDForm(k)
	f := dialFrontend(t, "http://"+hp, uuid, "console-test-session", tok, true)
	f.until("kernel_info_reply on connect", func(m frontMsg) bool {
		return m.Channel == "shell" && m.h.MsgType == "kernel_info_reply"
	})
	f.execute("1+1")
	var page console.ExecutionsPage
	testkit.WaitUntil(t, 30*time.Second, "the frontend's execution listed", func() (bool, string) {
		consoleGet(t, hp, "/ui/api/kernels/"+k+"/executions?limit=1", tok, &page)
		return len(page.Executions) == 1 && page.Executions[0].Code == "1+1" && page.Executions[0].Status == "ok", ""
	})
	if s := page.Executions[0].Submitter; s.Kind != "frontend" || s.Name != "alice" || !page.More {
		t.Fatalf("the frontend's execution: %+v more %v", s, page.More)
	}
	consoleGet(t, hp, "/ui/api/kernels/"+k+"/executions?limit=1&before="+strconv.FormatUint(page.Executions[0].QueuedSeq, 10), tok, &page)
	if len(page.Executions) != 1 || page.Executions[0].ID != x || page.Executions[0].Submitter.Kind != "agent" || page.More {
		t.Fatalf("the page before it: %+v", page)
	}
}

// TestConsoleStaticOnServer: /ui redirects to /ui/ keeping ?token= (the
// address `serve` prints); /ui/vendor/plotly.js is the --plotly-js file
// (MCP_PLOTLY_JS), gzipped for a browser, with no token; the page's
// responses carry the CSP.
func TestConsoleStaticOnServer(t *testing.T) {
	js := filepath.Join(t.TempDir(), "plotly.js")
	if err := os.WriteFile(js, []byte(strings.Repeat("var Plotly = {};\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCP_PLOTLY_JS", js)
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(ts.URL + "/ui?token=abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != "/ui/?token=abc" {
		t.Fatalf("GET /ui?token=abc: %d Location %q", resp.StatusCode, loc)
	}
	// NB: the first request gets it plain while it is compressed beside it.
	testkit.WaitUntil(t, 2*time.Minute, "plotly.js gzipped", func() (bool, string) {
		req, _ := http.NewRequest("GET", ts.URL+"/ui/vendor/plotly.js", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err = http.DefaultTransport.RoundTrip(req) // NB: the transport alone leaves the body compressed
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") == "gzip", resp.Status
	})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("plotly.js: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestConsoleAddressShown: `serve` logs where the console is without the
// token; on the first start the terminal (stderr, not a log line) gets the
// console's address with ?token= beside the new token, and that address
// opens an authenticated API call once the token is taken from it; `principal
// add` prints the same kind of address for the new principal.
func TestConsoleAddressShown(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	s := startServer(t, bin, []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(t)})
	waitReady(t, s.addr, 2*time.Minute)
	token, err := os.ReadFile(filepath.Join(dataDir, "mcp-token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	var served, printed bool
	for _, line := range strings.Split(s.Logs(), "\n") {
		if strings.HasPrefix(line, "{") {
			if strings.Contains(line, tok) {
				t.Fatalf("a log line holds the token: %s", line)
			}
			if strings.Contains(line, `"msg":"serving"`) && strings.Contains(line, `"console":"http://`+s.addr+`/ui/"`) {
				served = true
			}
			continue
		}
		if strings.TrimSpace(line) == "http://"+s.addr+"/ui/?token="+tok {
			printed = true
		}
	}
	if !served || !printed {
		t.Fatalf("serving line with the console: %v; console address with the token on the terminal: %v; output:\n%s", served, printed, s.Logs())
	}
	var me console.Me
	consoleGet(t, s.addr, "/ui/api/me", tok, &me)
	if me.Name != "admin" || !me.Admin {
		t.Fatalf("/me with the printed token: %+v", me)
	}

	t.Setenv("MCP_ADDR", "0.0.0.0:4000")
	out, err := principalCLI(t, t.TempDir(), "add", "carol", "--scopes", "read")
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://localhost:4000/ui/?token=" + printedToken(t, out); !strings.Contains(out, want) {
		t.Fatalf("principal add does not show %s:\n%s", want, out)
	}
}
