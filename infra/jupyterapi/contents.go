package jupyterapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Contents is what /api/contents needs: the files under the caller's
// notebook root as jupyter_server 2.x's contents service shows them. Paths
// are API paths: slash-separated, relative to the caller's root, "" for
// the root itself. The context carries the authenticated principal; the
// backend decides what it may see and change. Methods are called
// concurrently.
//
// Errors the backend means for the client are *ContentsError or
// *StatusError (the status, and the message shown); a caller that went away
// or ran out of time is a 504; anything else a 500 with a generic message
// (the error, which may name server paths, is logged).
type Contents interface {
	// Get returns the entry at path: a directory (Content: its entries,
	// without content), a notebook (Content: the nbformat JSON) or a file
	// (Content: text, or base64 for bytes that are not UTF-8).
	Get(ctx context.Context, path string, q ContentsQuery) (ContentsModel, error)
	// Save writes the entry at path whole (PUT): a notebook through the
	// notebook actor, a file, or a directory. ifMatch, when not empty, is
	// the sha256 the caller read: the save is refused (409) unless the file
	// is still that version. created says the entry did not exist (201).
	Save(ctx context.Context, path string, in ContentsInput, ifMatch string) (m ContentsModel, created bool, err error)
	// NewUntitled makes a new entry in directory dir ("Untitled.ipynb",
	// "untitled.txt", "Untitled Folder", numbered to be unique).
	NewUntitled(ctx context.Context, dir, typ, ext string) (ContentsModel, error)
	// Copy copies the file at from into directory dir ("<name>-Copy1.ipynb").
	Copy(ctx context.Context, from, dir string) (ContentsModel, error)
	// Rename moves the entry at from to to, never replacing one there (409).
	Rename(ctx context.Context, from, to, ifMatch string) (ContentsModel, error)
	// Delete removes the entry at path (an empty directory only).
	Delete(ctx context.Context, path, ifMatch string) error
	// Checkpoints lists the checkpoints of the file at path, oldest first.
	Checkpoints(ctx context.Context, path string) ([]Checkpoint, error)
	// CreateCheckpoint keeps the file's current version as its checkpoint.
	CreateCheckpoint(ctx context.Context, path string) (Checkpoint, error)
	// RestoreCheckpoint makes checkpoint id the file's current version.
	RestoreCheckpoint(ctx context.Context, path, id string) error
	// DeleteCheckpoint removes checkpoint id of the file at path.
	DeleteCheckpoint(ctx context.Context, path, id string) error
}

// ContentsQuery is what GET asks for.
type ContentsQuery struct {
	Type    string // "", "directory", "file" or "notebook"
	Format  string // "", "text" or "base64" (files)
	Content bool   // include the content
	Hash    bool   // include hash and hash_algorithm
}

// ContentsInput is the model a PUT sends.
type ContentsInput struct {
	Type   string // "notebook", "file" or "directory"
	Format string // "json", "text" or "base64"
	// Content is the raw JSON of the model's content: an object for a
	// notebook, a string for a file; nil when absent.
	Content json.RawMessage
}

// ContentsModel is one entry as jupyter_server 2.x answers it. Empty
// strings and nil pointers are written as JSON null, as it does.
type ContentsModel struct {
	Name, Path, Type      string
	Created, LastModified time.Time
	Size                  *int64
	Writable              bool
	Mimetype, Format      string
	// Content is json.RawMessage (notebook), string (file) or
	// []ContentsModel (directory); nil when not asked for.
	Content any
	// Hash is the sha256 of the file's bytes: for a notebook the same hash
	// read_notebook shows and the notebook tools take as expected_hash.
	Hash string
	// Message is an optional note (jupyter_server's validation message).
	Message string
}

// Checkpoint is one kept version of a file.
type Checkpoint struct {
	ID           string
	LastModified time.Time
}

// ContentsError is an error the client is meant to see, with its status.
type ContentsError struct {
	Status  int
	Message string
	Err     error
}

func (e *ContentsError) Error() string { return e.Message }
func (e *ContentsError) Unwrap() error { return e.Err }

// jupyterTime is how jupyter_server writes dates (ISO 8601, microseconds, Z).
func jupyterTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MarshalJSON writes every key jupyter_server writes, null where it does.
func (m ContentsModel) MarshalJSON() ([]byte, error) {
	out := map[string]any{
		"name": m.Name, "path": m.Path, "type": m.Type,
		"created": jupyterTime(m.Created), "last_modified": jupyterTime(m.LastModified),
		"size": m.Size, "writable": m.Writable,
		"mimetype": nullable(m.Mimetype), "format": nullable(m.Format),
		"content": m.Content, "hash": nullable(m.Hash), "hash_algorithm": nil,
	}
	if m.Hash != "" {
		out["hash_algorithm"] = "sha256"
	}
	if m.Message != "" {
		out["message"] = m.Message
	}
	return json.Marshal(out)
}

// MarshalJSON writes {"id", "last_modified"}.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"id": c.ID, "last_modified": jupyterTime(c.LastModified)})
}

// DefaultContentsMaxBody bounds a PUT, POST or PATCH body when
// Options.ContentsMaxBody is 0.
const DefaultContentsMaxBody = 64 << 20

const contentsPrefix = "/api/contents"

func (s *Server) routesContents(mux *http.ServeMux) {
	mux.HandleFunc(contentsPrefix, s.serveContents)
	mux.HandleFunc(contentsPrefix+"/", s.serveContents)
}

// contentsTarget splits a URL path into the API path and, for the
// checkpoint routes, the checkpoint part ("" for none, "/" for the list,
// else the id).
func contentsTarget(urlPath string) (path string, checkpoint string, isCheckpoint bool) {
	p := strings.Trim(strings.TrimPrefix(urlPath, contentsPrefix), "/")
	if p == "checkpoints" || strings.HasSuffix(p, "/checkpoints") {
		return strings.TrimRight(strings.TrimSuffix(p, "checkpoints"), "/"), "", true
	}
	if i := strings.LastIndex(p, "/checkpoints/"); i >= 0 || strings.HasPrefix(p, "checkpoints/") {
		head, id := "", strings.TrimPrefix(p, "checkpoints/")
		if i >= 0 {
			head, id = p[:i], p[i+len("/checkpoints/"):]
		}
		if id != "" && !strings.Contains(id, "/") {
			return strings.TrimRight(head, "/"), id, true
		}
	}
	return p, "", false
}

func contentsLocation(path string) string {
	return (&url.URL{Path: contentsPrefix + "/" + path}).EscapedPath()
}

func (s *Server) serveContents(w http.ResponseWriter, r *http.Request) {
	path, cpID, isCP := contentsTarget(r.URL.Path)
	if isCP {
		s.serveCheckpoints(w, r, path, cpID)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.contentsGet(w, r, path)
	case http.MethodPut:
		s.contentsPut(w, r, path)
	case http.MethodPost:
		s.contentsPost(w, r, path)
	case http.MethodPatch:
		s.contentsPatch(w, r, path)
	case http.MethodDelete:
		if path == "" {
			writeError(w, http.StatusBadRequest, "Can't delete root")
			return
		}
		if err := s.opts.Contents.Delete(r.Context(), path, ifMatch(r)); err != nil {
			s.contentsError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, POST, PATCH, DELETE")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+contentsPrefix)
	}
}

// ifMatch is the hash guard of an If-Match header ("<sha256>", quoted or
// not, W/ ignored; "*" means no guard).
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	if v == "*" {
		return ""
	}
	return v
}

func (s *Server) contentsGet(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	var cq ContentsQuery
	switch t := q.Get("type"); t {
	case "", "directory", "file", "notebook":
		cq.Type = t
	default:
		cq.Type = "file" // NB: jupyter_server falls back to file
	}
	switch f := q.Get("format"); f {
	case "", "text", "base64":
		cq.Format = f
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Format %q is invalid", f))
		return
	}
	switch c := q.Get("content"); c {
	case "", "1":
		cq.Content = true
	case "0":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Content %q is invalid", c))
		return
	}
	switch h := q.Get("hash"); h {
	case "", "0":
	case "1":
		cq.Hash = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Hash argument %q is invalid. It must be '0' or '1'.", h))
		return
	}
	m, err := s.opts.Contents.Get(r.Context(), path, cq)
	if err != nil {
		s.contentsError(w, r, err)
		return
	}
	s.finishModel(w, http.StatusOK, m, false)
}

func (s *Server) finishModel(w http.ResponseWriter, status int, m ContentsModel, location bool) {
	if location {
		w.Header().Set("Location", contentsLocation(m.Path))
	}
	w.Header().Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	if m.Hash != "" {
		w.Header().Set("ETag", `"`+m.Hash+`"`)
	}
	writeJSON(w, status, m)
}

// readBody decodes a JSON object body into v; ok false means an error was
// written. An empty body leaves v as it is and reports present false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) (present, ok bool) {
	limit := s.opts.ContentsMaxBody
	if limit <= 0 {
		limit = DefaultContentsMaxBody
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over %d bytes, the most this server takes on %s", limit, contentsPrefix))
			return false, false
		}
		writeError(w, http.StatusBadRequest, "read the request body: "+err.Error())
		return false, false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return false, true
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON in body of request: "+err.Error())
		return false, false
	}
	return true, true
}

// putBody is the model a PUT or POST sends.
type putBody struct {
	Type          *string         `json:"type"`
	Format        *string         `json:"format"`
	Content       json.RawMessage `json:"content"`
	CopyFrom      string          `json:"copy_from"`
	Ext           string          `json:"ext"`
	Path          string          `json:"path"`
	Hash          string          `json:"hash"`
	HashAlgorithm string          `json:"hash_algorithm"`
	Chunk         *int            `json:"chunk"`
}

func (b putBody) empty() bool {
	return b.Type == nil && b.Format == nil && len(b.Content) == 0 && b.CopyFrom == "" && b.Ext == "" &&
		b.Path == "" && b.Hash == "" && b.HashAlgorithm == "" && b.Chunk == nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) contentsPut(w http.ResponseWriter, r *http.Request, path string) {
	var b putBody
	present, ok := s.readBody(w, r, &b)
	if !ok {
		return
	}
	if !present || b.empty() {
		// NB: jupyter_server's "if model:": an empty model too makes a new
		// untitled file in the directory path.
		m, err := s.opts.Contents.NewUntitled(r.Context(), path, "", "")
		if err != nil {
			s.contentsError(w, r, err)
			return
		}
		s.finishModel(w, http.StatusCreated, m, true)
		return
	}
	if b.CopyFrom != "" {
		writeError(w, http.StatusBadRequest, "Cannot copy with PUT, only POST")
		return
	}
	if b.Chunk != nil {
		writeError(w, http.StatusBadRequest, "chunked uploads are not supported by this server: send the whole file in one PUT")
		return
	}
	if b.Type == nil {
		writeError(w, http.StatusBadRequest, "No file type provided")
		return
	}
	in := ContentsInput{Type: *b.Type, Format: str(b.Format)}
	switch in.Type {
	case "directory", "file", "notebook":
	default:
		in.Type = "file" // NB: jupyter_server falls back to file
	}
	if len(b.Content) > 0 && string(b.Content) != "null" {
		in.Content = b.Content
	} else if in.Type != "directory" {
		writeError(w, http.StatusBadRequest, "No file content provided")
		return
	}
	guard := ifMatch(r)
	if guard == "" && b.Hash != "" {
		if b.HashAlgorithm != "" && b.HashAlgorithm != "sha256" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("hash_algorithm %q is not supported: this server's hashes are sha256", b.HashAlgorithm))
			return
		}
		guard = b.Hash
	}
	m, created, err := s.opts.Contents.Save(r.Context(), path, in, guard)
	if err != nil {
		s.contentsError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.finishModel(w, status, m, true)
}

func (s *Server) contentsPost(w http.ResponseWriter, r *http.Request, path string) {
	var b putBody
	present, ok := s.readBody(w, r, &b)
	if !ok {
		return
	}
	var (
		m   ContentsModel
		err error
	)
	switch {
	case present && b.CopyFrom != "":
		m, err = s.opts.Contents.Copy(r.Context(), strings.Trim(b.CopyFrom, "/"), path)
	case present:
		typ := str(b.Type)
		switch typ {
		case "", "directory", "file", "notebook":
		default:
			typ = "file"
		}
		if strings.ContainsAny(b.Ext, "/\\\x00") {
			writeError(w, http.StatusBadRequest, "ext must be a file name extension such as .py, without a slash")
			return
		}
		m, err = s.opts.Contents.NewUntitled(r.Context(), path, typ, b.Ext)
	default:
		m, err = s.opts.Contents.NewUntitled(r.Context(), path, "", "")
	}
	if err != nil {
		s.contentsError(w, r, err)
		return
	}
	s.finishModel(w, http.StatusCreated, m, true)
}

func (s *Server) contentsPatch(w http.ResponseWriter, r *http.Request, path string) {
	var b struct {
		Path *string `json:"path"`
	}
	present, ok := s.readBody(w, r, &b)
	if !ok {
		return
	}
	if !present {
		writeError(w, http.StatusBadRequest, "JSON body missing")
		return
	}
	to := path
	if b.Path != nil {
		to = strings.Trim(*b.Path, "/")
	}
	m, err := s.opts.Contents.Rename(r.Context(), path, to, ifMatch(r))
	if err != nil {
		s.contentsError(w, r, err)
		return
	}
	s.finishModel(w, http.StatusOK, m, true)
}

func (s *Server) serveCheckpoints(w http.ResponseWriter, r *http.Request, path, id string) {
	ctx := r.Context()
	switch {
	case id == "" && r.Method == http.MethodGet:
		cps, err := s.opts.Contents.Checkpoints(ctx, path)
		if err != nil {
			s.contentsError(w, r, err)
			return
		}
		if cps == nil {
			cps = []Checkpoint{}
		}
		writeJSON(w, http.StatusOK, cps)
	case id == "" && r.Method == http.MethodPost:
		cp, err := s.opts.Contents.CreateCheckpoint(ctx, path)
		if err != nil {
			s.contentsError(w, r, err)
			return
		}
		w.Header().Set("Location", contentsLocation(path)+"/checkpoints/"+url.PathEscape(cp.ID))
		writeJSON(w, http.StatusCreated, cp)
	case id != "" && r.Method == http.MethodPost:
		if err := s.opts.Contents.RestoreCheckpoint(ctx, path, id); err != nil {
			s.contentsError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case id != "" && r.Method == http.MethodDelete:
		if err := s.opts.Contents.DeleteCheckpoint(ctx, path, id); err != nil {
			s.contentsError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		allow := "GET, POST"
		if id != "" {
			allow = "POST, DELETE"
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on checkpoints")
	}
}

// contentsInternalError is the message of every 500 of /api/contents.
const contentsInternalError = "the server failed to do this; nothing more is said here: the server's log has the detail (look for \"contents\" at this time)"

func (s *Server) contentsError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *ContentsError
	if errors.As(err, &ce) {
		writeError(w, ce.Status, ce.Message)
		return
	}
	status, msg := statusOf(err) // *StatusError too, as the kernel routes
	if status == http.StatusInternalServerError {
		// NB: the detail names server paths and internals: logged for the
		// operator, not answered to the client.
		s.log.Error("contents", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = contentsInternalError
	}
	writeError(w, status, msg)
}
