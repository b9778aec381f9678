package projections_test

import (
	"encoding/json"
	"maps"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// counts is the simplest read model: how many events of each type. It
// wants every type by envelope only, so replaying it decodes no payload.
type counts struct {
	name string
	mu   sync.RWMutex
	n    map[string]uint64
	// first is the first sequence applied since construction or Restore:
	// tests use it to see where a runner resumed.
	first uint64
}

func newCounts(name string) *counts { return &counts{name: name, n: map[string]uint64{}} }

func (c *counts) Name() string                      { return c.name }
func (c *counts) Wants(string) projections.Interest { return projections.Envelope }
func (c *counts) Snapshot() ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return json.Marshal(c.n)
}
func (c *counts) Get(typ string) uint64  { c.mu.RLock(); defer c.mu.RUnlock(); return c.n[typ] }
func (c *counts) All() map[string]uint64 { c.mu.RLock(); defer c.mu.RUnlock(); return maps.Clone(c.n) }
func (c *counts) First() uint64          { c.mu.RLock(); defer c.mu.RUnlock(); return c.first }
func (c *counts) Restore(data []byte) error {
	n := map[string]uint64{}
	if err := json.Unmarshal(data, &n); err != nil {
		return err
	}
	c.mu.Lock()
	c.n = n
	c.mu.Unlock()
	return nil
}

func (c *counts) Apply(e events.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == 0 {
		c.first = e.Seq
	}
	c.n[e.Type]++ // NB: e.Type is interned or copied by the decoder, safe to keep
	return nil
}
