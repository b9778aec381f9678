package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// sessionShape fails unless m is jupyter_server's session model with a
// version 4 UUID as id, and returns its kernel's shown id.
func sessionShape(t testing.TB, m map[string]any, path, typ string) string {
	t.Helper()
	id, _ := m["id"].(string)
	if !uuidShape.MatchString(id) || id[14] != '4' {
		t.Fatalf("session id %q is not a version 4 UUID", id)
	}
	if m["path"] != path || m["type"] != typ {
		t.Fatalf("session %v: want path %s, type %s", m, path, typ)
	}
	if _, ok := m["name"].(string); !ok {
		t.Fatalf("session %v: name is no string", m)
	}
	k, _ := m["kernel"].(map[string]any)
	kid, _ := k["id"].(string)
	wantKernelModel(t, k, kid)
	nb, hasNB := m["notebook"].(map[string]any)
	if (typ == "notebook") != hasNB || hasNB && nb["path"] != path {
		t.Fatalf("session %v: the notebook field of a %s", m, typ)
	}
	return kid
}

// TestJupyterAPISessions drives /api/sessions as JupyterLab does, against
// the real server with real kernels: create (a new kernel, or an existing
// one by id in either form), the same path gives the same session, list,
// get, rename, move to a new kernel (the old one shut down, as
// jupyter_server does), delete (its kernel shut down), bad bodies and
// unknown ids in jupyter_server's words — and the sessions are durable: a
// server restart shows them again from the log.
func TestJupyterAPISessions(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(c.httpHandler())
	tok := "token " + c.token
	call := func(method, path string, body any) jupyterReply {
		t.Helper()
		return jupyterCall(t, ts.URL, method, path, tok, body)
	}

	// Bad bodies.
	wantError(t, "POST no body", call("POST", "/api/sessions", nil), 400, "No JSON data provided")
	wantError(t, "POST bad JSON", call("POST", "/api/sessions", "{"), 400, "Invalid JSON")
	wantError(t, "POST no path", call("POST", "/api/sessions", map[string]any{"type": "notebook"}), 400, "Missing field in JSON data: path")
	wantError(t, "POST no type", call("POST", "/api/sessions", map[string]any{"path": "a.ipynb"}), 400, "Missing field in JSON data: type")
	r := call("POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "nope"}})
	if m := r.object(t); r.status != 501 || !strings.Contains(m["message"].(string), "The 'nope' kernel is not available") || m["short_message"] != "nope not found" {
		t.Fatalf("POST unknown kernelspec: %d %s", r.status, r.body)
	}
	wantError(t, "POST unknown kernel id", call("POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook",
		"kernel": map[string]any{"id": "00000000-0000-0000-0000-000000000000"}}), 404, "Kernel does not exist")
	// A path the kernel actor refuses to record: 400, and the kernel
	// started for it is shut down again.
	wantError(t, "POST a path over the bound", call("POST", "/api/sessions", map[string]any{"path": strings.Repeat("p", 2000), "type": "notebook",
		"kernel": map[string]any{"name": "python3"}}), 400, "bad session")
	if r := call("GET", "/api/kernels", nil); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("a refused session left a kernel: %s", r.body)
	}

	// Create: a new kernel.
	r = call("POST", "/api/sessions", map[string]any{"path": "a.ipynb", "name": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "POST a.ipynb", r, 201)
	a := r.object(t)
	k1 := sessionShape(t, a, "a.ipynb", "notebook")
	aID := a["id"].(string)
	if loc := r.header.Get("Location"); loc != "/api/sessions/"+aID {
		t.Fatalf("Location %q", loc)
	}
	// The same path: the same session, no second kernel.
	r = call("POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "POST a.ipynb again", r, 201)
	if again := r.object(t); again["id"] != aID {
		t.Fatalf("a second session for a.ipynb: %s", r.body)
	}
	// An existing kernel by id, in its canonical form.
	canonical, _ := events.FromUUIDForm(k1)
	r = call("POST", "/api/sessions", map[string]any{"path": "console-1", "name": "", "type": "console", "kernel": map[string]any{"id": canonical}})
	wantStatus(t, "POST console-1", r, 201)
	b := r.object(t)
	if sessionShape(t, b, "console-1", "console") != k1 {
		t.Fatalf("console-1 is not on kernel %s: %s", k1, r.body)
	}
	bID := b["id"].(string)
	var list []map[string]any
	call("GET", "/api/kernels", nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("kernels: %v", list)
	}
	call("GET", "/api/sessions", nil).json(t, &list)
	if len(list) != 2 || list[0]["id"] != aID || list[1]["id"] != bID {
		t.Fatalf("sessions: %v", list)
	}
	r = call("GET", "/api/sessions/"+strings.ToUpper(aID), nil)
	wantStatus(t, "GET a", r, 200)
	sessionShape(t, r.object(t), "a.ipynb", "notebook")
	wantError(t, "GET unknown session", call("GET", "/api/sessions/11111111-2222-4333-8444-555555555555", nil), 404, "Session not found")

	// Rename.
	wantError(t, "PATCH no body", call("PATCH", "/api/sessions/"+aID, nil), 400, "No JSON data provided")
	wantError(t, "PATCH unknown kernel", call("PATCH", "/api/sessions/"+aID, map[string]any{"kernel": map[string]any{"id": "00000000-0000-0000-0000-000000000000"}}), 400, "No such kernel")
	wantError(t, "PATCH unknown session", call("PATCH", "/api/sessions/11111111-2222-4333-8444-555555555555", map[string]any{"path": "x"}), 404, "Session not found")
	r = call("PATCH", "/api/sessions/"+aID, map[string]any{"path": "renamed.ipynb", "name": "renamed.ipynb"})
	wantStatus(t, "PATCH rename", r, 200)
	if m := r.object(t); sessionShape(t, m, "renamed.ipynb", "notebook") != k1 || m["name"] != "renamed.ipynb" {
		t.Fatalf("renamed: %s", r.body)
	}

	// Durable: after a server restart the sessions are there again.
	ts.Close()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err = openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	ts = httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	tok = "token " + c.token
	call("GET", "/api/sessions", nil).json(t, &list)
	if len(list) != 2 || list[0]["id"] != bID || list[1]["id"] != aID || list[1]["path"] != "renamed.ipynb" {
		t.Fatalf("sessions after a server restart: %v", list)
	}

	// Move console-1 to a new kernel: the old kernel is shut down, and
	// with it the session still on it.
	r = call("PATCH", "/api/sessions/"+bID, map[string]any{"kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "PATCH new kernel", r, 200)
	k2 := sessionShape(t, r.object(t), "console-1", "console")
	if k2 == k1 {
		t.Fatalf("no new kernel: %s", r.body)
	}
	wantError(t, "the old kernel", call("GET", "/api/kernels/"+k1, nil), 404, "Kernel does not exist")
	call("GET", "/api/sessions", nil).json(t, &list)
	if len(list) != 1 || list[0]["id"] != bID {
		t.Fatalf("sessions after the move: %v", list)
	}

	// Delete: 204, its kernel shut down.
	wantStatus(t, "DELETE", call("DELETE", "/api/sessions/"+bID, nil), 204)
	wantError(t, "GET deleted", call("GET", "/api/sessions/"+bID, nil), 404, "Session not found")
	wantError(t, "DELETE again", call("DELETE", "/api/sessions/"+bID, nil), 404, "Session not found")
	wantError(t, "its kernel", call("GET", "/api/kernels/"+k2, nil), 404, "Kernel does not exist")

	// The log says what happened to the sessions, and who did it.
	var opened, closed int
	for _, k := range []string{k1, k2} {
		id, _ := events.FromUUIDForm(k)
		err := c.log.ReadKernel(context.Background(), id, 0, func(e events.Event) error {
			switch e.Type {
			case events.TypeKernelSessionOpened:
				opened++
			case events.TypeKernelSessionClosed:
				closed++
			default:
				return nil
			}
			if e.Principal != "admin" {
				t.Errorf("%s by %q", e.Type, e.Principal)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// a, console-1, the rename, console-1 on k2; console-1 closed on k1
	// (moved) and on k2 (deleted).
	if opened != 4 || closed != 2 {
		t.Fatalf("%d KernelSessionOpened, %d KernelSessionClosed", opened, closed)
	}
}

// TestJupyterAPISessionsSamePathAtOnce: two frontends opening the same
// notebook at the same moment (each asking for a new kernel) get one
// session, and one kernel stays: the other start is shut down again.
func TestJupyterAPISessionsSamePathAtOnce(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	tok := "token " + c.token
	const n = 3
	replies := make(chan jupyterReply, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies <- jupyterCall(t, ts.URL, "POST", "/api/sessions", tok, map[string]any{"path": "shared.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
		}()
	}
	testkit.WaitGroup(t, &wg, 2*time.Minute, "the session opens")
	close(replies)
	ids := map[any]bool{}
	for r := range replies {
		wantStatus(t, "POST shared.ipynb", r, 201)
		ids[r.object(t)["id"]] = true
	}
	if len(ids) != 1 {
		t.Fatalf("%d sessions for one path: %v", len(ids), ids)
	}
	var list []map[string]any
	jupyterCall(t, ts.URL, "GET", "/api/kernels", tok, nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("%d kernels left for one session: %v", len(list), list)
	}
	jupyterCall(t, ts.URL, "GET", "/api/sessions", tok, nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("sessions: %v", list)
	}
}
