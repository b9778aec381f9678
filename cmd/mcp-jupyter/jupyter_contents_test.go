package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mark3labs/mcp-go/client"
	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// contentsServer serves the real /api/contents of core c over real HTTP as
// principal p (what mcpserver.Guard puts in the context).
func contentsServer(t testing.TB, c *core, p auth.Principal, maxBody int64) *httptest.Server {
	t.Helper()
	h := jupyterapi.New(jupyterapi.Options{Contents: c.contentsAPI(), ContentsMaxBody: maxBody}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type apiReply struct {
	status int
	header http.Header
	body   []byte
}

func (r apiReply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("reply %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

func api(t testing.TB, srv *httptest.Server, method, path string, body any, header ...string) apiReply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return apiReply{status: res.StatusCode, header: res.Header, body: b}
}

func cWantStatus(t testing.TB, r apiReply, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
}

// wantError checks jupyter_server's error shape {"message", "reason"}.
func cWantError(t testing.TB, r apiReply, status int, what, inMessage string) {
	t.Helper()
	cWantStatus(t, r, status, what)
	m := r.json(t)
	msg, _ := m["message"].(string)
	if m["reason"] != http.StatusText(status) || msg == "" || !strings.Contains(msg, inMessage) {
		t.Fatalf("%s: error body %s, want reason %q and a message with %q", what, r.body, http.StatusText(status), inMessage)
	}
}

// modelKeys are the keys of every jupyter_server 2.x contents model.
var modelKeys = []string{"name", "path", "type", "format", "mimetype", "content", "created", "last_modified", "size", "writable", "hash", "hash_algorithm"}

func wantModel(t testing.TB, m map[string]any, path, typ string) {
	t.Helper()
	for _, k := range modelKeys {
		if _, ok := m[k]; !ok {
			t.Fatalf("model lacks %q: %v", k, m)
		}
	}
	if m["path"] != path || m["type"] != typ || m["name"] != filepath.Base(path) {
		t.Fatalf("model path/type/name = %v/%v/%v, want %s/%s", m["path"], m["type"], m["name"], path, typ)
	}
}

// notebookJSON is a small nbformat 4 notebook whose one code cell holds src.
func notebookJSON(src string) map[string]any {
	return map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{},
		"cells": []any{map[string]any{"cell_type": "code", "id": "c0", "source": src, "metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil}}}
}

// TestContentsRoundTrip drives /api/contents as JupyterLab does: new
// untitled notebook, get with content and hash (the hash read_notebook
// shows), save, rename, copy, files in both formats, directories, delete.
func TestContentsRoundTrip(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)

	r := api(t, srv, "PUT", "/api/contents/work", map[string]any{"type": "directory"})
	cWantStatus(t, r, 201, "PUT a directory")
	wantModel(t, r.json(t), "work", "directory")
	r = api(t, srv, "POST", "/api/contents/work", map[string]any{"type": "notebook"})
	cWantStatus(t, r, 201, "POST a new notebook")
	m := r.json(t)
	wantModel(t, m, "work/Untitled.ipynb", "notebook")
	if r.header.Get("Location") != "/api/contents/work/Untitled.ipynb" || m["content"] != nil {
		t.Fatalf("new notebook: Location %q, content %v", r.header.Get("Location"), m["content"])
	}
	wantNotebookFile(t, filepath.Join(root, "work", "Untitled.ipynb"))
	if r := api(t, srv, "POST", "/api/contents/work", map[string]any{"type": "notebook"}); r.json(t)["name"] != "Untitled1.ipynb" {
		t.Fatalf("second untitled notebook: %s", r.body)
	}
	if r := api(t, srv, "PUT", "/api/contents/work", "{}"); r.status != 201 || r.json(t)["name"] != "untitled" {
		t.Fatalf("PUT {} to a directory (jupyter_server: a new untitled file): %d %s", r.status, r.body)
	}

	r = api(t, srv, "PUT", "/api/contents/work/a.ipynb", map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("1+1")})
	cWantStatus(t, r, 201, "PUT a new notebook")
	saved := r.json(t)["hash"].(string)
	r = api(t, srv, "GET", "/api/contents/work/a.ipynb?content=1&hash=1", nil)
	cWantStatus(t, r, 200, "GET the notebook")
	m = r.json(t)
	wantModel(t, m, "work/a.ipynb", "notebook")
	sc := must(t, cl, "read_notebook", map[string]any{"path": "work/a.ipynb"})
	if m["hash"] != sc["sha256"] || m["hash"] != saved || m["hash_algorithm"] != "sha256" || m["format"] != "json" {
		t.Fatalf("GET hash %v (%v), PUT hash %s, read_notebook sha256 %v", m["hash"], m["hash_algorithm"], saved, sc["sha256"])
	}
	if r.header.Get("ETag") != `"`+saved+`"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}
	cells := m["content"].(map[string]any)["cells"].([]any)
	if len(cells) != 1 || cells[0].(map[string]any)["source"] != "1+1" {
		t.Fatalf("content cells: %v", cells)
	}
	if r := api(t, srv, "GET", "/api/contents/work/a.ipynb?content=0", nil); r.json(t)["content"] != nil || r.json(t)["hash"] != nil {
		t.Fatalf("content=0: %s", r.body)
	}

	// Saving back what was read, as JupyterLab does (it marks code cells
	// trusted), changes nothing: same hash, no version kept.
	content := m["content"].(map[string]any)
	content["cells"].([]any)[0].(map[string]any)["metadata"] = map[string]any{"trusted": true}
	r = api(t, srv, "PUT", "/api/contents/work/a.ipynb", map[string]any{"type": "notebook", "format": "json", "content": content})
	cWantStatus(t, r, 200, "PUT back unchanged")
	if r.json(t)["hash"] != saved {
		t.Fatalf("saving back what GET gave changed the hash: %v, was %s", r.json(t)["hash"], saved)
	}
	if cps := mustList(t, srv, "work/a.ipynb"); len(cps) != 0 {
		t.Fatalf("an unchanged save kept a version: %v", cps)
	}

	// Save over it: 200 and a new hash.
	r = api(t, srv, "PUT", "/api/contents/work/a.ipynb", map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("2+2")})
	cWantStatus(t, r, 200, "PUT over the notebook")
	if r.json(t)["hash"] == saved {
		t.Fatal("the save did not change the hash")
	}

	// The listing hides what the server keeps beside notebooks.
	r = api(t, srv, "GET", "/api/contents/work", nil)
	cWantStatus(t, r, 200, "GET the directory")
	var names []string
	for _, e := range r.json(t)["content"].([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "Untitled.ipynb,Untitled1.ipynb,a.ipynb,untitled" {
		t.Fatalf("listing %v (hidden lock and checkpoint files must not show)", names)
	}

	// Rename through the notebook actor; the old path is gone.
	r = api(t, srv, "PATCH", "/api/contents/work/a.ipynb", map[string]any{"path": "work/b.ipynb"})
	cWantStatus(t, r, 200, "PATCH rename")
	wantModel(t, r.json(t), "work/b.ipynb", "notebook")
	cWantError(t, api(t, srv, "GET", "/api/contents/work/a.ipynb", nil), 404, "GET the old name", "does not exist")
	cWantError(t, api(t, srv, "PATCH", "/api/contents/work/b.ipynb", map[string]any{"path": "work/Untitled.ipynb"}), 409, "rename onto another notebook", "already")

	// Copy.
	r = api(t, srv, "POST", "/api/contents/work", map[string]any{"copy_from": "work/b.ipynb"})
	cWantStatus(t, r, 201, "POST copy_from")
	if r.json(t)["name"] != "b-Copy1.ipynb" {
		t.Fatalf("copy: %s", r.body)
	}

	// Files, text and base64.
	r = api(t, srv, "PUT", "/api/contents/work/notes.txt", map[string]any{"type": "file", "format": "text", "content": "héllo\n"})
	cWantStatus(t, r, 201, "PUT a text file")
	r = api(t, srv, "PUT", "/api/contents/work/blob.bin", map[string]any{"type": "file", "format": "base64", "content": "AP8A"})
	cWantStatus(t, r, 201, "PUT a binary file")
	if fi, err := os.Stat(filepath.Join(root, "work", "notes.txt")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("a new file's mode: %v %v (want 0644, as Jupyter makes them)", fi.Mode(), err)
	}
	m = api(t, srv, "GET", "/api/contents/work/notes.txt", nil).json(t)
	if m["content"] != "héllo\n" || m["format"] != "text" || m["mimetype"] != "text/plain" {
		t.Fatalf("text file: %v", m)
	}
	m = api(t, srv, "GET", "/api/contents/work/blob.bin", nil).json(t)
	if m["content"] != "AP8A" || m["format"] != "base64" {
		t.Fatalf("binary file: %v", m)
	}
	cWantError(t, api(t, srv, "GET", "/api/contents/work/blob.bin?format=text", nil), 400, "binary as text", "not UTF-8")

	// Delete: a file, a notebook (through the actor), then the emptied dir.
	cWantError(t, api(t, srv, "DELETE", "/api/contents/work", nil), 400, "delete a full directory", "not empty")
	for _, p := range []string{"untitled", "notes.txt", "blob.bin", "b.ipynb", "b-Copy1.ipynb", "Untitled.ipynb", "Untitled1.ipynb"} {
		cWantStatus(t, api(t, srv, "DELETE", "/api/contents/work/"+p, nil), 204, "DELETE "+p)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/work", nil), 204, "DELETE the emptied directory")
	if _, err := os.Stat(filepath.Join(root, "work")); !os.IsNotExist(err) {
		t.Fatalf("work still there: %v", err)
	}

	// Every notebook change was an event naming the contents API.
	seen := map[string]int{}
	if err := c.log.Read(context.Background(), 1, 0, func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.NotebookReplaced:
			seen[e.Type]++
			if p.By != contentsBy || e.Principal != auth.AdminName {
				t.Errorf("NotebookReplaced by %q principal %q", p.By, e.Principal)
			}
		case events.NotebookRenamed:
			seen[e.Type]++
			if p.Path != "work/a.ipynb" || p.To != "work/b.ipynb" {
				t.Errorf("NotebookRenamed %+v", p)
			}
		case events.NotebookRemoved:
			seen[e.Type]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen[events.TypeNotebookReplaced] != 6 || seen[events.TypeNotebookRenamed] != 1 || seen[events.TypeNotebookRemoved] != 4 {
		t.Fatalf("notebook events %v, want 6 replaced (2 untitled, 3 saves, 1 copy), 1 renamed, 4 removed", seen)
	}
}

func wantNotebookFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nbfile.Parse(b); err != nil {
		t.Fatalf("%s is not a notebook: %v", path, err)
	}
}

// agentNotebook makes work/shared.ipynb through the agent's tools and
// returns the hash the agent read and the id of its one cell.
func agentNotebook(t *testing.T, cl *client.Client, root string) (hash, cell string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := must(t, cl, "create_notebook", map[string]any{"path": "work/shared.ipynb"})
	sc = must(t, cl, "insert_cell", map[string]any{"path": "work/shared.ipynb", "expected_hash": sc["sha256"], "source": "agent = 1"})
	return sc["sha256"].(string), sc["cell_id"].(string)
}

// TestContentsFrontendSaveRefusesAgentsStaleEdit: an agent read the
// notebook (hash h), a person saved it from a frontend; the agent's edit
// guarded by h is refused with a conflict and the person's save stands.
func TestContentsFrontendSaveRefusesAgentsStaleEdit(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	read, cell := agentNotebook(t, cl, root)

	r := api(t, srv, "PUT", "/api/contents/work/shared.ipynb", map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("person = 2")})
	cWantStatus(t, r, 200, "the frontend's save")
	personHash := r.json(t)["hash"].(string)

	_, text := callTool(t, cl, "edit_cell", map[string]any{"path": "work/shared.ipynb", "expected_hash": read, "cell": cell, "source": "agent = 3"})
	if !strings.Contains(text, "changed on disk since you read it") || !strings.Contains(text, "Nothing was written") {
		t.Fatalf("the agent's stale edit was not refused as a conflict: %s", text)
	}
	f, err := nbfile.ReadFile(filepath.Join(root, "work", "shared.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Hash != personHash || f.Notebook.Cells[0].Source != "person = 2" {
		t.Fatalf("the person's save was overwritten: hash %s, cells %+v", f.Hash, f.Notebook.Cells)
	}
}

// TestContentsStaleGuardIs409: a frontend that read version A saves with
// If-Match A (or the model's hash A) after an agent made B: 409, B stays;
// with If-Match B the save goes through.
func TestContentsStaleGuardIs409(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	agentNotebook(t, cl, root)
	a := api(t, srv, "GET", "/api/contents/work/shared.ipynb?hash=1", nil).json(t)["hash"].(string)
	sc := must(t, cl, "insert_cell", map[string]any{"path": "work/shared.ipynb", "expected_hash": a, "source": "agent = 2"})
	b := sc["sha256"].(string)

	body := map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("person")}
	cWantError(t, api(t, srv, "PUT", "/api/contents/work/shared.ipynb", body, "If-Match", `"`+a+`"`), 409, "PUT with a stale If-Match", "changed since the version you read")
	withHash := map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("person"), "hash": a, "hash_algorithm": "sha256"}
	cWantError(t, api(t, srv, "PUT", "/api/contents/work/shared.ipynb", withHash, ""), 409, "PUT with a stale model hash", "changed since the version you read")
	cWantError(t, api(t, srv, "DELETE", "/api/contents/work/shared.ipynb", nil, "If-Match", a), 409, "DELETE with a stale If-Match", "")
	if now := api(t, srv, "GET", "/api/contents/work/shared.ipynb?hash=1&content=0", nil).json(t)["hash"]; now != b {
		t.Fatalf("after refused saves the file is %v, want the agent's %s", now, b)
	}
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/work/shared.ipynb", body, "If-Match", `"`+b+`"`), 200, "PUT with the current If-Match")
}

// TestContentsSaveKeepsReplacedVersion: an unguarded save over an agent's
// version keeps that version as a checkpoint; restoring it brings back the
// very bytes (same sha256), and that restore keeps the save it replaced.
func TestContentsSaveKeepsReplacedVersion(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	agents, _ := agentNotebook(t, cl, root)

	cWantStatus(t, api(t, srv, "PUT", "/api/contents/work/shared.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("person")}), 200, "unguarded save")
	r := api(t, srv, "GET", "/api/contents/work/shared.ipynb/checkpoints", nil)
	cWantStatus(t, r, 200, "list checkpoints")
	var cps []map[string]any
	if err := json.Unmarshal(r.body, &cps); err != nil {
		t.Fatal(err)
	}
	kept := nbfile.ReplacedID(agents)
	if len(cps) != 1 || cps[0]["id"] != kept || cps[0]["last_modified"] == nil {
		t.Fatalf("checkpoints %s, want the agent's version %s", r.body, kept)
	}
	cWantStatus(t, api(t, srv, "POST", "/api/contents/work/shared.ipynb/checkpoints/"+kept, nil), 204, "restore the kept version")
	sc := must(t, cl, "read_notebook", map[string]any{"path": "work/shared.ipynb"})
	if sc["sha256"] != agents {
		t.Fatalf("restored sha256 %v, want the agent's %s", sc["sha256"], agents)
	}
	if n := len(mustList(t, srv, "work/shared.ipynb")); n != 2 {
		t.Fatalf("after the restore %d checkpoints, want 2 (the agent's and the person's)", n)
	}

	// A frontend's own checkpoint: create, restore, delete.
	r = api(t, srv, "POST", "/api/contents/work/shared.ipynb/checkpoints", nil)
	cWantStatus(t, r, 201, "create a checkpoint")
	if r.json(t)["id"] != "checkpoint" || r.header.Get("Location") != "/api/contents/work/shared.ipynb/checkpoints/checkpoint" {
		t.Fatalf("create checkpoint: %s %q", r.body, r.header.Get("Location"))
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/work/shared.ipynb/checkpoints/checkpoint", nil), 204, "delete the checkpoint")
	cWantError(t, api(t, srv, "POST", "/api/contents/work/shared.ipynb/checkpoints/checkpoint", nil), 404, "restore a deleted checkpoint", "Checkpoint does not exist")

	// The kept versions are bounded.
	for i := range nbfile.MaxReplacedKept + 3 {
		cWantStatus(t, api(t, srv, "PUT", "/api/contents/work/shared.ipynb", map[string]any{"type": "notebook", "content": notebookJSON(strings.Repeat("x", i+1))}), 200, "save")
	}
	if n := len(mustList(t, srv, "work/shared.ipynb")); n != nbfile.MaxReplacedKept {
		t.Fatalf("%d kept versions, want the bound %d", n, nbfile.MaxReplacedKept)
	}
}

func mustList(t testing.TB, srv *httptest.Server, path string) []map[string]any {
	t.Helper()
	r := api(t, srv, "GET", "/api/contents/"+path+"/checkpoints", nil)
	cWantStatus(t, r, 200, "list checkpoints")
	var cps []map[string]any
	if err := json.Unmarshal(r.body, &cps); err != nil {
		t.Fatal(err)
	}
	return cps
}

// TestContentsBadInput: paths out of the root, hidden paths, bad queries
// and bodies get jupyter_server's statuses with clear messages, and change
// nothing.
func TestContentsBadInput(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 4096)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	nb := map[string]any{"type": "notebook", "content": notebookJSON("1")}

	cWantError(t, api(t, srv, "GET", "/api/contents/out/secret.txt", nil), 404, "a symlink out of the root", "outside root")
	cWantError(t, api(t, srv, "PUT", "/api/contents/out/x.ipynb", nb), 404, "save through a symlink out", "outside root")
	cWantError(t, api(t, srv, "POST", "/api/contents/", map[string]any{"copy_from": "a/../../etc/passwd"}), 404, "copy from above the root", "outside root")
	cWantError(t, api(t, srv, "GET", "/api/contents/.ipynb_checkpoints", nil), 404, "a hidden dir", "does not exist")
	cWantError(t, api(t, srv, "PUT", "/api/contents/.hidden.ipynb", nb), 400, "save a hidden file", "hidden")
	cWantError(t, api(t, srv, "GET", "/api/contents/nope.ipynb", nil), 404, "a missing notebook", "does not exist")
	cWantError(t, api(t, srv, "GET", "/api/contents/f.txt?format=xml", nil), 400, "a bad format", "Format")
	cWantError(t, api(t, srv, "GET", "/api/contents/f.txt?content=2", nil), 400, "a bad content", "Content")
	cWantError(t, api(t, srv, "GET", "/api/contents/f.txt?hash=yes", nil), 400, "a bad hash", "Hash argument")
	cWantError(t, api(t, srv, "GET", "/api/contents/f.txt?type=directory", nil), 400, "a file as a directory", "not a directory")
	cWantError(t, api(t, srv, "GET", "/api/contents/f.txt?type=notebook", nil), 400, "a text file as a notebook", "Unreadable Notebook")
	if err := os.WriteFile(filepath.Join(root, "broken.ipynb"), []byte("{not a notebook"), 0o644); err != nil {
		t.Fatal(err)
	}
	cWantError(t, api(t, srv, "GET", "/api/contents/broken.ipynb", nil), 400, "a broken notebook", "Unreadable Notebook")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", "{not json"), 400, "invalid JSON", "Invalid JSON")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", map[string]any{"content": notebookJSON("1")}), 400, "no type", "No file type")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", map[string]any{"type": "notebook"}), 400, "no content", "No file content")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", map[string]any{"type": "notebook", "content": "text"}), 400, "a notebook as a string", "nbformat JSON object")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", map[string]any{"type": "notebook", "content": map[string]any{"nbformat": 3}}), 400, "not nbformat 4", "Unreadable Notebook")
	cWantError(t, api(t, srv, "PUT", "/api/contents/a.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1"), "copy_from": "f.txt"}), 400, "copy with PUT", "only POST")
	cWantError(t, api(t, srv, "PUT", "/api/contents/big.txt", map[string]any{"type": "file", "content": strings.Repeat("x", 5000)}), 413, "a body over the bound", "bytes")
	cWantError(t, api(t, srv, "POST", "/api/contents/f.txt", nil), 400, "POST to a file", "use PUT")
	cWantError(t, api(t, srv, "POST", "/api/contents/missing", nil), 404, "POST into a missing dir", "No such directory")
	cWantError(t, api(t, srv, "PATCH", "/api/contents/f.txt", nil), 400, "PATCH without a body", "JSON body missing")
	cWantError(t, api(t, srv, "PATCH", "/api/contents/f.txt", map[string]any{"path": "../x.txt"}), 404, "rename out of the root", "outside root")
	cWantError(t, api(t, srv, "PATCH", "/api/contents/f.txt", map[string]any{"path": ".x.txt"}), 400, "rename to a hidden name", "hidden")
	cWantError(t, api(t, srv, "DELETE", "/api/contents/", nil), 400, "delete the root", "Can't delete root")
	cWantError(t, api(t, srv, "DELETE", "/api/contents/nope.txt", nil), 404, "delete a missing file", "does not exist")
	cWantError(t, api(t, srv, "POST", "/api/contents/f.txt/checkpoints/a.b", nil), 404, "a checkpoint id this server never makes", "Checkpoint does not exist")
	cWantError(t, api(t, srv, "POST", "/api/contents/f.txt/checkpoints/nope", nil), 404, "restore an unknown checkpoint", "Checkpoint does not exist")
	cWantError(t, api(t, srv, "GET", "/api/contents/nope.txt/checkpoints", nil), 404, "checkpoints of a missing file", "does not exist")

	// Nothing was made or changed.
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") { // NB: lock files of refused saves are hidden and harmless
			names = append(names, e.Name())
		}
	}
	if strings.Join(names, ",") != "broken.ipynb,f.txt,out" {
		t.Fatalf("the root holds %v after refused requests", names)
	}

	// A broken notebook can still be saved over (its bytes kept) and deleted.
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/broken.ipynb", nb), 200, "save over a broken notebook")
	kept := nbfile.ReplacedID(nbfile.Hash([]byte("{not a notebook")))
	if b, err := nbfile.ReadCheckpoint(filepath.Join(root, "broken.ipynb"), kept); err != nil || string(b) != "{not a notebook" {
		t.Fatalf("the broken bytes were not kept: %q %v", b, err)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/broken.ipynb", nil), 204, "delete the repaired notebook")
}

// TestContentsPrincipalRoots: a principal sees and writes only its own
// root, and one without the execute scope cannot write.
func TestContentsPrincipalRoots(t *testing.T) {
	c, _, root := notebookCore(t)
	if err := os.WriteFile(filepath.Join(root, "admins.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice := contentsServer(t, c, auth.Principal{Name: "alice", Scopes: auth.DefaultScopes}, 0)
	reader := contentsServer(t, c, auth.Principal{Name: "rita", Scopes: auth.ScopeRead}, 0)

	cWantStatus(t, api(t, alice, "PUT", "/api/contents/mine.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}), 201, "alice saves")
	if _, err := os.Stat(filepath.Join(root, "users", "alice", "mine.ipynb")); err != nil {
		t.Fatalf("alice's notebook is not in her root: %v", err)
	}
	m := api(t, alice, "GET", "/api/contents/", nil).json(t)
	if list := m["content"].([]any); len(list) != 1 || list[0].(map[string]any)["path"] != "mine.ipynb" {
		t.Fatalf("alice's root lists %v", list)
	}
	cWantError(t, api(t, alice, "POST", "/api/contents/", map[string]any{"copy_from": "../../admins.txt"}), 404, "alice copies from above her root", "outside root")
	cWantError(t, api(t, alice, "PATCH", "/api/contents/mine.ipynb", map[string]any{"path": "../bob/mine.ipynb"}), 404, "alice renames into bob's root", "outside root")
	cWantError(t, api(t, reader, "PUT", "/api/contents/r.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}), 403, "a read-only principal saves", "execute scope")
	cWantStatus(t, api(t, reader, "GET", "/api/contents/", nil), 200, "a read-only principal lists")
}

// TestContentsMountedBehindToken: /api/contents on the server's own port,
// behind the same token as /mcp, in Jupyter's header and query forms.
func TestContentsMountedBehindToken(t *testing.T) {
	c, cl, _ := notebookCore(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	body := map[string]any{"type": "notebook", "format": "json", "content": notebookJSON("1+1")}
	if r := jupyterCall(t, ts.URL, "PUT", "/api/contents/t.ipynb", "", body); r.status != http.StatusUnauthorized {
		t.Fatalf("PUT without a token: %d %s", r.status, r.body)
	}
	r := jupyterCall(t, ts.URL, "PUT", "/api/contents/t.ipynb", "token "+c.token, body)
	if r.status != 201 || r.header.Get("Location") != "/api/contents/t.ipynb" {
		t.Fatalf("PUT with a token: %d %s", r.status, r.body)
	}
	m := jupyterCall(t, ts.URL, "GET", "/api/contents/t.ipynb?hash=1&token="+c.token, "", nil).object(t)
	if sc := must(t, cl, "read_notebook", map[string]any{"path": "t.ipynb"}); m["hash"] != sc["sha256"] {
		t.Fatalf("hash %v, read_notebook %v", m["hash"], sc["sha256"])
	}
}

// TestContentsRacingSaveAndEdit: a frontend's save and an agent's edit made
// on the same version at the same moment. Guarded on both sides, exactly
// one wins and the other is refused as a conflict (409, or the tool's
// conflict message). Unguarded: when the agent won, the save came after
// it, so the person's content is current and the agent's version is kept
// as a checkpoint; when the agent lost, it lost to the save, whose content
// is current. Never is a version lost silently.
func TestContentsRacingSaveAndEdit(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	agentNotebook(t, cl, root)
	const conflict = "changed on disk since you read it"
	for round := range 8 {
		guarded := round%2 == 0
		base := api(t, srv, "GET", "/api/contents/work/shared.ipynb?hash=1&content=0", nil).json(t)["hash"].(string)
		var header []string
		if guarded {
			header = []string{"If-Match", base}
		}
		person := fmt.Sprintf("person %d", round)
		saved := make(chan apiReply, 1)
		go func() {
			saved <- api(t, srv, "PUT", "/api/contents/work/shared.ipynb",
				map[string]any{"type": "notebook", "content": notebookJSON(person)}, header...)
		}()
		sc, text := callTool(t, cl, "insert_cell", map[string]any{"path": "work/shared.ipynb", "expected_hash": base, "source": fmt.Sprintf("agent %d", round)})
		save := <-saved
		agentWon := !strings.HasPrefix(text, "ERROR")
		if !agentWon && !strings.Contains(text, conflict) {
			t.Fatalf("round %d: the agent's edit failed otherwise than by a conflict: %s", round, text)
		}
		f, err := nbfile.ReadFile(filepath.Join(root, "work", "shared.ipynb"))
		if err != nil {
			t.Fatal(err)
		}
		personCurrent := len(f.Notebook.Cells) == 1 && f.Notebook.Cells[0].Source == person
		switch {
		case guarded && agentWon:
			if save.status != 409 {
				t.Fatalf("round %d: the agent won and the guarded save answered %d, want 409: %s", round, save.status, save.body)
			}
			if f.Hash != sc["sha256"] {
				t.Fatalf("round %d: the agent won but the file is %s, not its %v", round, f.Hash, sc["sha256"])
			}
		case guarded:
			if save.status != 200 || !personCurrent {
				t.Fatalf("round %d: the agent lost (%s) but the guarded save answered %d (%s) and the file holds %+v", round, text, save.status, save.body, f.Notebook.Cells)
			}
		case save.status != 200:
			t.Fatalf("round %d: unguarded save: %d %s", round, save.status, save.body)
		case agentWon:
			// The save came after the edit: the person's content is in
			// place and the agent's version is kept beside it.
			kept := nbfile.ReplacedID(sc["sha256"].(string))
			found := false
			for _, cp := range mustList(t, srv, "work/shared.ipynb") {
				found = found || cp["id"] == kept
			}
			if !found || !personCurrent {
				t.Fatalf("round %d: the agent won: its version %s kept %v, the person's save current %v (file %+v)", round, kept, found, personCurrent, f.Notebook.Cells)
			}
		default:
			if !personCurrent {
				t.Fatalf("round %d: the agent lost to the save, but the save's content is not current: %+v", round, f.Notebook.Cells)
			}
		}
	}
}

// TestContentsDiskFull: with the data dir's file system below
// --min-free-disk (a real small tmpfs), a save is refused with 507 and a
// clear disk-full message and writes nothing; reads still answer; freed
// space makes the next save work.
func TestContentsDiskFull(t *testing.T) {
	small := testkit.SmallFS(t, diskTestFS)
	root := t.TempDir()
	t.Setenv("MCP_NOTEBOOK_ROOT", root)
	cfg := testConfig(t, filepath.Join(small, "data"))
	cfg.MinFreeDisk = diskTestMinFree
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	srv := contentsServer(t, c, auth.Admin(), 0)
	nb := map[string]any{"type": "notebook", "content": notebookJSON("1")}
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/before.ipynb", nb), 201, "save before the disk fills")

	hold := filepath.Join(small, "hold")
	testkit.FillFS(t, hold, cfg.MinFreeDisk/2)
	var refused apiReply
	n := 0
	testkit.WaitUntil(t, 30*time.Second, "a save refused for disk space", func() (bool, string) {
		n++
		refused = api(t, srv, "PUT", fmt.Sprintf("/api/contents/full-%d.ipynb", n), nb)
		return refused.status == 507, fmt.Sprintf("%d %s", refused.status, refused.body)
	})
	cWantError(t, refused, 507, "a save on a full disk", "disk full")
	if strings.Contains(string(refused.body), small) {
		t.Fatalf("the disk-full answer names the server's data directory: %s", refused.body)
	}
	if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("full-%d.ipynb", n))); !os.IsNotExist(err) {
		t.Fatalf("the refused save wrote its file: %v", err)
	}
	cWantStatus(t, api(t, srv, "GET", "/api/contents/before.ipynb", nil), 200, "a read on a full disk")

	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "a save once space is freed", func() (bool, string) {
		r := api(t, srv, "PUT", "/api/contents/after.ipynb", nb)
		return r.status == 201, fmt.Sprintf("%d %s", r.status, r.body)
	})
}

// TestContentsRenameThenAgent: a notebook a person renamed is edited by the
// agent under its new name with the hash it reads there; the old name is
// gone for the agent's tools too.
func TestContentsRenameThenAgent(t *testing.T) {
	c, cl, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	hash, cell := agentNotebook(t, cl, root)
	cWantError(t, api(t, srv, "PATCH", "/api/contents/work/shared.ipynb", map[string]any{"path": "work/moved.ipynb"}, "If-Match", "0000"), 409, "a rename with a stale If-Match", "changed since")
	cWantStatus(t, api(t, srv, "PATCH", "/api/contents/work/shared.ipynb", map[string]any{"path": "work/moved.ipynb"}, "If-Match", hash), 200, "a rename with the current If-Match")
	if _, text := callTool(t, cl, "edit_cell", map[string]any{"path": "work/shared.ipynb", "expected_hash": hash, "cell": cell, "source": "x"}); !strings.Contains(text, "does not exist") {
		t.Fatalf("an edit at the old name: %s", text)
	}
	moved := api(t, srv, "GET", "/api/contents/work/moved.ipynb?hash=1&content=0", nil).json(t)["hash"]
	if moved != hash {
		t.Fatalf("the renamed file's hash %v, was %s (a rename changes no byte)", moved, hash)
	}
	must(t, cl, "edit_cell", map[string]any{"path": "work/moved.ipynb", "expected_hash": hash, "cell": cell, "source": "agent = 2"})
}

// TestContentsSymlinksAreTheLinks: as jupyter_server, a symlink is named,
// renamed and deleted itself — never its target — and a link to a hidden
// directory or file serves nothing (as the hidden entry itself).
func TestContentsSymlinksAreTheLinks(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/real.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("real")}), 201, "save the target")
	real := filepath.Join(root, "real.ipynb")
	before, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.ipynb", filepath.Join(root, "link.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, ".hidden"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".hidden", "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"vis": ".hidden", "s.txt": ".hidden/secret.txt"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}

	var names []string
	for _, e := range api(t, srv, "GET", "/api/contents/", nil).json(t)["content"].([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "link.ipynb,real.ipynb" {
		t.Fatalf("the root lists %v, want the link by its own name and no link into a hidden directory", names)
	}
	if m := api(t, srv, "GET", "/api/contents/link.ipynb", nil).json(t); m["path"] != "link.ipynb" || m["name"] != "link.ipynb" {
		t.Fatalf("GET link.ipynb names %v/%v", m["path"], m["name"])
	}
	for _, p := range []string{"vis", "vis/secret.txt", "s.txt"} {
		cWantError(t, api(t, srv, "GET", "/api/contents/"+p+"?content=1", nil), 404, "GET "+p+" (a link to a hidden entry)", "does not exist")
	}
	cWantError(t, api(t, srv, "PUT", "/api/contents/vis/new.txt", map[string]any{"type": "file", "format": "text", "content": "x"}), 400, "PUT through a link to a hidden directory", "hidden")
	if _, err := os.Stat(filepath.Join(root, ".hidden", "new.txt")); !os.IsNotExist(err) {
		t.Fatalf("a save through a link wrote into the hidden directory: %v", err)
	}

	cWantStatus(t, api(t, srv, "PATCH", "/api/contents/link.ipynb", map[string]any{"path": "moved.ipynb"}), 200, "rename the link")
	if fi, err := os.Lstat(filepath.Join(root, "moved.ipynb")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the rename did not move the link itself: %v %v", fi, err)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/moved.ipynb", nil), 204, "delete the link")
	if _, err := os.Lstat(filepath.Join(root, "moved.ipynb")); !os.IsNotExist(err) {
		t.Fatalf("the link is still there: %v", err)
	}
	if after, err := os.ReadFile(real); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("renaming and deleting the link changed its target: %v", err)
	}
}

// chattrImmutable makes dir immutable (chattr +i) until the test ends: even
// root cannot create, rename or delete in it, so a write there fails for
// real.
func chattrImmutable(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s: %v %s (this test needs root on ext4, as make test has here)", dir, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
}

// TestContentsErrorsNameNoServerPath: refusals and failures answer with the
// API path only; a 500 answers a generic message (the detail is logged):
// no error body holds the notebook root's absolute path.
func TestContentsErrorsNameNoServerPath(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	abs := c.nbs.mgr.Root().Dir()
	if err := os.WriteFile(filepath.Join(root, "bad.ipynb"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/ro", map[string]any{"type": "directory"}), 201, "make a directory")
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/n.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}), 201, "save a notebook")
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/f.txt", map[string]any{"type": "file", "format": "text", "content": "x"}), 201, "save a file")
	chattrImmutable(t, filepath.Join(root, "ro"))

	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/api/contents/bad.ipynb?content=1", nil, 400},
		{"PUT", "/api/contents/ro/x.txt", map[string]any{"type": "file", "format": "text", "content": "x"}, 500},
		{"PUT", "/api/contents/ro/x.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}, 500},
		{"PUT", "/api/contents/ro/sub", map[string]any{"type": "directory"}, 400},
		{"PATCH", "/api/contents/n.ipynb", map[string]any{"path": "ro/n.ipynb"}, 500},
		{"PATCH", "/api/contents/f.txt", map[string]any{"path": "ro/f.txt"}, 500},
	} {
		r := api(t, srv, tc.method, tc.path, tc.body)
		cWantStatus(t, r, tc.status, tc.method+" "+tc.path)
		if strings.Contains(string(r.body), abs) || strings.Contains(string(r.body), root) {
			t.Fatalf("%s %s: the error body names the server's path %s: %s", tc.method, tc.path, abs, r.body)
		}
	}
}

// TestContentsRenameIntoItself: a directory moved into itself — directly,
// or through a symlink to it — is refused with 400 and stays in place (the
// kernel's EINVAL is not taken for a file system without RENAME_NOREPLACE).
func TestContentsRenameIntoItself(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/a", map[string]any{"type": "directory"}), 201, "make a directory")
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	cWantError(t, api(t, srv, "PATCH", "/api/contents/a", map[string]any{"path": "a/b"}), 400, "move a into itself", "into itself")
	cWantError(t, api(t, srv, "PATCH", "/api/contents/a", map[string]any{"path": "l/b"}), 400, "move a into itself through a link", "into itself")
	if fi, err := os.Lstat(filepath.Join(root, "a")); err != nil || !fi.IsDir() {
		t.Fatalf("the directory moved: %v", err)
	}
	cWantStatus(t, api(t, srv, "PATCH", "/api/contents/l", map[string]any{"path": "a/l"}), 200, "a link moved into the directory it points to")
}

// TestContentsRenameFileTakesItsLock: a plain file is renamed under its
// writer lock, as it is written: while another writer holds it, the rename
// is refused with 409 and the file stays.
func TestContentsRenameFileTakesItsLock(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/f.txt", map[string]any{"type": "file", "format": "text", "content": "x"}), 201, "save a file")
	unlock, err := nbfile.Lock(filepath.Join(root, "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cWantError(t, api(t, srv, "PATCH", "/api/contents/f.txt", map[string]any{"path": "g.txt"}), 409, "rename a file being written", "being written")
	if _, err := os.Stat(filepath.Join(root, "f.txt")); err != nil {
		t.Fatalf("the file moved while locked: %v", err)
	}
	unlock()
	cWantStatus(t, api(t, srv, "PATCH", "/api/contents/f.txt", map[string]any{"path": "g.txt"}), 200, "rename once the lock is free")
}

// TestContentsPostExtWithSlash: a new untitled file's ext is an extension,
// not a path: one with a slash is refused with 400 and creates nothing.
func TestContentsPostExtWithSlash(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/d", map[string]any{"type": "directory"}), 201, "make a directory")
	cWantError(t, api(t, srv, "POST", "/api/contents/d", map[string]any{"type": "file", "ext": "/../evil.py"}), 400, "POST an ext with a slash", "ext")
	if des, _ := os.ReadDir(root); len(des) != 1 {
		t.Fatalf("the refused POST created something: %v", des)
	}
	if des, _ := os.ReadDir(filepath.Join(root, "d")); len(des) != 0 {
		t.Fatalf("the refused POST created something in d: %v", des)
	}
}

// TestContentsDeleteDirectory: a directory holding only the server's
// leftovers (checkpoints, writer locks) is deleted; one holding anything
// else, hidden or not, is refused with 400 and left whole.
func TestContentsDeleteDirectory(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/d", map[string]any{"type": "directory"}), 201, "make a directory")
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/d/n.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}), 201, "save a notebook")
	cWantStatus(t, api(t, srv, "POST", "/api/contents/d/n.ipynb/checkpoints", nil), 201, "checkpoint it")
	cWantError(t, api(t, srv, "DELETE", "/api/contents/d", nil), 400, "delete a directory with a notebook", "not empty")
	if _, err := os.Stat(filepath.Join(root, "d", "n.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "d", nbfile.CheckpointDir, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/d/n.ipynb", nil), 204, "delete the notebook")
	if err := os.WriteFile(filepath.Join(root, "d", ".other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cWantError(t, api(t, srv, "DELETE", "/api/contents/d", nil), 400, "delete a directory with a hidden file", "not empty")
	if err := os.Remove(filepath.Join(root, "d", ".other")); err != nil {
		t.Fatal(err)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/d", nil), 204, "delete a directory of leftovers")
	if _, err := os.Lstat(filepath.Join(root, "d")); !os.IsNotExist(err) {
		t.Fatalf("the directory is still there: %v", err)
	}
}

// TestContentsDeleteDirectoryNeverTakesANewFile: a file that appears in a
// directory while it is being deleted (after the emptiness check) is never
// deleted with it: the delete is refused with 400 and the file stays. The
// moment is made exact with a fanotify permission event: the server's
// removal of the directory's checkpoints waits until the test has written
// the new file.
func TestContentsDeleteDirectoryNeverTakesANewFile(t *testing.T) {
	c, _, root := notebookCore(t)
	srv := contentsServer(t, c, auth.Admin(), 0)
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/d", map[string]any{"type": "directory"}), 201, "make a directory")
	cWantStatus(t, api(t, srv, "PUT", "/api/contents/d/n.ipynb", map[string]any{"type": "notebook", "content": notebookJSON("1")}), 201, "save a notebook")
	cWantStatus(t, api(t, srv, "POST", "/api/contents/d/n.ipynb/checkpoints", nil), 201, "checkpoint it")
	cps := filepath.Join(root, "d", nbfile.CheckpointDir)
	// NB: not empty, so removing it opens it (an empty one is rmdir'ed).
	if err := os.Mkdir(filepath.Join(cps, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	cWantStatus(t, api(t, srv, "DELETE", "/api/contents/d/n.ipynb", nil), 204, "delete the notebook")

	late := filepath.Join(root, "d", "late.ipynb")
	hooked := onFirstOpen(t, cps, func() {
		if err := os.WriteFile(late, []byte("{}"), 0o644); err != nil {
			t.Error(err)
		}
	})
	cWantError(t, api(t, srv, "DELETE", "/api/contents/d", nil), 400, "delete a directory a file appeared in", "not empty")
	select {
	case <-hooked:
	default:
		t.Fatal("the delete never opened the checkpoint directory: the file did not appear mid-delete")
	}
	if _, err := os.Stat(late); err != nil {
		t.Fatalf("the file that appeared mid-delete was deleted: %v", err)
	}
}

// onFirstOpen runs hook when dir is first opened by anyone (a fanotify
// permission event: the opener waits until hook returns), and closes the
// returned channel then.
func onFirstOpen(t *testing.T, dir string, hook func()) <-chan struct{} {
	t.Helper()
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY)
	if err != nil {
		t.Fatalf("fanotify_init: %v (this test needs root)", err)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN_PERM|unix.FAN_ONDIR, unix.AT_FDCWD, dir); err != nil {
		_ = unix.Close(fd)
		t.Fatalf("fanotify_mark %s: %v", dir, err)
	}
	hooked, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		first := true
		for {
			select {
			case <-stop:
				return
			default:
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, 100); err != nil || n == 0 {
				continue // NB: wakes to see stop; the events are what the test waits on
			}
			n, err := unix.Read(fd, buf)
			if err != nil {
				continue
			}
			for off := 0; off+int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) <= n; {
				md := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
				if md.Mask&unix.FAN_OPEN_PERM != 0 {
					if first {
						first = false
						hook()
						close(hooked)
					}
					resp := unix.FanotifyResponse{Fd: md.Fd, Response: unix.FAN_ALLOW}
					_, _ = unix.Write(fd, (*[unsafe.Sizeof(resp)]byte)(unsafe.Pointer(&resp))[:])
				}
				if md.Fd >= 0 {
					_ = unix.Close(int(md.Fd))
				}
				off += int(md.Event_len)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		_ = unix.Close(fd) // NB: allows any open still waiting
	})
	return hooked
}
