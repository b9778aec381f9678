package leases

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "leases"

// maxOrigins bounds how many producers one asset remembers (the same bytes
// printed by many executions). Past it, Origins keeps the first ones and
// MoreOrigins counts the rest. NB: what decides access is Kernels, which
// is not capped: an origin past the cap must not hide an asset from the
// owner of the kernel that made it.
const maxOrigins = 32

// Origin is what produced an asset.
type Origin struct {
	KernelID    string `json:"kernel_id,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	OutputIndex int    `json:"output_index"`
}

// Asset is one stored asset as the log tells it.
type Asset struct {
	SHA256      string   `json:"sha256"`
	MIME        string   `json:"mime"`
	Size        int64    `json:"size"`
	Origins     []Origin `json:"origins,omitempty"`
	MoreOrigins int      `json:"more_origins,omitempty"`
	// Kernels is every kernel that stored the asset (uncapped: bounded by
	// the kernels that printed the same bytes). Access to an asset is
	// decided from it (StoredBy), never from the capped Origins.
	Kernels   map[string]bool      `json:"kernels,omitempty"`
	Leases    map[string]time.Time `json:"leases,omitempty"` // holder -> expires at
	Collected bool                 `json:"collected,omitempty"`
	StoredSeq uint64               `json:"stored_seq"` // the last AssetStored
	Seq       uint64               `json:"seq"`        // the last event about it
}

// LiveAt reports whether some lease holds the asset at now.
func (a Asset) LiveAt(now time.Time) bool {
	for _, exp := range a.Leases {
		if exp.After(now) {
			return true
		}
	}
	return false
}

// ExpiresAt is when the last lease runs out (zero when none).
func (a Asset) ExpiresAt() time.Time {
	var last time.Time
	for _, exp := range a.Leases {
		if exp.After(last) {
			last = exp
		}
	}
	return last
}

// StoredBy reports whether kernel stored the asset. NB: a snapshot from
// before Kernels existed has only Origins: they are asked too.
func (a Asset) StoredBy(kernel string) bool {
	if kernel == "" {
		return false
	}
	if a.Kernels[kernel] {
		return true
	}
	return slices.ContainsFunc(a.Origins, func(o Origin) bool { return o.KernelID == kernel })
}

// KernelIDs returns every kernel that stored the asset, sorted.
func (a Asset) KernelIDs() []string {
	out := make([]string, 0, len(a.Kernels))
	for k := range a.Kernels {
		out = append(out, k)
	}
	for _, o := range a.Origins {
		if o.KernelID != "" && !a.Kernels[o.KernelID] {
			out = append(out, o.KernelID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (a *Asset) clone() Asset {
	c := *a
	c.Origins = slices.Clone(a.Origins)
	if a.Kernels != nil {
		c.Kernels = make(map[string]bool, len(a.Kernels))
		for k := range a.Kernels {
			c.Kernels[k] = true
		}
	}
	c.Leases = make(map[string]time.Time, len(a.Leases))
	for h, t := range a.Leases {
		c.Leases[h] = t
	}
	return c
}

// Model is the leases read model. It implements projections.Projection and
// is safe for concurrent use.
type Model struct {
	mu     sync.RWMutex
	assets map[string]*Asset
	seq    uint64
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model { return &Model{assets: map[string]*Asset{}} }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection.
func (m *Model) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeAssetStored, events.TypeLeaseGranted, events.TypeLeaseRenewed,
		events.TypeLeaseExpired, events.TypeAssetCollected:
		return projections.Payload
	}
	return projections.Skip
}

// Seq is the sequence of the last event applied.
func (m *Model) Seq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seq
}

// Apply implements projections.Projection. Events at or before Seq are
// ignored (see the package doc).
func (m *Model) Apply(e events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Seq != 0 && e.Seq <= m.seq {
		return nil
	}
	if err := e.DecodePayload(); err != nil {
		return err
	}
	if err := m.apply(e); err != nil {
		return err
	}
	if e.Seq != 0 {
		m.seq = e.Seq
	}
	return nil
}

func (m *Model) asset(sum string) *Asset {
	a := m.assets[sum]
	if a == nil {
		a = &Asset{SHA256: sum, Leases: map[string]time.Time{}}
		m.assets[sum] = a
	}
	return a
}

func (m *Model) apply(e events.Event) error {
	switch p := e.Payload.(type) {
	case events.AssetStored:
		a := m.asset(p.SHA256)
		if a.Collected {
			// Stored again after collection: a new life, new leases.
			a.Collected, a.Leases = false, map[string]time.Time{}
		}
		a.MIME, a.Size, a.StoredSeq = p.MIME, p.Size, e.Seq
		if p.KernelID != "" {
			if a.Kernels == nil {
				a.Kernels = map[string]bool{}
			}
			a.Kernels[p.KernelID] = true
		}
		o := Origin{KernelID: p.KernelID, ExecutionID: p.ExecutionID, OutputIndex: p.OutputIndex}
		if !slices.Contains(a.Origins, o) {
			if len(a.Origins) < maxOrigins {
				a.Origins = append(a.Origins, o)
			} else {
				a.MoreOrigins++
			}
		}
		a.Seq = e.Seq
	case events.LeaseGranted:
		a := m.asset(p.SHA256)
		a.Leases[p.Holder] = p.ExpiresAt
		a.Seq = e.Seq
	case events.LeaseRenewed:
		a := m.asset(p.SHA256)
		if p.ExpiresAt.After(a.Leases[p.Holder]) {
			a.Leases[p.Holder] = p.ExpiresAt
		}
		a.Seq = e.Seq
	case events.LeaseExpired:
		a := m.asset(p.SHA256)
		delete(a.Leases, p.Holder)
		a.Seq = e.Seq
	case events.AssetCollected:
		a := m.asset(p.SHA256)
		a.Collected, a.Leases = true, map[string]time.Time{}
		a.Seq = e.Seq
	default:
		return fmt.Errorf("leases: unexpected event %s at %d", e.Type, e.Seq)
	}
	return nil
}

// Get returns a copy of the asset sum.
func (m *Model) Get(sum string) (Asset, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.assets[sum]
	if !ok {
		return Asset{}, false
	}
	return a.clone(), true
}

// Stored reports whether the log says sum's file exists: stored and not
// collected since.
func (m *Model) Stored(sum string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.assets[sum]
	return ok && !a.Collected && a.StoredSeq > 0
}

// Expired returns up to limit (0: all) stored, uncollected assets that no
// lease holds at now, or that have a holder whose lease ran out. The order
// is unspecified: the GC takes them in batches until none is left.
func (m *Model) Expired(now time.Time, limit int) []Asset {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Asset
	for _, a := range m.assets {
		if a.Collected || a.StoredSeq == 0 {
			continue
		}
		if !a.LiveAt(now) || hasExpired(a, now) {
			out = append(out, a.clone())
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// hasExpired: some holder's lease ran out (it gets a LeaseExpired even while
// another holder keeps the asset).
func hasExpired(a *Asset, now time.Time) bool {
	for _, exp := range a.Leases {
		if !exp.After(now) {
			return true
		}
	}
	return false
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Filter says which assets List returns; empty fields match anything.
type Filter struct {
	KernelID    string
	ExecutionID string
}

// List returns the stored (uncollected) assets matching f, in the order
// they were stored.
func (m *Model) List(f Filter) []Asset {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Asset
	for _, a := range m.assets {
		if a.Collected || a.StoredSeq == 0 {
			continue
		}
		if f.KernelID != "" && f.ExecutionID == "" {
			if !a.StoredBy(f.KernelID) {
				continue
			}
		} else if f.KernelID != "" || f.ExecutionID != "" {
			if !slices.ContainsFunc(a.Origins, func(o Origin) bool {
				return (f.KernelID == "" || o.KernelID == f.KernelID) && (f.ExecutionID == "" || o.ExecutionID == f.ExecutionID)
			}) {
				continue
			}
		}
		out = append(out, a.clone())
	}
	slices.SortFunc(out, func(x, y Asset) int {
		if c := compareSeq(x.StoredSeq, y.StoredSeq); c != 0 {
			return c
		}
		return strings.Compare(x.SHA256, y.SHA256)
	})
	return out
}

// Len returns how many assets the model knows (collected ones included).
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.assets)
}

type snapshot struct {
	Seq    uint64   `json:"seq"`
	Assets []*Asset `json:"assets"`
}

// Snapshot implements projections.Projection. Collected assets are kept
// (they are what lets a restart finish an interrupted GC).
func (m *Model) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := snapshot{Seq: m.seq, Assets: make([]*Asset, 0, len(m.assets))}
	for _, a := range m.assets {
		s.Assets = append(s.Assets, a)
	}
	slices.SortFunc(s.Assets, func(x, y *Asset) int { return strings.Compare(x.SHA256, y.SHA256) })
	return json.Marshal(s)
}

// Restore implements projections.Projection.
func (m *Model) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode leases snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.assets = make(map[string]*Asset, len(s.Assets))
	for _, a := range s.Assets {
		if a.Leases == nil {
			a.Leases = map[string]time.Time{}
		}
		m.assets[a.SHA256] = a
	}
	m.seq = s.Seq
	return nil
}

// Collected returns the sums the log says were collected (for the sweep
// that finishes an interrupted GC).
func (m *Model) Collected() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for sum, a := range m.assets {
		if a.Collected {
			out = append(out, sum)
		}
	}
	slices.Sort(out)
	return out
}
