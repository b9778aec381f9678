package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
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
		"/ui/api/kernels/" + ka + "/executions?before=-3": "before",
		"/ui/api/executions/a.b":                          "not a valid execution id",
		"/ui/api/kernels/a.b/executions":                  "not a valid kernel id",
	} {
		if msg := consoleError(t, hp, apiCall{path: path, token: ps.tokens["alice"]}, http.StatusBadRequest); !strings.Contains(msg, want) {
			t.Errorf("GET %s: %q does not say %q", path, msg, want)
		}
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
}
