package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// jupyterReply is one answer of the Jupyter API.
type jupyterReply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v (a test failure when it is not JSON).
func (r jupyterReply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%d %q is not JSON: %v", r.status, r.body, err)
	}
}

// object is the body as a JSON object.
func (r jupyterReply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

// jupyterCall sends method path to the server at base with auth as the
// Authorization header ("" none) and body (nil none), and does not follow
// redirects.
func jupyterCall(t testing.TB, base, method, path, authz string, body any) jupyterReply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return jupyterReply{status: res.StatusCode, header: res.Header, body: data}
}

// wantStatus fails unless r has status want.
func wantStatus(t testing.TB, what string, r jupyterReply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, want)
	}
}

// wantError fails unless r is jupyter_server's error shape with status
// want and a message containing msg.
func wantError(t testing.TB, what string, r jupyterReply, want int, msg string) {
	t.Helper()
	wantStatus(t, what, r, want)
	m := r.object(t)
	if got, _ := m["message"].(string); !strings.Contains(got, msg) {
		t.Fatalf("%s: message %q, want it to contain %q (%s)", what, got, msg, r.body)
	}
	if _, ok := m["reason"]; !ok {
		t.Fatalf("%s: no reason in %s", what, r.body)
	}
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// wantKernelModel checks m is jupyter_server's kernel model of the kernel
// shown as id (UUID form) and returns it.
func wantKernelModel(t testing.TB, m map[string]any, id string) map[string]any {
	t.Helper()
	if m["id"] != id || m["name"] != "python3" {
		t.Fatalf("kernel model %v: want id %s, name python3", m, id)
	}
	for _, f := range []string{"last_activity", "execution_state"} {
		if _, ok := m[f].(string); !ok {
			t.Fatalf("kernel model %v: %s is no string", m, f)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m["last_activity"].(string)); err != nil || !strings.HasSuffix(m["last_activity"].(string), "Z") {
		t.Fatalf("last_activity %q is not ISO 8601 in UTC: %v", m["last_activity"], err)
	}
	if _, ok := m["connections"].(float64); !ok {
		t.Fatalf("kernel model %v: connections is no number", m)
	}
	return m
}

// TestJupyterAPIKernelRoutes drives /api, /api/status, /api/me, the
// kernelspecs and the kernels routes as a Jupyter frontend does, against
// the real server over HTTP with a real kernel: shapes and status codes
// as jupyter_server 2.x answers, the three forms of the token, kernel ids
// shown in UUID form and accepted in both forms, and the kernel a
// frontend starts is the one an agent executes on.
func TestJupyterAPIKernelRoutes(t *testing.T) {
	c, connect := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	agent := connect()
	tok := "token " + c.token

	// GET /api needs no token; the rest does, in any of its three forms.
	r := jupyterCall(t, ts.URL, "GET", "/api", "", nil)
	wantStatus(t, "GET /api", r, 200)
	if v := r.object(t)["version"]; v != jupyterAPIVersion {
		t.Fatalf("GET /api: version %v", v)
	}
	if r := jupyterCall(t, ts.URL, "GET", "/api/kernels", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /api/kernels without a token: %d %s", r.status, r.body)
	}
	if r := jupyterCall(t, ts.URL, "GET", "/api/kernels", "token wrong", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /api/kernels with a wrong token: %d %s", r.status, r.body)
	}
	for _, authz := range []string{"token " + c.token, "Bearer " + c.token} {
		wantStatus(t, "GET /api/kernels with "+strings.Fields(authz)[0], jupyterCall(t, ts.URL, "GET", "/api/kernels", authz, nil), 200)
	}
	wantStatus(t, "GET /api/kernels?token=", jupyterCall(t, ts.URL, "GET", "/api/kernels?token="+c.token, "", nil), 200)
	wantStatus(t, "GET /kernelspecs/... without a token", jupyterCall(t, ts.URL, "GET", "/kernelspecs/python3/kernel.json", "", nil), 401)
	// A browser page of another site is refused before the token counts,
	// as on /mcp (no cookies here, so no XSRF either).
	for _, path := range []string{"/api", "/api/kernels", "/kernelspecs/python3/kernel.json"} {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", tok)
		req.Header.Set("Origin", "https://evil.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("GET %s from a foreign Origin: %d, want 403", path, res.StatusCode)
		}
	}

	// Kernelspecs, and their resources from the spec's directory only.
	specs, err := c.launcher.Specs()
	if err != nil || len(specs.Specs) == 0 {
		t.Fatalf("specs: %v %v", specs, err)
	}
	specDir := specs.Specs[0].ResourceDir
	logo := []byte("\x89PNG\r\n\x1a\nnot really a png")
	if err := os.WriteFile(filepath.Join(specDir, "logo-64x64.png"), logo, 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("do not serve"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(specDir, "logo-escape.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(specDir, "out")); err != nil {
		t.Fatal(err)
	}
	r = jupyterCall(t, ts.URL, "GET", "/api/kernelspecs", tok, nil)
	wantStatus(t, "GET /api/kernelspecs", r, 200)
	var all struct {
		Default     string                    `json:"default"`
		Kernelspecs map[string]map[string]any `json:"kernelspecs"`
	}
	r.json(t, &all)
	py := all.Kernelspecs["python3"]
	if all.Default != "python3" || py == nil || py["name"] != "python3" {
		t.Fatalf("kernelspecs: %s", r.body)
	}
	spec, _ := py["spec"].(map[string]any)
	if argv, ok := spec["argv"].([]any); !ok || len(argv) == 0 || spec["display_name"] != "Python 3 (test)" || spec["language"] != "python" ||
		spec["interrupt_mode"] != "signal" || spec["metadata"] == nil {
		t.Fatalf("python3's spec: %v", spec)
	}
	if _, ok := spec["env"]; ok {
		t.Fatalf("the kernelspec's env is shown: %v", spec)
	}
	res, _ := py["resources"].(map[string]any)
	if res["logo-64x64"] != "/kernelspecs/python3/logo-64x64.png" || len(res) != 1 {
		t.Fatalf("resources (the symlink leading out must not be listed): %v", res)
	}
	r = jupyterCall(t, ts.URL, "GET", "/api/kernelspecs/python3", tok, nil)
	wantStatus(t, "GET /api/kernelspecs/python3", r, 200)
	if m := r.object(t); m["name"] != "python3" || m["spec"] == nil || m["resources"] == nil {
		t.Fatalf("GET /api/kernelspecs/python3: %s", r.body)
	}
	wantError(t, "GET /api/kernelspecs/nope", jupyterCall(t, ts.URL, "GET", "/api/kernelspecs/nope", tok, nil), 404, "Kernel spec nope not found")
	r = jupyterCall(t, ts.URL, "GET", "/kernelspecs/python3/logo-64x64.png", tok, nil)
	wantStatus(t, "GET the logo", r, 200)
	if !bytes.Equal(r.body, logo) || r.header.Get("Content-Type") != "image/png" {
		t.Fatalf("logo: %q %s", r.body, r.header.Get("Content-Type"))
	}
	// kernel.json is no resource: its env may hold credentials.
	r = jupyterCall(t, ts.URL, "GET", "/kernelspecs/python3/kernel.json", tok, nil)
	wantStatus(t, "GET kernel.json", r, 404)
	if bytes.Contains(r.body, []byte("argv")) {
		t.Fatalf("GET kernel.json served the spec: %s", r.body)
	}
	// Paths out of the spec's directory: 404 (escaped dots reach the
	// handler, whose os.Root refuses them), or for literal dots the mux's
	// redirect to the cleaned path, which is no longer the spec's.
	for _, c := range []struct {
		path, location string
		status         int
	}{
		{"/kernelspecs/python3/logo-escape.png", "", 404},
		{"/kernelspecs/python3/out/secret.txt", "", 404},
		{"/kernelspecs/python3/%2e%2e/%2e%2e/etc/passwd", "", 404},
		{"/kernelspecs/python3/..%2fkernel.json", "", 404},
		{"/kernelspecs/python3/../../etc/passwd", "/etc/passwd", 307},
		{"/kernelspecs/python3/nope.png", "", 404},
		{"/kernelspecs/nope/logo-64x64.png", "", 404},
	} {
		r := jupyterCall(t, ts.URL, "GET", c.path, tok, nil)
		if r.status != c.status || r.header.Get("Location") != c.location || bytes.Contains(r.body, []byte("do not serve")) || bytes.Contains(r.body, []byte("root:")) {
			t.Fatalf("GET %s: %d (Location %q) %q, want %d (Location %q)", c.path, r.status, r.header.Get("Location"), r.body, c.status, c.location)
		}
	}

	// Start a kernel: 201, Location, the model; its id in UUID form.
	r = jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, map[string]any{"name": "python3", "path": "somewhere"})
	wantStatus(t, "POST /api/kernels", r, 201)
	m := r.object(t)
	shown, _ := m["id"].(string)
	if !uuidShape.MatchString(shown) {
		t.Fatalf("kernel id %q is not in UUID form", shown)
	}
	wantKernelModel(t, m, shown)
	if loc := r.header.Get("Location"); loc != "/api/kernels/"+shown {
		t.Fatalf("Location %q", loc)
	}
	id, ok := events.FromUUIDForm(shown)
	if !ok || !c.back.sys.HasKernel(id) {
		t.Fatalf("kernel %s (%s) is not the server's", shown, id)
	}
	if k, _ := c.back.kernels.Get(id); k.Owner != "admin" {
		t.Fatalf("owner %q", k.Owner)
	}
	// The agent runs code on the frontend's kernel.
	if sc, text := callTool(t, agent, "execute", map[string]any{"kernel": id, "code": "x = 41\nprint(x + 1)"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("agent execute: %v %s", sc, text)
	}

	// POST with the kernel_id of an existing kernel answers that kernel,
	// as jupyter_server does; an id of no kernel is refused.
	for _, form := range []string{shown, id} {
		r := jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, map[string]any{"kernel_id": form})
		wantStatus(t, "POST kernel_id "+form, r, 201)
		wantKernelModel(t, r.object(t), shown)
	}
	wantError(t, "POST unknown kernel_id", jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, map[string]any{"kernel_id": "00000000-0000-0000-0000-000000000000"}),
		400, "names no kernel of this server")

	// Listed, and found by both forms of its id.
	r = jupyterCall(t, ts.URL, "GET", "/api/kernels", tok, nil)
	var list []map[string]any
	r.json(t, &list)
	if len(list) != 1 {
		t.Fatalf("GET /api/kernels: %s", r.body)
	}
	wantKernelModel(t, list[0], shown)
	for _, form := range []string{shown, id, strings.ToUpper(shown)} {
		r := jupyterCall(t, ts.URL, "GET", "/api/kernels/"+form, tok, nil)
		wantStatus(t, "GET /api/kernels/"+form, r, 200)
		wantKernelModel(t, r.object(t), shown)
	}
	wantError(t, "unknown kernel", jupyterCall(t, ts.URL, "GET", "/api/kernels/00000000-0000-0000-0000-000000000000", tok, nil),
		404, "Kernel does not exist: 00000000-0000-0000-0000-000000000000")
	if r := jupyterCall(t, ts.URL, "GET", "/api/kernels/", tok, nil); r.status != http.StatusFound || r.header.Get("Location") != "/api/kernels" {
		t.Fatalf("GET /api/kernels/: %d %v", r.status, r.header)
	}
	wantError(t, "unknown action", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/explode", tok, nil), 404, "Not Found")

	// Interrupt 204; restart 200 with the model (the variables are gone).
	wantStatus(t, "interrupt", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/interrupt", tok, nil), 204)
	r = jupyterCall(t, ts.URL, "POST", "/api/kernels/"+id+"/restart", tok, nil)
	wantStatus(t, "restart", r, 200)
	wantKernelModel(t, r.object(t), shown)
	if sc, text := callTool(t, agent, "execute", map[string]any{"kernel": id, "code": "print('x' in dir())"}); sc["status"] != "ok" || !strings.Contains(text, "False") {
		t.Fatalf("after the restart: %v %s", sc, text)
	}

	// Status and identity.
	r = jupyterCall(t, ts.URL, "GET", "/api/status", tok, nil)
	wantStatus(t, "GET /api/status", r, 200)
	st := r.object(t)
	if st["kernels"] != 1.0 || st["connections"] != 0.0 {
		t.Fatalf("status: %s", r.body)
	}
	for _, f := range []string{"started", "last_activity"} {
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st[f])); err != nil {
			t.Fatalf("status %s: %v", f, err)
		}
	}
	r = jupyterCall(t, ts.URL, "GET", `/api/me?permissions={"kernels":["read","execute"],"terminals":["read"]}`, tok, nil)
	wantStatus(t, "GET /api/me", r, 200)
	var me struct {
		Identity    map[string]any      `json:"identity"`
		Permissions map[string][]string `json:"permissions"`
	}
	r.json(t, &me)
	if me.Identity["username"] != "admin" || me.Identity["display_name"] != "admin" || len(me.Permissions["kernels"]) != 2 || len(me.Permissions["terminals"]) != 0 {
		t.Fatalf("GET /api/me: %s", r.body)
	}
	for _, f := range []string{"name", "initials", "avatar_url", "color"} {
		if _, ok := me.Identity[f]; !ok {
			t.Fatalf("identity without %s: %s", f, r.body)
		}
	}
	wantError(t, "GET /api/me bad permissions", jupyterCall(t, ts.URL, "GET", `/api/me?permissions=[1]`, tok, nil), 400, "permissions should be")

	// Bad bodies.
	wantError(t, "POST bad JSON", jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, "{"), 400, "Invalid JSON")
	wantError(t, "POST name of the wrong type", jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, `{"name": 5}`), 400, "Invalid JSON")
	wantError(t, "POST unknown kernelspec", jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, map[string]any{"name": "nope"}), 400, "The 'nope' kernel is not available")
	wantError(t, "POST a huge body", jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, `{"name":"`+strings.Repeat("a", 100<<10)+`"}`), 413, "over")

	// Shut down: 204, then gone.
	wantStatus(t, "DELETE", jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+shown, tok, nil), 204)
	wantError(t, "GET after DELETE", jupyterCall(t, ts.URL, "GET", "/api/kernels/"+shown, tok, nil), 404, "Kernel does not exist")
	wantError(t, "DELETE again", jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+id, tok, nil), 404, "Kernel does not exist")
	r = jupyterCall(t, ts.URL, "GET", "/api/kernels", tok, nil)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("GET /api/kernels after DELETE: %s", r.body)
	}
	if k, _ := c.back.kernels.Get(id); k.State != "shut down" {
		t.Fatalf("the read model has %q", k.State)
	}
}

// TestJupyterAPIAccess: the Jupyter API decides who may do what exactly as
// the MCP tools do. Principals from `principal add` with their own tokens:
// a kernel another owns and did not share does not exist for them (404,
// the words of an unknown id, in both id forms); shared for read it shows,
// but interrupt, restart and delete are refused (403 saying why); shared
// for execute interrupt passes while restart and delete stay the owner's;
// a principal without the execute scope cannot start one, and a
// principal's kernel quota holds.
func TestJupyterAPIAccess(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	tokens := map[string]string{}
	for _, add := range [][]string{{"add", "alice", "--max-kernels", "1"}, {"add", "bob"}, {"add", "carol", "--scopes", "read"}} {
		out, err := principalCLI(t, c.cfg.DataDir, add...)
		if err != nil {
			t.Fatal(err)
		}
		tokens[add[1]] = "token " + printedToken(t, out)
	}
	for name, tok := range tokens {
		testkit.WaitUntil(t, 5*time.Second, name+"'s token accepted", func() (bool, string) {
			r := jupyterCall(t, ts.URL, "GET", "/api/kernels", tok, nil)
			return r.status == 200, fmt.Sprint(r.status)
		})
	}
	r := jupyterCall(t, ts.URL, "POST", "/api/kernels", tokens["alice"], map[string]any{"name": "python3"})
	wantStatus(t, "alice starts a kernel", r, 201)
	shown := r.object(t)["id"].(string)
	id := events.CanonicalID(shown)
	if k, _ := c.back.kernels.Get(id); k.Owner != "alice" {
		t.Fatalf("owner %q", k.Owner)
	}
	// Her quota holds here as on /mcp.
	wantError(t, "alice's second kernel", jupyterCall(t, ts.URL, "POST", "/api/kernels", tokens["alice"], nil), 403, `principal "alice" has 1 of 1 kernels`)
	unknown := func(who, what string, r jupyterReply) {
		t.Helper()
		wantError(t, who+" "+what, r, 404, "Kernel does not exist: "+shown)
	}
	// Not shared: bob sees nothing of it.
	bob := tokens["bob"]
	if r := jupyterCall(t, ts.URL, "GET", "/api/kernels", bob, nil); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("bob lists %s", r.body)
	}
	for _, form := range []string{shown, id} {
		unknown("bob", "GET "+form, jupyterCall(t, ts.URL, "GET", "/api/kernels/"+form, bob, nil))
		unknown("bob", "DELETE "+form, jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+form, bob, nil))
		unknown("bob", "interrupt "+form, jupyterCall(t, ts.URL, "POST", "/api/kernels/"+form+"/interrupt", bob, nil))
		unknown("bob", "restart "+form, jupyterCall(t, ts.URL, "POST", "/api/kernels/"+form+"/restart", bob, nil))
	}
	if r := jupyterCall(t, ts.URL, "GET", "/api/status", bob, nil); r.object(t)["kernels"] != 0.0 {
		t.Fatalf("bob's status counts alice's kernel: %s", r.body)
	}

	alice := httpMCPClient(t, ts.URL, strings.TrimPrefix(tokens["alice"], "token "))
	share := func(access string) {
		t.Helper()
		if _, text := callTool(t, alice, "share_kernel", map[string]any{"kernel": id, "principal": "bob", "access": access}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("share %s: %s", access, text)
		}
	}
	// alice's session on it is hers alone too.
	r = jupyterCall(t, ts.URL, "POST", "/api/sessions", tokens["alice"], map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"id": shown}})
	wantStatus(t, "alice opens a session", r, 201)
	sess := r.object(t)["id"].(string)
	if r := jupyterCall(t, ts.URL, "GET", "/api/sessions", bob, nil); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("bob lists sessions %s", r.body)
	}
	wantError(t, "bob GET alice's session", jupyterCall(t, ts.URL, "GET", "/api/sessions/"+sess, bob, nil), 404, "Session not found")
	wantError(t, "bob DELETE alice's session", jupyterCall(t, ts.URL, "DELETE", "/api/sessions/"+sess, bob, nil), 404, "Session not found")
	wantError(t, "bob opens a session on alice's kernel", jupyterCall(t, ts.URL, "POST", "/api/sessions", bob,
		map[string]any{"path": "b.ipynb", "type": "notebook", "kernel": map[string]any{"id": id}}), 404, "Kernel does not exist")

	// Shared for read: bob sees it, may not act on it.
	share("read")
	wantStatus(t, "bob GET alice's session (read)", jupyterCall(t, ts.URL, "GET", "/api/sessions/"+sess, bob, nil), 200)
	wantError(t, "bob DELETE alice's session (read)", jupyterCall(t, ts.URL, "DELETE", "/api/sessions/"+sess, bob, nil), 403, "belongs to alice")
	wantStatus(t, "the session after bob's refused DELETE", jupyterCall(t, ts.URL, "GET", "/api/sessions/"+sess, tokens["alice"], nil), 200)
	wantStatus(t, "bob opens a session on alice's kernel (read)", jupyterCall(t, ts.URL, "POST", "/api/sessions", bob,
		map[string]any{"path": "b.ipynb", "type": "notebook", "kernel": map[string]any{"id": id}}), 201)
	wantStatus(t, "bob GET (read)", jupyterCall(t, ts.URL, "GET", "/api/kernels/"+shown, bob, nil), 200)
	if r := jupyterCall(t, ts.URL, "GET", "/api/kernels", bob, nil); !strings.Contains(string(r.body), shown) {
		t.Fatalf("bob's list (read): %s", r.body)
	}
	wantError(t, "bob interrupt (read)", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/interrupt", bob, nil), 403, "read only")
	wantError(t, "bob restart (read)", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/restart", bob, nil), 403, "belongs to alice")
	wantError(t, "bob DELETE (read)", jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+shown, bob, nil), 403, "belongs to alice")
	// Shared for execute: interrupt passes; restart and delete stay alice's.
	share("execute")
	wantStatus(t, "bob interrupt (execute)", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+id+"/interrupt", bob, nil), 204)
	wantError(t, "bob restart (execute)", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/restart", bob, nil), 403, "belongs to alice")
	wantError(t, "bob DELETE (execute)", jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+shown, bob, nil), 403, "belongs to alice")
	if k, _ := c.back.kernels.Get(id); k.State != "running" {
		t.Fatalf("after bob's refused acts the kernel is %q", k.State)
	}

	// carol holds the read scope only: she lists, she starts nothing.
	carol := tokens["carol"]
	wantStatus(t, "carol GET /api/kernelspecs", jupyterCall(t, ts.URL, "GET", "/api/kernelspecs", carol, nil), 200)
	wantError(t, "carol POST /api/kernels", jupyterCall(t, ts.URL, "POST", "/api/kernels", carol, map[string]any{"name": "python3"}), 403, "needs the execute scope")
	r = jupyterCall(t, ts.URL, "GET", `/api/me?permissions={"kernels":["read","execute"]}`, carol, nil)
	var me struct {
		Identity    map[string]any      `json:"identity"`
		Permissions map[string][]string `json:"permissions"`
	}
	r.json(t, &me)
	if me.Identity["username"] != "carol" || fmt.Sprint(me.Permissions["kernels"]) != "[read]" {
		t.Fatalf("carol's /api/me: %s", r.body)
	}

	// The owner shuts it down.
	wantStatus(t, "alice DELETE", jupyterCall(t, ts.URL, "DELETE", "/api/kernels/"+shown, tokens["alice"], nil), 204)
	unknown("alice", "GET after DELETE", jupyterCall(t, ts.URL, "GET", "/api/kernels/"+shown, tokens["alice"], nil))
}

// TestJupyterAPIDeadKernel: a kernel whose process died shows as
// execution_state "dead" with its reason, as jupyter_server shows a kernel
// its restarter gave up on; an interrupt is 409 saying what to do, and a
// restart through the API brings it back.
func TestJupyterAPIDeadKernel(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	tok := "token " + c.token
	r := jupyterCall(t, ts.URL, "POST", "/api/kernels", tok, map[string]any{"name": "python3"})
	wantStatus(t, "POST /api/kernels", r, 201)
	shown := r.object(t)["id"].(string)
	st, err := c.sys.Kernel(context.Background(), events.CanonicalID(shown))
	if err != nil || st.Process.Pid <= 1 {
		t.Fatalf("kernel %s has no process to kill (never signal pid 0 or 1): %+v %v", shown, st, err)
	}
	if err := syscall.Kill(st.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	testkit.WaitUntil(t, 10*time.Second, "the kernel shows dead", func() (bool, string) {
		m = jupyterCall(t, ts.URL, "GET", "/api/kernels/"+shown, tok, nil).object(t)
		return m["execution_state"] == "dead", fmt.Sprint(m)
	})
	if reason, _ := m["reason"].(string); reason == "" {
		t.Fatalf("a dead kernel without its reason: %v", m)
	}
	if r := jupyterCall(t, ts.URL, "GET", "/api/status", tok, nil); r.object(t)["kernels"] != 0.0 {
		t.Fatalf("status counts a dead kernel: %s", r.body)
	}
	wantError(t, "interrupt a dead kernel", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/interrupt", tok, nil), 409, "is not running")
	r = jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/restart", tok, nil)
	wantStatus(t, "restart a dead kernel", r, 200)
	if m := r.object(t); m["execution_state"] == "dead" || m["reason"] != nil {
		t.Fatalf("after the restart: %s", r.body)
	}
	wantStatus(t, "interrupt after the restart", jupyterCall(t, ts.URL, "POST", "/api/kernels/"+shown+"/interrupt", tok, nil), 204)
}
