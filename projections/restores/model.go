package restores

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "restores"

// Restore is a kernel's last restore by the server.
type Restore struct {
	events.KernelRestored
	// Seq and At are the KernelRestored's place in the log and its time:
	// the kernel's queue ran again from there.
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// FirstAfter is the first execution queued on the kernel after the
	// restore ("" until one is).
	FirstAfter string `json:"first_after,omitempty"`
}

// Affects reports whether the restore touched execution id (queued at
// queuedSeq, its last event at lastSeq): lost by the relaunch, queued
// before the restore and run or ended after it, or the first one queued
// after it.
func (r Restore) Affects(id string, queuedSeq, lastSeq uint64) bool {
	if id == r.FirstAfter || slices.Contains(r.Lost, id) {
		return true
	}
	return queuedSeq < r.Seq && lastSeq > r.Seq
}

func (r Restore) copied() Restore {
	r.Restored = slices.Clone(r.Restored)
	r.Skipped = slices.Clone(r.Skipped)
	r.Missing = slices.Clone(r.Missing)
	r.Mismatched = slices.Clone(r.Mismatched)
	r.Lost = slices.Clone(r.Lost)
	return r
}

// Model is the restores read model. Safe for concurrent use.
type Model struct {
	mu      sync.RWMutex
	kernels map[string]*Restore // canonical kernel id
}

// New returns an empty model.
func New() *Model { return &Model{kernels: map[string]*Restore{}} }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection.
func (m *Model) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeKernelRestored:
		return projections.Payload
	case events.TypeExecutionQueued, events.TypeKernelShutDown:
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
		p, ok := e.Payload.(events.KernelRestored)
		if !ok {
			return fmt.Errorf("restores: event %d: %s payload is %T", e.Seq, e.Type, e.Payload)
		}
		id := events.CanonicalID(p.KernelID)
		if id == "" {
			id = events.CanonicalID(events.StreamID(e.Stream))
		}
		r := Restore{KernelRestored: p, Seq: e.Seq, At: e.Time}
		r = r.copied() // NB: the payload may share the decoder's slices
		m.kernels[id] = &r
	case events.TypeExecutionQueued:
		if r, ok := m.kernels[events.CanonicalID(e.Kernel)]; ok && r.FirstAfter == "" {
			r.FirstAfter = events.StreamID(e.Stream)
		}
	case events.TypeKernelShutDown:
		delete(m.kernels, events.CanonicalID(events.StreamID(e.Stream)))
	}
	return nil
}

// Get returns kernelID's last restore (either form of the id).
func (m *Model) Get(kernelID string) (Restore, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.kernels[events.CanonicalID(kernelID)]
	if !ok {
		return Restore{}, false
	}
	return r.copied(), true
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
	ks := map[string]*Restore{}
	if err := json.Unmarshal(data, &ks); err != nil {
		return fmt.Errorf("restore restores snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kernels = ks
	return nil
}
