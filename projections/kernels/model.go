package kernels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "kernels"

// State is a kernel's lifecycle state. NB: part of the snapshot and shown to
// agents; the strings must not change.
type State string

const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateDead     State = "dead"
	StateLost     State = "lost"
	StateShutDown State = "shut down"
)

// Kernel is one kernel as the log tells it.
type Kernel struct {
	ID       string `json:"id"`
	Spec     string `json:"spec,omitempty"`
	Label    string `json:"label,omitempty"`
	Notebook string `json:"notebook,omitempty"`
	Language string `json:"language,omitempty"`
	State    State  `json:"state"`
	Reason   string `json:"reason,omitempty"` // why it is dead, lost or shut down
	Pid      int    `json:"pid,omitempty"`
	// ExecutionState is the last IOPub status: busy, idle or starting.
	ExecutionState string    `json:"execution_state,omitempty"`
	Busy           bool      `json:"busy"`
	Restarts       int       `json:"restarts,omitempty"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	LastActivity   time.Time `json:"last_activity,omitzero"` // time of the last event about it
	Seq            uint64    `json:"seq"`                    // the last event about it
	// Owner is the principal that started the kernel; "" for kernels
	// started before principals existed, which are the admin's
	// (auth.Principal.On treats "" so).
	Owner string `json:"owner,omitempty"`
	// Shares maps a principal to the access the owner granted it: "read"
	// or "execute" (events.AccessRead, events.AccessExecute). Get and List
	// hand out copies: a caller may keep and change its map.
	Shares map[string]string `json:"shares,omitempty"`
}

// SharedWith returns the access kernel k was shared with principal at
// ("" if none).
func (k Kernel) SharedWith(principal string) string { return k.Shares[principal] }

// copied returns k with a map of its own.
func (k Kernel) copied() Kernel {
	if k.Shares != nil {
		k.Shares = maps.Clone(k.Shares)
	}
	return k
}

// Model is the kernels read model. It implements projections.Projection.
type Model struct {
	mu      sync.RWMutex
	kernels map[string]*Kernel
	// live counts the kernels starting or running per owner ("" before
	// principals): the kernel quota reads it in O(1) on every start.
	live map[string]int
	// touched is the kernel the event being applied changed, and whether
	// (and for whom) it counted as live before: Apply moves its count.
	touched        *Kernel
	touchedWasLive bool
	touchedOwner   string
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model { return &Model{kernels: map[string]*Kernel{}, live: map[string]int{}} }

// isLive is whether k counts against its owner's kernel quota.
func isLive(k *Kernel) bool { return k.State == StateRunning || k.State == StateStarting }

// LiveCount is how many kernels owner has starting or running; kernels
// from before principals count as admin's.
func (m *Model) LiveCount(owner, admin string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := m.live[owner]
	if owner == admin && owner != "" {
		n += m.live[""]
	}
	return n
}

// recount moves the touched kernel's live count after an event.
func (m *Model) recount() {
	k := m.touched
	if k == nil {
		return
	}
	m.touched = nil
	if m.touchedWasLive == isLive(k) && m.touchedOwner == k.Owner {
		return // NB: most events (IOPub status of a running kernel) change neither
	}
	if m.touchedWasLive {
		if m.live[m.touchedOwner]--; m.live[m.touchedOwner] <= 0 {
			delete(m.live, m.touchedOwner)
		}
	}
	if isLive(k) {
		m.live[k.Owner]++
	}
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection.
func (m *Model) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeKernelStarted, events.TypeKernelStartFailed, events.TypeKernelRestarted,
		events.TypeKernelShutDown, events.TypeKernelDied, events.TypeKernelReattached, events.TypeKernelLost,
		events.TypeKernelShared:
		return projections.Payload
	case events.TypeIOPubMessageReceived:
		return projections.Envelope
	}
	return projections.Skip
}

// Apply implements projections.Projection.
func (m *Model) Apply(e events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.recount()
	if e.Type == events.TypeIOPubMessageReceived {
		return m.applyIOPub(e)
	}
	switch p := e.Payload.(type) {
	case events.KernelStarted:
		k := m.kernel(p.KernelID, e)
		k.Spec, k.Label, k.Notebook, k.Language = p.Spec, p.Label, p.Notebook, p.Language
		k.State, k.Reason, k.Pid, k.StartedAt = StateRunning, "", p.Process.Pid, e.Time
		k.Owner = p.Owner
	case events.KernelStartFailed:
		k := m.kernel(p.KernelID, e)
		k.Spec = p.Spec
		k.State, k.Reason, k.Busy, k.ExecutionState = StateDead, startFailed+p.Reason, false, ""
		// NB: the failed start is its starter's (the event's principal), not
		// the admin's: it shows in the starter's list_kernels only.
		k.Owner = e.Principal
	case events.KernelRestarted:
		k := m.kernel(p.KernelID, e)
		k.State, k.Reason, k.Pid, k.StartedAt = StateRunning, "", p.Process.Pid, e.Time
		k.Busy, k.ExecutionState = false, ""
		k.Restarts++
	case events.KernelReattached:
		k := m.kernel(p.KernelID, e)
		k.State, k.Reason = StateRunning, ""
		if p.Pid != 0 {
			k.Pid = p.Pid
		}
	case events.KernelDied:
		k := m.kernel(p.KernelID, e)
		k.State, k.Reason, k.Busy = StateDead, p.Reason, false
	case events.KernelLost:
		k := m.kernel(p.KernelID, e)
		k.State, k.Reason, k.Busy = StateLost, p.Reason, false
	case events.KernelShutDown:
		k := m.kernel(p.KernelID, e)
		k.State, k.Reason, k.Busy = StateShutDown, p.Reason, false
	case events.KernelShared:
		k := m.kernel(p.KernelID, e)
		if p.Access == events.AccessNone {
			delete(k.Shares, p.Principal)
			if len(k.Shares) == 0 {
				k.Shares = nil
			}
		} else {
			if k.Shares == nil {
				k.Shares = map[string]string{}
			}
			k.Shares[p.Principal] = p.Access
		}
	default:
		return fmt.Errorf("kernels: unexpected payload %T", e.Payload)
	}
	return nil
}

func (m *Model) applyIOPub(e events.Event) error {
	if e.Kernel != "" && !mayBeStatus(e.Raw) {
		// Output, not a status (most IOPub traffic): skip the parse.
		if k, ok := m.kernels[e.Kernel]; ok {
			k.LastActivity, k.Seq = e.Time, e.Seq
		}
		return nil
	}
	st, err := peekStatus(e.Raw)
	if err != nil {
		return fmt.Errorf("read IOPub status: %w", err)
	}
	id := e.Kernel
	if id == "" {
		id = string(st.kernelID)
	}
	if !st.isStatus {
		// Output keeps the kernel's last activity current; it does not
		// create a kernel.
		if k, ok := m.kernels[id]; ok {
			k.LastActivity, k.Seq = e.Time, e.Seq
		}
		return nil
	}
	if id == "" {
		return nil
	}
	k := m.kernel(id, e)
	switch st.state {
	case "busy":
		k.Busy = true
	case "idle":
		k.Busy = false
	case "starting":
		k.Busy = false
	default:
		return nil // a status this model does not track; keep the last one
	}
	if k.ExecutionState != st.state {
		k.ExecutionState = strings.Clone(st.state) // NB: st.state may alias Raw
	}
	return nil
}

var msgTypeKey = []byte(`"msg_type":"`)

// mayBeStatus is false when raw is surely not a status message: the
// encoder writes msg_type before content, so finding it stops early, where
// scanning for "status" would read the whole output. NB: a payload in
// another form (spaces, escapes) is parsed in full.
func mayBeStatus(raw []byte) bool {
	i := indexMsgType(raw)
	if i < 0 {
		return true
	}
	return bytes.HasPrefix(raw[i+len(msgTypeKey):], []byte(`status"`))
}

// indexMsgType is bytes.Index(raw, msgTypeKey), faster on IOPub payloads:
// it looks for the key's 'y', a byte the ids and keys before it hardly
// hold, where bytes.Index would stop at every quote.
func indexMsgType(raw []byte) int {
	const y = 6 // msgTypeKey[y] == 'y'
	for from := y; from < len(raw); {
		j := bytes.IndexByte(raw[from:], 'y')
		if j < 0 {
			return -1
		}
		at := from + j - y
		if bytes.HasPrefix(raw[at:], msgTypeKey) {
			return at
		}
		from += j + 1
	}
	return -1
}

// kernel returns the entry for id, creating it (starting) when first seen,
// and stamps the event on it. Callers hold m.mu.
func (m *Model) kernel(id string, e events.Event) *Kernel {
	k, ok := m.kernels[id]
	if !ok {
		k = &Kernel{ID: id, State: StateStarting}
		m.kernels[id] = k
	}
	if m.touched == nil {
		m.touched, m.touchedWasLive, m.touchedOwner = k, ok && isLive(k), k.Owner
	}
	k.LastActivity, k.Seq = e.Time, e.Seq
	return k
}

// Get returns a copy of one kernel.
func (m *Model) Get(id string) (Kernel, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.kernels[id]
	if !ok {
		return Kernel{}, false
	}
	return k.copied(), true
}

// List returns copies of every kernel, sorted by id.
func (m *Model) List() []Kernel {
	m.mu.RLock()
	out := make([]Kernel, 0, len(m.kernels))
	for _, k := range m.kernels {
		out = append(out, k.copied())
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Kernel) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len returns how many kernels the model knows.
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.kernels)
}

// snapshot is the stored form. NB: stored in the log; add fields
// compatibly, bump Version otherwise. (Owner and Shares were added
// compatibly: a snapshot without them was written before principals
// existed, when every kernel was the admin's and none was shared.)
type snapshot struct {
	Version int      `json:"version"`
	Kernels []Kernel `json:"kernels"`
}

const snapshotVersion = 1

// Snapshot implements projections.Projection: JSON, kernels sorted by id.
func (m *Model) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{Version: snapshotVersion, Kernels: m.List()})
}

// Restore implements projections.Projection.
func (m *Model) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode kernels snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("decode kernels snapshot: version %d, this binary reads %d", s.Version, snapshotVersion)
	}
	kernels := make(map[string]*Kernel, len(s.Kernels))
	live := map[string]int{}
	for i := range s.Kernels {
		k := s.Kernels[i]
		kernels[k.ID] = &k
		if isLive(&k) {
			live[k.Owner]++
		}
	}
	m.mu.Lock()
	m.kernels, m.live = kernels, live
	m.mu.Unlock()
	return nil
}
