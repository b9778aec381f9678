package main

import (
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
)

// jupyterAPI builds the Jupyter Server API edge (infra/jupyterapi) on the
// ready core: kernels, kernelspecs and sessions on the MCP edge's backend
// (jupyter_kernels.go), contents on the notebook actors (jupyter_contents.go), channels on the actor system and the /ws hub
// (jupyter_channels.go). Called once, when the first request needs it.
func (c *core) jupyterAPI() *jupyterapi.Server {
	c.mu.RLock()
	back, nbs := c.back, c.nbs
	c.mu.RUnlock()
	s := jupyterapi.New(jupyterapi.Options{
		Kernels:  &jupyterKernels{back: back, started: c.started},
		Contents: jupyterContents{nbs: nbs},
		Channels: newJupyterChannels(c, c.startSeq),

		ChannelsWriteTimeout: c.cfg.JupyterWriteTimeout,
		Version:              jupyterAPIVersion,
		Logger:               c.logger.With("component", "jupyterapi"),
	})
	c.mu.Lock()
	c.jupyter = s // NB: closed (its channels drained) at shutdown
	c.mu.Unlock()
	return s
}
