package kernels

import "github.com/mcp-jupyter/mcp-jupyter/events"

// Ownership returns kernel id's owner and what it was shared with
// principal at ("" if not), without copying the kernel: the permission
// check every edge runs on every call (cmd/mcp-jupyter/access.go).
func (m *Model) Ownership(id, principal string) (owner, shared string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.kernels[events.CanonicalID(id)] // NB: either form of the id
	if !ok {
		return "", "", false
	}
	return k.Owner, k.Shares[principal], true
}
