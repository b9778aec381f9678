package jupyterapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// routesKernels mounts /api, /api/status, /api/kernelspecs, /kernelspecs/,
// /api/kernels (but channels), /api/sessions and /api/me.
func (s *Server) routesKernels(mux *http.ServeMux) {
	mux.Handle("GET /api", VersionHandler(s.opts.Version))
	mux.HandleFunc("GET /api/status", s.status)
	mux.HandleFunc("GET /api/me", s.me)
	mux.HandleFunc("GET /api/kernelspecs", s.kernelSpecs)
	mux.HandleFunc("GET /api/kernelspecs/{name}", s.kernelSpec)
	mux.HandleFunc("GET /kernelspecs/{name}/{file...}", s.kernelSpecResource)
	mux.HandleFunc("GET /api/kernels", s.listKernels)
	mux.HandleFunc("POST /api/kernels", s.startKernel)
	mux.HandleFunc("GET /api/kernels/{id}", s.getKernel)
	mux.HandleFunc("DELETE /api/kernels/{id}", s.deleteKernel)
	mux.HandleFunc("POST /api/kernels/{id}/interrupt", s.interruptKernel)
	mux.HandleFunc("POST /api/kernels/{id}/restart", s.restartKernel)
	s.routesSessions(mux)
	// What no route above (or of channels and contents) takes: a trailing
	// slash is redirected away as jupyter_server does; anything else is a
	// 404 in its error shape.
	mux.HandleFunc("/api/", notFound)
	mux.HandleFunc("/kernelspecs/", notFound)
}

// VersionHandler answers GET /api: {"version"}, without authentication
// (jupyter_server's only unauthenticated route; clients probe with it).
func VersionHandler(version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": version})
	})
}

// notFound: jupyter_server redirects a GET with a trailing slash to the
// path without it; anything else unknown is 404.
func notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") {
		u := *r.URL
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		if u.Path != "" {
			http.Redirect(w, r, u.RequestURI(), http.StatusFound)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not Found: no Jupyter API route "+r.Method+" "+r.URL.Path)
}

// fail answers err (statusOf).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		s.log.Warn("jupyter api: failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, status, msg)
}

// isoTime is a time as jupyter_server writes it: ISO 8601 in UTC with Z,
// microseconds (what Python's datetime parses).
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// ShownID is a kernel id as this API shows it: the UUID of the same 128
// bits (the only shape frontends and jupyter_server route), or the id
// itself when it is of another shape.
func ShownID(id string) string {
	if u, ok := events.UUIDForm(id); ok {
		return u
	}
	return id
}

// kernelModel is jupyter_server's kernel model.
type kernelModel struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	LastActivity   string `json:"last_activity"`
	ExecutionState string `json:"execution_state"`
	Connections    int    `json:"connections"`
	Reason         string `json:"reason,omitempty"`
}

// ConnectionCounter is what the channels routes implement on *Server to
// fill the models' connections: the channels WebSockets open on a kernel
// (canonical id). Without it every kernel shows 0.
type ConnectionCounter interface {
	Connections(kernelID string) int
}

func (s *Server) connections(kernelID string) int {
	if cc, ok := any(s).(ConnectionCounter); ok {
		return cc.Connections(kernelID)
	}
	return 0
}

func (s *Server) kernelModel(k Kernel) kernelModel {
	return kernelModel{ID: ShownID(k.ID), Name: k.Spec, LastActivity: isoTime(k.LastActivity),
		ExecutionState: k.ExecutionState, Connections: s.connections(k.ID), Reason: k.Reason}
}

// pathKernelID is the {id} of the route in canonical form (both forms
// are accepted).
func pathKernelID(r *http.Request) string {
	return events.CanonicalID(r.PathValue("id"))
}

// maxBody bounds what a kernels or sessions route reads of a body: their
// models are a few fields.
const maxBody = 64 << 10

// readBody decodes r's JSON body into v; present is false for an empty
// body. A body that is not JSON (or not an object of the fields' types)
// is a 400, as in jupyter_server.
func readBody(w http.ResponseWriter, r *http.Request, v any) (present bool, err error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return false, Errorf(http.StatusRequestEntityTooLarge, "the request body is over %d bytes: a kernel or session model is a few fields", maxBody)
		}
		return false, Errorf(http.StatusBadRequest, "read the request body: %v", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, Errorf(http.StatusBadRequest, "Invalid JSON in body of request: %v", err)
	}
	return true, nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Kernels.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ks, err := s.opts.Kernels.Kernels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	last, conns, running := st.LastActivity, 0, 0
	for _, k := range ks {
		if k.ExecutionState == "dead" {
			continue // NB: jupyter_server counts the kernels it runs
		}
		running++
		conns += s.connections(k.ID)
		if k.LastActivity.After(last) {
			last = k.LastActivity
		}
	}
	if last.Before(st.Started) {
		last = st.Started
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"started": isoTime(st.Started), "last_activity": isoTime(last), "kernels": running, "connections": conns,
	})
}

func (s *Server) listKernels(w http.ResponseWriter, r *http.Request) {
	ks, err := s.opts.Kernels.Kernels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]kernelModel, 0, len(ks))
	for _, k := range ks {
		out = append(out, s.kernelModel(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// startRequest is POST /api/kernels' body. NB: path (the kernel's working
// directory in jupyter_server) and kernel_id (connect to an existing one)
// are read and ignored: kernels run in the server's kernel directory, and
// ids are the server's.
type startRequest struct {
	Name string `json:"name"`
}

func (s *Server) startKernel(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if _, err := readBody(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.opts.Kernels.StartKernel(r.Context(), req.Name)
	var nss *NoSuchSpec
	if errors.As(err, &nss) {
		err = Errorf(http.StatusBadRequest, "%s", nss.Error())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := s.kernelModel(k)
	w.Header().Set("Location", "/api/kernels/"+m.ID)
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) getKernel(w http.ResponseWriter, r *http.Request) {
	k, err := s.opts.Kernels.Kernel(r.Context(), pathKernelID(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.kernelModel(k))
}

func (s *Server) deleteKernel(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Kernels.ShutdownKernel(r.Context(), pathKernelID(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) interruptKernel(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Kernels.InterruptKernel(r.Context(), pathKernelID(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restartKernel(w http.ResponseWriter, r *http.Request) {
	k, err := s.opts.Kernels.RestartKernel(r.Context(), pathKernelID(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.kernelModel(k))
}
