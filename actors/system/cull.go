package system

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// CullKernel shuts down an idle kernel for the server (--cull-idle):
// KernelShutDown{Culled: true, Reason: reason}. The kernel actor refuses
// it (kernel.ErrBusy) if an execution reached the kernel since the caller
// judged it idle. A culled kernel is shut down: not recovered at the next
// start.
func (s *System) CullKernel(ctx context.Context, id, reason string) error {
	st, err := s.kernelCmd(id, kernel.Shutdown{Reason: reason, Culled: true})
	if st.Status == kernel.StatusShutDown {
		s.mu.Lock()
		if e := s.kernels[events.CanonicalID(id)]; e != nil {
			e.shutDown = true
		}
		s.mu.Unlock()
	}
	return err
}
