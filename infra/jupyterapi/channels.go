package jupyterapi

import "net/http"

// Channels is what /api/kernels/<id>/channels needs.
type Channels interface {
	// filled in by the channels work
}

func (s *Server) routesChannels(mux *http.ServeMux) {}
