package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
)

// jupyterAPI builds the Jupyter Server API edge (infra/jupyterapi) on the
// ready core: kernels, kernelspecs and sessions on the MCP edge's backend
// (jupyter_kernels.go). Called once, when the first request needs it.
func (c *core) jupyterAPI() *jupyterapi.Server {
	c.mu.RLock()
	back := c.back
	c.mu.RUnlock()
	return jupyterapi.New(jupyterapi.Options{
		Kernels: &jupyterKernels{back: back, started: c.started},
		Version: jupyterAPIVersion,
		Logger:  c.logger.With("component", "jupyterapi"),
	})
}
