package kernels

import "maps"

// Clone returns an independent copy of the model as it is: applying events
// to one never changes the other (each kernel copied with its own maps and
// slices, as Get hands them out). See queue.Model.Clone for why.
func (m *Model) Clone() *Model {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := &Model{kernels: make(map[string]*Kernel, len(m.kernels)), live: maps.Clone(m.live), sessions: maps.Clone(m.sessions)}
	for id, k := range m.kernels {
		cp := k.copied()
		c.kernels[id] = &cp
	}
	return c
}
