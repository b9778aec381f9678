package jupyterapi

import "net/http"

// Contents is what /api/contents needs.
type Contents interface {
	// filled in by the contents work
}

func (s *Server) routesContents(mux *http.ServeMux) {}
