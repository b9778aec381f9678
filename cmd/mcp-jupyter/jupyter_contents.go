package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// jupyterContents serves /api/contents (infra/jupyterapi.Contents) on the
// caller's notebook root (notebookroot.go: the whole root for admins,
// users/<name>/ for other principals). Every change to a notebook goes
// through its notebook actor (Replace, Rename, Remove, each an event), so a
// frontend's save and an agent's hash-guarded edit are serialized on the
// same lock and checked against the same sha256: neither overwrites the
// other silently. Plain files and directories are written here directly
// (atomically, under the same sidecar lock for files).
//
// Scopes as the notebook tools: reading needs read, any change execute.
type jupyterContents struct {
	nbs *notebooks
}

// contentsBy is the By label of changes made through the contents API.
const contentsBy = "jupyter-api"

// maxUntitled bounds the names tried for a new untitled entry or a copy.
const maxUntitled = 10000

var _ jupyterapi.Contents = jupyterContents{}

// contentsAPI is the Contents of the ready core (jupyterAPI mounts it).
func (c *core) contentsAPI() jupyterapi.Contents {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return jupyterContents{nbs: c.nbs}
}

func cerr(status int, format string, args ...any) *jupyterapi.ContentsError {
	return &jupyterapi.ContentsError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// entry is one resolved API path.
type entry struct {
	root  notebookRoot
	abs   string
	rel   string // relative to the caller's root: the API path
	whole string // relative to the whole root: what notebook actors use
}

func (e entry) notebook() bool { return strings.HasSuffix(e.rel, ".ipynb") }

// resolve confines p to the caller's root, checking its scope first.
// write says the caller means to change something (hidden paths then
// answer 400, as jupyter_server does, instead of 404).
func (c jupyterContents) resolve(ctx context.Context, p string, write bool) (entry, error) {
	pr, err := auth.Caller(ctx)
	if err != nil {
		return entry{}, cerr(403, "%v", err)
	}
	need, what := auth.ScopeRead, "read"
	if write {
		need, what = auth.ScopeExecute, "execute"
	}
	if !pr.Scopes.Has(need) {
		return entry{}, cerr(403, "refused: this needs the %s scope, and principal %q has %q; ask an admin for a token with %s", what, pr.Name, pr.Scopes.String(), what)
	}
	r, err := rootFor(ctx, c.nbs.mgr.Root())
	if err != nil {
		return entry{}, err // NB: a 500: its detail (server paths) is logged, not answered
	}
	abs, rel, err := r.own.ResolveEntry(p)
	if err != nil {
		switch {
		case errors.Is(err, nbfile.ErrHidden) && write:
			return entry{}, cerr(400, "Cannot create, change or delete hidden file or directory %q", p)
		case errors.Is(err, nbfile.ErrHidden), errors.Is(err, fs.ErrNotExist):
			return entry{}, cerr(404, "file or directory %q does not exist", p)
		case errors.Is(err, nbfile.ErrOutsideRoot):
			return entry{}, cerr(404, "%q is outside root contents directory", p)
		}
		return entry{}, cerr(400, "bad path %q: %v", p, err) // NB: ResolveEntry names no server path
	}
	return entry{root: r, abs: abs, rel: rel, whole: path.Join(strings.TrimSuffix(r.prefix, "/"), rel)}, nil
}

// actorErr maps a notebook actor's refusal to its status. NB: messages are
// made from the API path only: the errors themselves name absolute server
// paths (and, for users' roots, the whole root's layout), which a client
// has no business seeing. Anything else is a 500 whose detail is logged.
func actorErr(e entry, err error) error {
	var ce *nbactor.ConflictError
	var fe *nbfile.FormatError
	switch {
	case errors.As(err, &ce):
		return &jupyterapi.ContentsError{Status: 409, Err: err, Message: fmt.Sprintf(
			"%s changed since the version you read (you sent sha256 %s, it is now %s); nothing was written: "+
				"GET it again (hash=1), merge, and save with the new hash", e.rel, shortHash(ce.Expected), shortHash(ce.Current))}
	case errors.Is(err, nbactor.ErrChanged):
		return cerrWrap(409, err, "%s was changed by someone else while this request was being made; nothing was changed: GET it again and retry", e.rel)
	case errors.Is(err, nbfile.ErrLocked):
		return cerrWrap(409, err, "%s is being written right now; GET it again and retry in a moment", e.rel)
	case errors.Is(err, nbactor.ErrExists), errors.Is(err, nbfile.ErrTargetExists):
		return cerrWrap(409, err, "File already exists: the target of this request on %s is already there; choose another name, or delete it first", e.rel)
	case errors.As(err, &fe):
		msg := fmt.Sprintf("Unreadable Notebook: %s %s", e.rel, fe.Reason)
		if fe.Hint != "" {
			msg += "; " + fe.Hint
		}
		return cerrWrap(400, err, "%s", msg)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, nbactor.ErrNoFile):
		return cerrWrap(404, err, "file or directory %q does not exist", e.rel)
	case errors.Is(err, nbfile.ErrOutsideRoot):
		return cerrWrap(404, err, "%q is outside root contents directory", e.rel)
	}
	return err
}

func cerrWrap(status int, err error, format string, args ...any) *jupyterapi.ContentsError {
	return &jupyterapi.ContentsError{Status: status, Err: err, Message: fmt.Sprintf(format, args...)}
}

// cause is what went wrong in err without the path it names (a PathError's
// or LinkError's errno text), for messages that give the API path instead.
func cause(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err.Error()
	case errors.As(err, &le):
		return le.Err.Error()
	}
	return "see the server log"
}

// diskFull answers a refusal for disk space. NB: the space check's own
// message names the data directory's path, which the client is not told.
func diskFull(err error) *jupyterapi.ContentsError {
	return cerrWrap(507, err, "disk full: the server's data disk has less free space than it keeps free (--min-free-disk); nothing was written: ask the operator to free space, then save again")
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (c jupyterContents) do(ctx context.Context, e entry, guard string, op nbactor.Op) (nbactor.Result, error) {
	if err := c.nbs.space(); err != nil {
		return nbactor.Result{}, diskFull(err)
	}
	pr, _ := auth.Caller(ctx)
	res, err := c.nbs.mgr.Do(ctx, nbactor.Command{Path: e.whole, ExpectedHash: guard, By: contentsBy, Principal: pr.Name, Op: op})
	if err != nil {
		return res, actorErr(e, err)
	}
	return res, nil
}

func (c jupyterContents) Get(ctx context.Context, p string, q jupyterapi.ContentsQuery) (jupyterapi.ContentsModel, error) {
	e, err := c.resolve(ctx, p, false)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	return c.model(e, q)
}

// model builds the model of e as jupyter_server's FileContentsManager.get
// does.
func (c jupyterContents) model(e entry, q jupyterapi.ContentsQuery) (jupyterapi.ContentsModel, error) {
	fi, err := os.Stat(e.abs)
	if err != nil {
		return jupyterapi.ContentsModel{}, cerr(404, "file or directory %q does not exist", e.rel)
	}
	m := baseModel(e.abs, e.rel, fi)
	switch {
	case fi.IsDir():
		if q.Type != "" && q.Type != "directory" {
			return m, cerr(400, "%s is a directory, not a %s", e.rel, q.Type)
		}
		m.Type, m.Size = "directory", nil
		if q.Content {
			list, err := c.listing(e)
			if err != nil {
				return m, err
			}
			m.Content, m.Format = list, "json"
		}
		return m, nil
	case !fi.Mode().IsRegular():
		return m, cerr(404, "file or directory %q does not exist", e.rel)
	case q.Type == "directory":
		return m, cerr(400, "%s is not a directory", e.rel)
	case q.Type == "notebook" || q.Type == "" && e.notebook():
		m.Type = "notebook"
		if !e.notebook() {
			return m, cerr(400, "Unreadable Notebook: %s is not an .ipynb file; read it with type=file", e.rel)
		}
		if !q.Content && !q.Hash {
			return m, nil
		}
		var f *nbfile.File
		if q.Content {
			f, _, err = c.nbs.mgr.Read(e.whole)
		} else {
			f, err = nbfile.ReadBytes(e.abs)
		}
		if err != nil {
			return m, actorErr(e, err)
		}
		if q.Content {
			content, err := nbfile.JupyterJSON(f.Bytes)
			if err != nil {
				return m, actorErr(e, err)
			}
			m.Content, m.Format = content, "json"
		}
		if q.Hash {
			m.Hash = f.Hash
		}
		return m, nil
	}
	m.Type = "file"
	m.Mimetype = mimeOf(e.rel)
	if !q.Content && !q.Hash {
		return m, nil
	}
	f, err := nbfile.ReadBytes(e.abs)
	if err != nil {
		return m, actorErr(e, err)
	}
	if q.Hash {
		m.Hash = f.Hash
	}
	if q.Content {
		format := q.Format
		if format == "" {
			format = "base64"
			if utf8.Valid(f.Bytes) {
				format = "text"
			}
		}
		switch format {
		case "text":
			if !utf8.Valid(f.Bytes) {
				return m, cerr(400, "%s is not UTF-8 encoded", e.rel)
			}
			m.Content = string(f.Bytes)
		default:
			m.Content = base64.StdEncoding.EncodeToString(f.Bytes)
		}
		m.Format = format
		if m.Mimetype == "" {
			m.Mimetype = map[string]string{"text": "text/plain", "base64": "application/octet-stream"}[format]
		}
	}
	return m, nil
}

func baseModel(abs, rel string, fi os.FileInfo) jupyterapi.ContentsModel {
	size := fi.Size()
	m := jupyterapi.ContentsModel{Name: path.Base(rel), Path: rel, LastModified: fi.ModTime(), Created: fi.ModTime(), Size: &size,
		Writable: syscall.Access(abs, 2 /* W_OK */) == nil}
	if rel == "" {
		m.Name = ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.Created = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return m
}

func mimeOf(name string) string {
	t := mime.TypeByExtension(path.Ext(name))
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	return t
}

// listing is a directory's entries without content, hidden ones left out
// (as jupyter_server does unless allow_hidden), as are entries that are
// neither files nor directories and symlinks leading out of the root.
func (c jupyterContents) listing(e entry) ([]jupyterapi.ContentsModel, error) {
	des, err := os.ReadDir(e.abs)
	if err != nil {
		return nil, cerr(404, "directory %q does not exist", e.rel)
	}
	out := []jupyterapi.ContentsModel{}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		abs, rel, err := e.root.own.ResolveEntry(path.Join(e.rel, name))
		if err != nil {
			continue
		}
		m, err := c.model(entry{root: e.root, abs: abs, rel: rel, whole: path.Join(strings.TrimSuffix(e.root.prefix, "/"), rel)}, jupyterapi.ContentsQuery{})
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// contentBytes decodes a PUT's content for a file or a notebook saved as
// text.
func contentBytes(in jupyterapi.ContentsInput) ([]byte, error) {
	if in.Type == "notebook" {
		if len(in.Content) == 0 || in.Content[0] != '{' {
			return nil, cerr(400, "a notebook's content must be the nbformat JSON object")
		}
		return in.Content, nil
	}
	var s string
	if err := json.Unmarshal(in.Content, &s); err != nil {
		return nil, cerr(400, "a file's content must be a string (format text or base64)")
	}
	switch in.Format {
	case "", "text":
		return []byte(s), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, cerr(400, "the content is not valid base64: %v", err)
		}
		return b, nil
	}
	return nil, cerr(400, "format %q is not one of text, base64", in.Format)
}

func (c jupyterContents) Save(ctx context.Context, p string, in jupyterapi.ContentsInput, guard string) (jupyterapi.ContentsModel, bool, error) {
	e, err := c.resolve(ctx, p, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, false, err
	}
	if e.rel == "" {
		return jupyterapi.ContentsModel{}, false, cerr(400, "Cannot save to the root directory itself")
	}
	fi, statErr := os.Stat(e.abs)
	created := statErr != nil
	if in.Type == "directory" {
		if statErr == nil && !fi.IsDir() {
			return jupyterapi.ContentsModel{}, false, cerr(400, "Not a directory: %s", e.rel)
		}
		if created {
			if err := os.Mkdir(e.abs, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return jupyterapi.ContentsModel{}, false, cerrWrap(400, err, "Cannot create directory %s: %s", e.rel, cause(err))
			}
		}
		m, err := c.model(e, jupyterapi.ContentsQuery{})
		return m, created, err
	}
	if statErr == nil && fi.IsDir() {
		return jupyterapi.ContentsModel{}, false, cerr(400, "%s is a directory: save a file or notebook at another path", e.rel)
	}
	b, err := contentBytes(in)
	if err != nil {
		return jupyterapi.ContentsModel{}, false, err
	}
	if in.Type == "notebook" && !e.notebook() {
		return jupyterapi.ContentsModel{}, false, cerr(400, "a notebook's path must end in .ipynb (%s does not); save it as type file instead", e.rel)
	}
	if e.notebook() {
		// NB: every save of a .ipynb, as a notebook or as text, goes through
		// its actor: one writer, one hash check, one record of the change.
		res, err := c.do(ctx, e, guard, nbactor.Replace{Bytes: b})
		if err != nil {
			return jupyterapi.ContentsModel{}, false, err
		}
		m, err := c.model(e, jupyterapi.ContentsQuery{})
		m.Hash = res.Hash
		return m, created, err
	}
	hash, err := c.writeFile(e, b, guard, false)
	if err != nil {
		return jupyterapi.ContentsModel{}, false, err
	}
	m, err := c.model(e, jupyterapi.ContentsQuery{})
	m.Hash = hash
	return m, created, err
}

// writeFile writes a plain file whole under its sidecar lock, refusing
// when guard is set and the file is not that version, or (mustBeNew) when a
// file is there.
func (c jupyterContents) writeFile(e entry, b []byte, guard string, mustBeNew bool) (string, error) {
	if err := c.nbs.space(); err != nil {
		return "", diskFull(err)
	}
	unlock, err := nbfile.Lock(e.abs)
	if err != nil {
		return "", actorErr(e, err)
	}
	defer unlock()
	cur, err := nbfile.ReadBytes(e.abs)
	switch {
	case err == nil && mustBeNew:
		return "", cerr(409, "File already exists: %s", e.rel)
	case err == nil && guard != "" && cur.Hash != guard:
		return "", cerr(409, "%s changed since the version you read (you sent sha256 %s, it is now %s); nothing was written: GET it again (hash=1) and save with the new hash",
			e.rel, shortHash(guard), shortHash(cur.Hash))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", actorErr(e, err)
	case err != nil && guard != "":
		return "", cerr(409, "%s does not exist any more (you sent sha256 %s); nothing was written", e.rel, shortHash(guard))
	}
	// NB: written beside and renamed into place, keeping the file's mode
	// (0644 when new); a new file is linked into place, never over one
	// that appeared meanwhile.
	nbfile.RemoveStaleTemps(e.abs)
	p, err := nbfile.Prepare(e.abs, b)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", e.rel, err)
	}
	if mustBeNew {
		err = p.CommitNew()
		if _, serr := os.Lstat(e.abs); err != nil && serr == nil {
			return "", cerr(409, "File already exists: %s", e.rel)
		}
	} else {
		err = p.Commit()
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", e.rel, err)
	}
	return nbfile.Hash(b), nil
}

// emptyNotebook is what a new untitled notebook holds (nbformat's
// new_notebook(): no cells, no kernelspec until the frontend picks one).
const emptyNotebook = `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`

// increment is jupyter_server's increment_filename: name, then name with
// insert and 1, 2, ... before the extension (the last one for .ipynb, the
// first dot otherwise).
func increment(name, insert string, i int) string {
	if i == 0 {
		return name
	}
	base, ext := name, ""
	if strings.HasSuffix(name, ".ipynb") {
		base, ext = strings.TrimSuffix(name, ".ipynb"), ".ipynb"
	} else if j := strings.IndexByte(name, '.'); j >= 0 {
		base, ext = name[:j], name[j:]
	}
	return fmt.Sprintf("%s%s%d%s", base, insert, i, ext)
}

func (c jupyterContents) NewUntitled(ctx context.Context, dir, typ, ext string) (jupyterapi.ContentsModel, error) {
	d, err := c.resolve(ctx, dir, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	if fi, err := os.Stat(d.abs); err != nil || !fi.IsDir() {
		if err == nil && fi.Mode().IsRegular() {
			return jupyterapi.ContentsModel{}, cerr(400, "Cannot POST to files, use PUT instead.")
		}
		return jupyterapi.ContentsModel{}, cerr(404, "No such directory: %s", d.rel)
	}
	if typ == "" {
		typ = "file"
		if ext == ".ipynb" {
			typ = "notebook"
		}
	}
	var name, insert string
	switch typ {
	case "directory":
		name, insert = "Untitled Folder", " "
	case "notebook":
		name = "Untitled.ipynb"
	default:
		name = "untitled" + ext
	}
	for i := range maxUntitled {
		e, err := c.resolve(ctx, path.Join(d.rel, increment(name, insert, i)), true)
		if err != nil {
			return jupyterapi.ContentsModel{}, err
		}
		if _, err := os.Lstat(e.abs); err == nil {
			continue
		}
		switch typ {
		case "directory":
			err = os.Mkdir(e.abs, 0o755)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
		case "notebook":
			_, err = c.do(ctx, e, "", nbactor.Replace{Bytes: []byte(emptyNotebook), New: true})
			if errors.Is(err, nbactor.ErrExists) {
				continue
			}
		default:
			_, err = c.writeFile(e, nil, "", true)
			var ce *jupyterapi.ContentsError
			if errors.As(err, &ce) && ce.Status == 409 {
				continue
			}
		}
		if err != nil {
			return jupyterapi.ContentsModel{}, err
		}
		return c.model(e, jupyterapi.ContentsQuery{})
	}
	return jupyterapi.ContentsModel{}, cerr(409, "no free untitled name in %s after %d tries: rename some", d.rel, maxUntitled)
}

func (c jupyterContents) Copy(ctx context.Context, from, to string) (jupyterapi.ContentsModel, error) {
	src, err := c.resolve(ctx, from, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	fi, err := os.Stat(src.abs)
	if err != nil {
		return jupyterapi.ContentsModel{}, cerr(404, "file or directory %q does not exist", src.rel)
	}
	if fi.IsDir() {
		return jupyterapi.ContentsModel{}, cerr(400, "Can't copy directories")
	}
	dst, err := c.resolve(ctx, to, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	dir, name := dst.rel, path.Base(src.rel)
	if dfi, err := os.Stat(dst.abs); err == nil && !dfi.IsDir() {
		return jupyterapi.ContentsModel{}, cerr(400, "Cannot POST to files, use PUT instead.")
	} else if err != nil {
		// A full target path: its directory must exist.
		dir, name = path.Dir(dst.rel), path.Base(dst.rel)
		if dir == "." {
			dir = ""
		}
		if _, err := c.resolve(ctx, dir, true); err != nil {
			return jupyterapi.ContentsModel{}, cerr(404, "No such parent directory: %s to copy file in", dir)
		}
	}
	b, err := nbfile.ReadBytes(src.abs)
	if err != nil {
		return jupyterapi.ContentsModel{}, actorErr(src, err)
	}
	for i := range maxUntitled {
		e, err := c.resolve(ctx, path.Join(dir, increment(name, "-Copy", i)), true)
		if err != nil {
			return jupyterapi.ContentsModel{}, err
		}
		if _, err := os.Lstat(e.abs); err == nil {
			continue
		}
		if e.notebook() {
			_, err = c.do(ctx, e, "", nbactor.Replace{Bytes: b.Bytes, New: true})
			if errors.Is(err, nbactor.ErrExists) {
				continue
			}
		} else {
			_, err = c.writeFile(e, b.Bytes, "", true)
			var ce *jupyterapi.ContentsError
			if errors.As(err, &ce) && ce.Status == 409 {
				continue
			}
		}
		if err != nil {
			return jupyterapi.ContentsModel{}, err
		}
		return c.model(e, jupyterapi.ContentsQuery{})
	}
	return jupyterapi.ContentsModel{}, cerr(409, "no free name for a copy of %s in %s after %d tries", src.rel, dir, maxUntitled)
}

func (c jupyterContents) Rename(ctx context.Context, from, to, guard string) (jupyterapi.ContentsModel, error) {
	src, err := c.resolve(ctx, from, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	if src.rel == "" {
		return jupyterapi.ContentsModel{}, cerr(400, "Cannot rename the root directory")
	}
	fi, err := os.Lstat(src.abs)
	if err != nil {
		return jupyterapi.ContentsModel{}, cerr(404, "File or directory does not exist: %s", src.rel)
	}
	dst, err := c.resolve(ctx, to, true)
	if err != nil {
		return jupyterapi.ContentsModel{}, err
	}
	if dst.rel == "" {
		return jupyterapi.ContentsModel{}, cerr(400, "Cannot rename %s to the root directory", src.rel)
	}
	if dst.rel == src.rel {
		return c.model(dst, jupyterapi.ContentsQuery{})
	}
	if strings.HasPrefix(dst.rel, src.rel+"/") {
		return jupyterapi.ContentsModel{}, cerr(400, "Cannot move %s into itself (to %s): choose a target outside it", src.rel, dst.rel)
	}
	if _, err := os.Lstat(dst.abs); err == nil {
		return jupyterapi.ContentsModel{}, cerr(409, "File already exists: %s", dst.rel)
	}
	if src.notebook() && fi.Mode().IsRegular() {
		if _, err := c.do(ctx, src, guard, nbactor.Rename{To: dst.whole}); err != nil {
			return jupyterapi.ContentsModel{}, err
		}
		return c.model(dst, jupyterapi.ContentsQuery{})
	}
	if !fi.IsDir() {
		// NB: a plain file (or link) is renamed under its writer lock, as it
		// is written: a save of it cannot land between the check and the
		// move.
		unlock, err := nbfile.Lock(src.abs)
		if err != nil {
			return jupyterapi.ContentsModel{}, actorErr(src, err)
		}
		defer unlock()
	}
	if guard != "" {
		if cur, err := nbfile.ReadBytes(src.abs); err != nil || cur.Hash != guard {
			return jupyterapi.ContentsModel{}, cerr(409, "%s changed since the version you read; nothing was renamed", src.rel)
		}
	}
	if err := nbfile.RenameNoReplace(src.abs, dst.abs); err != nil {
		switch {
		case errors.Is(err, nbfile.ErrTargetExists):
			return jupyterapi.ContentsModel{}, cerr(409, "File already exists: %s", dst.rel)
		case errors.Is(err, nbfile.ErrIntoItself):
			return jupyterapi.ContentsModel{}, cerr(400, "Cannot move %s into itself (to %s): choose a target outside it", src.rel, dst.rel)
		}
		return jupyterapi.ContentsModel{}, fmt.Errorf("rename %s to %s: %w", src.rel, dst.rel, err)
	}
	if fi.Mode().IsRegular() {
		nbfile.RenameCheckpoints(src.abs, dst.abs)
	}
	return c.model(dst, jupyterapi.ContentsQuery{})
}

func (c jupyterContents) Delete(ctx context.Context, p, guard string) error {
	e, err := c.resolve(ctx, p, true)
	if err != nil {
		return err
	}
	if e.rel == "" {
		return cerr(400, "Can't delete root")
	}
	fi, err := os.Lstat(e.abs)
	if err != nil {
		return cerr(404, "file or directory %q does not exist", e.rel)
	}
	switch {
	case fi.IsDir():
		return c.deleteDir(e)
	case e.notebook() && fi.Mode().IsRegular():
		_, err := c.do(ctx, e, guard, nbactor.Remove{})
		return err
	}
	unlock, err := nbfile.Lock(e.abs)
	if err != nil {
		return actorErr(e, err)
	}
	defer unlock()
	if guard != "" {
		if cur, err := nbfile.ReadBytes(e.abs); err != nil || cur.Hash != guard {
			return cerr(409, "%s changed since the version you read; nothing was deleted", e.rel)
		}
	}
	if err := os.Remove(e.abs); err != nil {
		return cerrWrap(403, err, "Permission denied: %s (%s)", e.rel, cause(err))
	}
	nbfile.RemoveCheckpoints(e.abs)
	return atomicfile.SyncDir(filepath.Dir(e.abs))
}

// deleteDir removes an empty directory. NB: a directory holding only what
// the server keeps beside files (checkpoints, writer locks) is empty to the
// person: those are removed one by one, then the directory with rmdir,
// which fails when anything appeared meanwhile — a notebook saved there
// between the listing and the removal is never deleted without an event.
func (c jupyterContents) deleteDir(e entry) error {
	des, err := os.ReadDir(e.abs)
	if err != nil {
		return fmt.Errorf("list %s: %w", e.rel, err)
	}
	notEmpty := cerr(400, "Directory %s not empty", e.rel)
	for _, de := range des {
		n := de.Name()
		if n != nbfile.CheckpointDir && !(strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".lock") && de.Type().IsRegular()) {
			return notEmpty
		}
	}
	for _, de := range des {
		p := filepath.Join(e.abs, de.Name())
		if de.Name() == nbfile.CheckpointDir {
			err = os.RemoveAll(p) // the server's copies only: hidden, never served
		} else {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return cerrWrap(403, err, "Permission denied: %s (%s)", e.rel, cause(err))
		}
	}
	if err := os.Remove(e.abs); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return notEmpty
		}
		return cerrWrap(403, err, "Permission denied: %s (%s)", e.rel, cause(err))
	}
	return atomicfile.SyncDir(filepath.Dir(e.abs))
}

// file resolves p to an existing regular file, for the checkpoint routes.
func (c jupyterContents) file(ctx context.Context, p string, write bool) (entry, error) {
	e, err := c.resolve(ctx, p, write)
	if err != nil {
		return e, err
	}
	if fi, err := os.Stat(e.abs); err != nil || !fi.Mode().IsRegular() {
		return e, cerr(404, "file %q does not exist (checkpoints are kept for files and notebooks)", e.rel)
	}
	return e, nil
}

func (c jupyterContents) Checkpoints(ctx context.Context, p string) ([]jupyterapi.Checkpoint, error) {
	e, err := c.file(ctx, p, false)
	if err != nil {
		return nil, err
	}
	cps, err := nbfile.ListCheckpoints(e.abs)
	if err != nil {
		return nil, err
	}
	out := make([]jupyterapi.Checkpoint, 0, len(cps))
	for _, cp := range cps {
		out = append(out, jupyterapi.Checkpoint{ID: cp.ID, LastModified: cp.Modified})
	}
	return out, nil
}

func (c jupyterContents) CreateCheckpoint(ctx context.Context, p string) (jupyterapi.Checkpoint, error) {
	e, err := c.file(ctx, p, true)
	if err != nil {
		return jupyterapi.Checkpoint{}, err
	}
	if err := c.nbs.space(); err != nil {
		return jupyterapi.Checkpoint{}, diskFull(err)
	}
	f, err := nbfile.ReadBytes(e.abs)
	if err != nil {
		return jupyterapi.Checkpoint{}, actorErr(e, err)
	}
	if err := nbfile.WriteCheckpoint(e.abs, nbfile.CheckpointID, f.Bytes); err != nil {
		return jupyterapi.Checkpoint{}, err
	}
	// NB: as jupyter_server's copy2, the checkpoint carries the time of the
	// version it holds, which is what a frontend's "revert" dialog shows.
	cp := nbfile.CheckpointPath(e.abs, nbfile.CheckpointID)
	if src, err := os.Stat(e.abs); err == nil {
		_ = os.Chtimes(cp, src.ModTime(), src.ModTime())
	}
	fi, err := os.Stat(cp)
	if err != nil {
		return jupyterapi.Checkpoint{}, err
	}
	return jupyterapi.Checkpoint{ID: nbfile.CheckpointID, LastModified: fi.ModTime()}, nil
}

func (c jupyterContents) RestoreCheckpoint(ctx context.Context, p, id string) error {
	e, err := c.resolve(ctx, p, true)
	if err != nil {
		return err
	}
	b, err := nbfile.ReadCheckpoint(e.abs, id)
	if err != nil {
		if errors.Is(err, nbfile.ErrNoCheckpoint) {
			return cerr(404, "Checkpoint does not exist: %s@%s", e.rel, id)
		}
		return err
	}
	if e.notebook() {
		// NB: a restore is a save: the version it replaces is kept too.
		_, err := c.do(ctx, e, "", nbactor.Replace{Bytes: b, Restored: id})
		return err
	}
	_, err = c.writeFile(e, b, "", false)
	return err
}

func (c jupyterContents) DeleteCheckpoint(ctx context.Context, p, id string) error {
	e, err := c.resolve(ctx, p, true)
	if err != nil {
		return err
	}
	if err := nbfile.RemoveCheckpoint(e.abs, id); err != nil {
		if errors.Is(err, nbfile.ErrNoCheckpoint) {
			return cerr(404, "Checkpoint does not exist: %s@%s", e.rel, id)
		}
		return err
	}
	return nil
}
