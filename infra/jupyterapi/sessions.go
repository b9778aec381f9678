package jupyterapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// NoSuchSpec is the error of a start naming a kernelspec that does not
// exist: POST /api/kernels answers it 400, the session routes 501 as
// jupyter_server does ({"message", "short_message"}).
type NoSuchSpec struct{ Name string }

func (e *NoSuchSpec) Error() string {
	return fmt.Sprintf("The '%s' kernel is not available. Please pick another suitable kernel instead, or install that kernel (GET /api/kernelspecs lists them).", e.Name)
}

func (s *Server) routesSessions(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/sessions", s.listSessions)
	mux.HandleFunc("POST /api/sessions", s.createSession)
	mux.HandleFunc("GET /api/sessions/{id}", s.getSession)
	mux.HandleFunc("PATCH /api/sessions/{id}", s.patchSession)
	mux.HandleFunc("DELETE /api/sessions/{id}", s.deleteSession)
}

// sessionModel is jupyter_server's session model; a notebook's also
// carries the deprecated notebook field.
type sessionModel struct {
	ID       string         `json:"id"`
	Path     string         `json:"path"`
	Name     string         `json:"name"`
	Type     string         `json:"type"`
	Kernel   kernelModel    `json:"kernel"`
	Notebook *notebookField `json:"notebook,omitempty"`
}

type notebookField struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

func (s *Server) sessionModel(sess Session) sessionModel {
	m := sessionModel{ID: sess.ID, Path: sess.Path, Name: sess.Name, Type: sess.Type, Kernel: s.kernelModel(sess.Kernel)}
	if sess.Type == "notebook" {
		m.Notebook = &notebookField{Path: sess.Path, Name: sess.Name}
	}
	return m
}

// sessionBody is what POST and PATCH read. Pointers tell a field given
// from one absent; a kernel given as null is absent.
type sessionBody struct {
	Path     *string        `json:"path"`
	Name     *string        `json:"name"`
	Type     *string        `json:"type"`
	Kernel   *kernelRef     `json:"kernel"`
	Notebook *notebookField `json:"notebook"` // the API before 5.0: path or name inside
}

type kernelRef struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// legacy moves the old API's notebook.{path,name} into path and type.
func (b *sessionBody) legacy() {
	if b.Notebook == nil {
		return
	}
	nb := "notebook"
	b.Type = &nb
	switch {
	case b.Notebook.Name != "":
		p := b.Notebook.Name
		b.Path = &p
	case b.Notebook.Path != "":
		p := b.Notebook.Path
		b.Path = &p
	}
}

// sessionID is the route's {id}: session ids are UUIDs, any case.
func sessionID(r *http.Request) string { return strings.ToLower(r.PathValue("id")) }

// failSession answers a start that named no existing kernelspec 501 with
// jupyter_server's {"message", "short_message"}; anything else as fail.
func (s *Server) failSession(w http.ResponseWriter, r *http.Request, err error) {
	var nss *NoSuchSpec
	if errors.As(err, &nss) {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"message": nss.Error(), "short_message": nss.Name + " not found"})
		return
	}
	s.fail(w, r, err)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := s.opts.Kernels.Sessions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]sessionModel, 0, len(ss))
	for _, sess := range ss {
		out = append(out, s.sessionModel(sess))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var b sessionBody
	present, err := readBody(w, r, &b)
	if err == nil && !present {
		err = Errorf(http.StatusBadRequest, "No JSON data provided")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b.legacy()
	if b.Path == nil {
		s.fail(w, r, Errorf(http.StatusBadRequest, "Missing field in JSON data: path"))
		return
	}
	if b.Type == nil {
		s.fail(w, r, Errorf(http.StatusBadRequest, "Missing field in JSON data: type"))
		return
	}
	req := NewSession{Path: *b.Path, Type: *b.Type}
	if b.Name != nil {
		req.Name = *b.Name
	}
	if b.Kernel != nil {
		if b.Kernel.ID != nil {
			req.KernelID = events.CanonicalID(*b.Kernel.ID)
		}
		if b.Kernel.Name != nil {
			req.KernelSpec = *b.Kernel.Name
		}
	}
	sess, _, err := s.opts.Kernels.CreateSession(r.Context(), req)
	if err != nil {
		s.failSession(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, s.sessionModel(sess))
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.opts.Kernels.Session(r.Context(), sessionID(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionModel(sess))
}

func (s *Server) patchSession(w http.ResponseWriter, r *http.Request) {
	var b sessionBody
	present, err := readBody(w, r, &b)
	if err == nil && !present {
		err = Errorf(http.StatusBadRequest, "No JSON data provided")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b.Notebook != nil && b.Notebook.Path != "" {
		// NB: PATCH reads only notebook.path of the old API, as jupyter_server.
		p, nb := b.Notebook.Path, "notebook"
		b.Path, b.Type = &p, &nb
	}
	change := SessionChange{Path: b.Path, Name: b.Name, Type: b.Type}
	if b.Kernel != nil {
		// NB: an id takes precedence over a name.
		if b.Kernel.ID != nil {
			id := events.CanonicalID(*b.Kernel.ID)
			change.KernelID = &id
		} else if b.Kernel.Name != nil {
			change.KernelSpec = b.Kernel.Name
		}
	}
	sess, err := s.opts.Kernels.UpdateSession(r.Context(), sessionID(r), change)
	if err != nil {
		s.failSession(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionModel(sess))
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Kernels.DeleteSession(r.Context(), sessionID(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
