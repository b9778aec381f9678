package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TestJupyterAPISessionsSharedKernel: a session's path is relative to the
// notebook root of the principal that opened it. Bob, who may read the
// kernel alice's a.ipynb session is on, gets a session of his own for his
// own a.ipynb (a new kernel), not alice's; a read share does not let him
// rename alice's session or take it to his kernel (403, nothing changes);
// dave's execute share does not let him change alice's session either
// (its path is in her root), but does let him change his own session on
// her kernel, which bob's read share does not. An admin-scoped principal
// other than the data dir's admin finds and changes its own sessions.
func TestJupyterAPISessionsSharedKernel(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "dave": auth.DefaultScopes,
		"ops": auth.ScopeAdmin})
	base := "http://" + ps.hostPort
	call := func(who, method, path string, body any) jupyterReply {
		t.Helper()
		return jupyterCall(t, base, method, path, "token "+ps.tokens[who], body)
	}
	alice := ps.clients["alice"]
	k := startKernelTool(t, alice)
	kUUID, _ := events.UUIDForm(k)
	r := call("alice", "POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"id": kUUID}})
	wantStatus(t, "alice opens a.ipynb", r, 201)
	aliceSession := r.object(t)["id"].(string)

	// An admin-scoped principal (the whole root, under a name of its own)
	// gets its own session back, and may change it.
	r = call("ops", "POST", "/api/sessions", map[string]any{"path": "ops.ipynb", "type": "notebook", "kernel": map[string]any{"id": kUUID}})
	wantStatus(t, "ops opens ops.ipynb", r, 201)
	opsSession := r.object(t)["id"]
	r = call("ops", "POST", "/api/sessions", map[string]any{"path": "ops.ipynb", "type": "notebook", "kernel": map[string]any{"id": kUUID}})
	if wantStatus(t, "ops opens ops.ipynb again", r, 201); r.object(t)["id"] != opsSession {
		t.Fatalf("ops's second open: %s, want its session %s", r.body, opsSession)
	}
	wantStatus(t, "ops renames its session", call("ops", "PATCH", "/api/sessions/"+opsSession.(string), map[string]any{"name": "ops"}), 200)
	wantStatus(t, "ops deletes its session", call("ops", "DELETE", "/api/sessions/"+opsSession.(string), nil), 204)
	// NB: the delete shut the kernel down: alice's session went with it.
	k = startKernelTool(t, alice)
	kUUID, _ = events.UUIDForm(k)
	r = call("alice", "POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"id": kUUID}})
	wantStatus(t, "alice opens a.ipynb on her new kernel", r, 201)
	aliceSession = r.object(t)["id"].(string)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "dave", "access": "execute"})

	// Bob's a.ipynb is in users/bob/: a session of its own.
	r = call("bob", "POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "bob opens a.ipynb", r, 201)
	bobs := r.object(t)
	bobKernel := sessionShape(t, bobs, "a.ipynb", "notebook")
	if bobs["id"] == aliceSession || bobKernel == kUUID {
		t.Fatalf("bob's a.ipynb got alice's session on alice's kernel: %s", r.body)
	}
	// Bob sees both (alice's through the share), and opening again gives
	// him his own again.
	r = call("bob", "POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "bob opens a.ipynb again", r, 201)
	if again := r.object(t); again["id"] != bobs["id"] {
		t.Fatalf("bob's second open: %s, want his session %s", r.body, bobs["id"])
	}
	// And alice still gets hers.
	r = call("alice", "POST", "/api/sessions", map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "alice opens a.ipynb again", r, 201)
	if again := r.object(t); again["id"] != aliceSession {
		t.Fatalf("alice's second open: %s, want her session %s", r.body, aliceSession)
	}

	// A read share: no rename, no move.
	wantStatus(t, "bob renames alice's session", call("bob", "PATCH", "/api/sessions/"+aliceSession, map[string]any{"path": "stolen.ipynb"}), 403)
	wantStatus(t, "bob moves alice's session", call("bob", "PATCH", "/api/sessions/"+aliceSession, map[string]any{"kernel": map[string]any{"id": bobKernel}}), 403)
	r = call("alice", "GET", "/api/sessions/"+aliceSession, nil)
	wantStatus(t, "alice's session", r, 200)
	if sessionShape(t, r.object(t), "a.ipynb", "notebook") != kUUID {
		t.Fatalf("alice's session changed: %s", r.body)
	}
	var list []map[string]any
	call("alice", "GET", "/api/sessions", nil).json(t, &list)
	if len(list) != 1 || list[0]["id"] != aliceSession {
		t.Fatalf("alice's sessions: %v", list)
	}

	// Nor may an execute share change someone else's session: its path is
	// in alice's root.
	wantStatus(t, "dave renames alice's session", call("dave", "PATCH", "/api/sessions/"+aliceSession, map[string]any{"name": "by dave"}), 403)

	// On the shared kernel, each may open a session of their own (read),
	// but only dave (execute) may then change his.
	for who, want := range map[string]int{"bob": 403, "dave": 200} {
		r := call(who, "POST", "/api/sessions", map[string]any{"path": who + ".ipynb", "type": "notebook", "kernel": map[string]any{"id": kUUID}})
		wantStatus(t, who+" opens a session on alice's kernel", r, 201)
		own := r.object(t)["id"].(string)
		r = call(who, "PATCH", "/api/sessions/"+own, map[string]any{"name": "renamed by " + who})
		wantStatus(t, who+" renames his session on alice's kernel", r, want)
		if want == 200 {
			if m := r.object(t); m["name"] != "renamed by "+who {
				t.Fatalf("%s's rename: %s", who, r.body)
			}
		}
	}
	r = call("alice", "GET", "/api/sessions/"+aliceSession, nil)
	if m := r.object(t); m["name"] != "" || m["path"] != "a.ipynb" {
		t.Fatalf("alice's session after the others: %s", r.body)
	}
}

// TestJupyterAPISessionsMoveFails: a PATCH that starts a new kernel for
// the session and then cannot move the session onto it (a path the kernel
// actor refuses) answers 400 and shuts the started kernel down again.
func TestJupyterAPISessionsMoveFails(t *testing.T) {
	c, _ := inProcess(t)
	srv := httptest.NewServer(c.httpHandler())
	t.Cleanup(srv.Close)
	ts := srv.URL
	tok := "token " + c.token
	r := jupyterCall(t, ts, "POST", "/api/sessions", tok, map[string]any{"path": "a.ipynb", "type": "notebook", "kernel": map[string]any{"name": "python3"}})
	wantStatus(t, "POST a.ipynb", r, 201)
	m := r.object(t)
	k1 := sessionShape(t, m, "a.ipynb", "notebook")
	wantError(t, "PATCH a path over the bound onto a new kernel", jupyterCall(t, ts, "PATCH", "/api/sessions/"+m["id"].(string), tok,
		map[string]any{"path": strings.Repeat("p", 2000), "kernel": map[string]any{"name": "python3"}}), 400, "bad session")
	var list []map[string]any
	jupyterCall(t, ts, "GET", "/api/kernels", tok, nil).json(t, &list)
	if len(list) != 1 || list[0]["id"] != k1 {
		t.Fatalf("kernels after a failed move: %v, want only %s", list, k1)
	}
}

// TestJupyterAPIInternalErrorHidesPaths: a kernel start that fails for a
// reason of the server's own (its runtime/kernels directory is a file, so
// the kernel's directory cannot be made: an error naming the data dir)
// answers 500 with a fixed message, never the error's text with the data
// dir's absolute path; the detail goes to the server's log.
func TestJupyterAPIInternalErrorHidesPaths(t *testing.T) {
	c, _ := inProcess(t)
	srv := httptest.NewServer(c.httpHandler())
	t.Cleanup(srv.Close)
	tok := "token " + c.token
	kernelsDir := filepath.Join(c.cfg.DataDir, "runtime", "kernels")
	if err := os.RemoveAll(kernelsDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(kernelsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernelsDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := jupyterCall(t, srv.URL, "POST", "/api/kernels", tok, map[string]any{"name": "python3"})
	wantError(t, "POST /api/kernels with no kernels dir", r, 500, "internal server error")
	if bytes.Contains(r.body, []byte(c.cfg.DataDir)) || bytes.Contains(r.body, []byte("not a directory")) {
		t.Fatalf("the error shows the server's detail: %s", r.body)
	}
}
