package console

import "net/http"

// Steerer carries out a person's commands. Owned by helper consolesrv.
type Steerer interface{}

func (h *Handler) steerRoutes(mux *http.ServeMux) {}
