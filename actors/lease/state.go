package lease

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// maxOrigins bounds how many producers one asset remembers (the same bytes
// printed by many executions). Past it, Origins keeps the first ones and
// MoreOrigins counts the rest.
const maxOrigins = 32

// Origin says what produced an asset.
type Origin struct {
	KernelID    string `json:"kernel_id,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	OutputIndex int    `json:"output_index"`
}

// Asset is one asset as the actor's own events tell it.
type Asset struct {
	SHA256      string               `json:"sha256"`
	MIME        string               `json:"mime"`
	Size        int64                `json:"size"`
	Origins     []Origin             `json:"origins,omitempty"`
	MoreOrigins int                  `json:"more_origins,omitempty"`
	Leases      map[string]time.Time `json:"leases,omitempty"` // holder -> expires at
	Collected   bool                 `json:"collected,omitempty"`
	StoredSeq   uint64               `json:"stored_seq"` // the last AssetStored
	Seq         uint64               `json:"seq"`        // the last event about it
}

// LiveAt reports whether some lease holds the asset at now.
func (a *Asset) LiveAt(now time.Time) bool {
	for _, exp := range a.Leases {
		if exp.After(now) {
			return true
		}
	}
	return false
}

// Stored reports whether the events say the asset's file exists.
func (a *Asset) Stored() bool { return a != nil && !a.Collected && a.StoredSeq > 0 }

// due reports whether the GC has work on the asset at now: no lease holds
// it, or some holder's lease ran out (it gets a LeaseExpired even while
// another holder keeps the asset).
func (a *Asset) due(now time.Time) bool {
	if !a.Stored() {
		return false
	}
	for _, exp := range a.Leases {
		if !exp.After(now) {
			return true
		}
	}
	return !a.LiveAt(now)
}

// State is the lease actor's fold of the asset streams (asset/<sha256>).
//
// NB: Apply replaces the *Asset it touches and never changes one in place,
// so a shallow copy of Assets is a consistent view (the snapshot writer
// encodes one off the mailbox). The map itself belongs to whoever folds.
type State struct {
	Assets map[string]*Asset
	Seq    uint64 // the last event applied
}

// NewState returns the empty state.
func NewState() State { return State{Assets: map[string]*Asset{}} }

// Apply folds one asset event into s. It is deterministic: no clock, no
// I/O, no map-order dependence; events at or before s.Seq of the same asset
// are not re-applied (a snapshot and its tail may overlap).
func Apply(s State, e events.Event) State {
	if s.Assets == nil {
		s.Assets = map[string]*Asset{}
	}
	sum := ""
	switch p := e.Payload.(type) {
	case events.AssetStored:
		sum = p.SHA256
	case events.LeaseGranted:
		sum = p.SHA256
	case events.LeaseRenewed:
		sum = p.SHA256
	case events.LeaseExpired:
		sum = p.SHA256
	case events.AssetCollected:
		sum = p.SHA256
	default:
		return s
	}
	old := s.Assets[sum]
	if old != nil && e.Seq != 0 && e.Seq <= old.Seq {
		return s
	}
	a := clone(old, sum)
	switch p := e.Payload.(type) {
	case events.AssetStored:
		if a.Collected {
			// Stored again after collection: a new life, new leases.
			a.Collected, a.Leases = false, map[string]time.Time{}
		}
		a.MIME, a.Size, a.StoredSeq = p.MIME, p.Size, e.Seq
		o := Origin{KernelID: p.KernelID, ExecutionID: p.ExecutionID, OutputIndex: p.OutputIndex}
		if !slices.Contains(a.Origins, o) {
			if len(a.Origins) < maxOrigins {
				a.Origins = append(a.Origins, o)
			} else {
				a.MoreOrigins++
			}
		}
	case events.LeaseGranted:
		a.Leases[p.Holder] = p.ExpiresAt
	case events.LeaseRenewed:
		if p.ExpiresAt.After(a.Leases[p.Holder]) {
			a.Leases[p.Holder] = p.ExpiresAt
		}
	case events.LeaseExpired:
		delete(a.Leases, p.Holder)
	case events.AssetCollected:
		a.Collected, a.Leases = true, map[string]time.Time{}
	}
	a.Seq = e.Seq
	s.Assets[sum] = a
	s.Seq = max(s.Seq, e.Seq)
	return s
}

func clone(a *Asset, sum string) *Asset {
	if a == nil {
		return &Asset{SHA256: sum, Leases: map[string]time.Time{}}
	}
	c := *a
	c.Origins = slices.Clone(a.Origins)
	c.Leases = make(map[string]time.Time, len(a.Leases)+1)
	for h, t := range a.Leases {
		c.Leases[h] = t
	}
	return &c
}

// Due returns, sorted, the sums of the assets the GC has work on at now.
func Due(s State, now time.Time) []string {
	var out []string
	for sum, a := range s.Assets {
		if a.due(now) {
			out = append(out, sum)
		}
	}
	slices.Sort(out) // NB: one state and one clock always give one decision
	return out
}

// snapshot is the encoded State. NB: stored in the log under SnapshotName;
// additive changes only.
type snapshot struct {
	Seq    uint64   `json:"seq"`
	Assets []*Asset `json:"assets"`
}

// EncodeState encodes a view of the state (see State) for SaveSnapshot.
func EncodeState(assets map[string]*Asset, seq uint64) ([]byte, error) {
	s := snapshot{Seq: seq, Assets: make([]*Asset, 0, len(assets))}
	for _, a := range assets {
		s.Assets = append(s.Assets, a)
	}
	slices.SortFunc(s.Assets, func(x, y *Asset) int { return strings.Compare(x.SHA256, y.SHA256) })
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode lease snapshot: %w", err)
	}
	return b, nil
}

// DecodeState decodes what EncodeState wrote.
func DecodeState(data []byte) (State, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("decode lease snapshot: %w", err)
	}
	st := State{Assets: make(map[string]*Asset, len(s.Assets)), Seq: s.Seq}
	for _, a := range s.Assets {
		if a.Leases == nil {
			a.Leases = map[string]time.Time{}
		}
		st.Assets[a.SHA256] = a
	}
	return st, nil
}
