package restores

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "restores"

// After is what followed a kernel's last restore.
type After struct {
	// Seq is the seq of the kernel's last KernelRestored.
	Seq uint64 `json:"seq"`
	// First is the first execution an MCP caller queued on the kernel
	// after it ("" until one did). The server's own executions
	// (auto-checkpoint saves, the culler's save: no principal) and a
	// Jupyter frontend's (Origin set) are not it: the notice is for the
	// agent, and work it did not ask for must not use its notice up.
	First string `json:"first,omitempty"`
}

// Restore is a kernel's last restore as far as its executions go.
type Restore struct {
	Seq        uint64   // the KernelRestored's seq (kernels.Kernel.RestoredSeq)
	Lost       []string // the executions the relaunch recorded lost
	FirstAfter string   // After.First
}

// Affects reports whether the restore touched execution id (queued at
// queuedSeq, its last event at lastSeq): lost by the relaunch, queued
// before the restore and run or ended after it, or the first one queued
// after it.
func (r Restore) Affects(id string, queuedSeq, lastSeq uint64) bool {
	if r.Seq == 0 {
		return false
	}
	if id == r.FirstAfter || slices.Contains(r.Lost, id) {
		return true
	}
	return queuedSeq < r.Seq && lastSeq > r.Seq
}

// Model is the restores read model. Safe for concurrent use.
type Model struct {
	mu      sync.RWMutex
	kernels map[string]*After // canonical kernel id
}

// New returns an empty model.
func New() *Model { return &Model{kernels: map[string]*After{}} }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection.
func (m *Model) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeKernelRestored, events.TypeExecutionQueued, events.TypeKernelShutDown:
		return projections.Envelope
	}
	return projections.Skip
}

// Apply implements projections.Projection.
func (m *Model) Apply(e events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e.Type {
	case events.TypeKernelRestored:
		m.kernels[events.CanonicalID(events.StreamID(e.Stream))] = &After{Seq: e.Seq}
	case events.TypeExecutionQueued:
		if a, ok := m.kernels[events.CanonicalID(e.Kernel)]; ok && a.First == "" && queuedByMCPCaller(e) {
			a.First = events.StreamID(e.Stream)
		}
	case events.TypeKernelShutDown:
		delete(m.kernels, events.CanonicalID(events.StreamID(e.Stream)))
	}
	return nil
}

// queuedByMCPCaller reports whether ExecutionQueued e came from an MCP
// caller: it names a principal (the server's own work names none) and no
// frontend Origin. NB: decodes the payload only for a kernel still waiting
// for its first execution after a restore, which is rare.
func queuedByMCPCaller(e events.Event) bool {
	if e.Principal == "" {
		return false
	}
	var p struct {
		Origin json.RawMessage `json:"origin"`
	}
	if err := json.Unmarshal(e.Raw, &p); err != nil {
		return false
	}
	return len(p.Origin) == 0 || string(p.Origin) == "null"
}

// Get returns what followed kernelID's last restore (either form of the
// id).
func (m *Model) Get(kernelID string) (After, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.kernels[events.CanonicalID(kernelID)]
	if !ok {
		return After{}, false
	}
	return *a, true
}

// Len returns how many kernels have a restore.
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.kernels)
}

// Snapshot implements projections.Projection.
func (m *Model) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, err := json.Marshal(m.kernels)
	if err != nil {
		return nil, fmt.Errorf("snapshot restores: %w", err)
	}
	return b, nil
}

// Restore implements projections.Projection.
func (m *Model) Restore(data []byte) error {
	ks := map[string]*After{}
	if err := json.Unmarshal(data, &ks); err != nil {
		return fmt.Errorf("restore restores snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kernels = ks
	return nil
}
