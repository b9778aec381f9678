package console

import "net/http"

// staticRoutes: owned by helper consolesrv (CSP, caching, /ui -> /ui/,
// /ui/vendor/plotly.js).
func (h *Handler) staticRoutes(mux *http.ServeMux) {
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(h.static)))
}
