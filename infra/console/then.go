package console

import "net/http"

// Replayer answers reads of the past: the server's own replay of the log.
// Owned by helper consolethen.
type Replayer interface{}

func (h *Handler) thenRoutes(mux *http.ServeMux) {}
