package jupyterapi

import "net/http"

// Kernels is what the kernel, kernelspec and session routes need.
type Kernels interface {
	// filled in by the kernels work
}

func (s *Server) routesKernels(mux *http.ServeMux) {}
