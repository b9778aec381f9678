package kernels

import (
	"bytes"
	"cmp"
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
	// Culled: the server shut it down after --cull-idle (KernelShutDown.Culled;
	// Reason says where its variables went).
	Culled bool `json:"culled,omitempty"`
	Pid    int  `json:"pid,omitempty"`
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
	// Sessions are the Jupyter sessions (/api/sessions) open on the kernel,
	// oldest first (KernelSessionOpened, KernelSessionClosed; none once it
	// is shut down); at most MaxSessions.
	Sessions []Session `json:"sessions,omitempty"`
	// Frontends are the frontend sessions that attached to its channels
	// (FrontendAttached), the one attached last at the end; at most
	// MaxFrontends (the oldest go).
	Frontends []Frontend `json:"frontends,omitempty"`
	// RestartReason is why the server last started a fresh process on its
	// own (KernelRestarted.Reason: at start, the recorded process was
	// gone); "" after a restart someone asked for.
	RestartReason string `json:"restart_reason,omitempty"`
	// Restoring names the checkpoint of the restore under way
	// (KernelRestarted.Restore until KernelRestored): its queue waits.
	Restoring string `json:"restoring,omitempty"`
	// Restored is the last KernelRestored of the kernel (nil: never
	// restored), and RestoredSeq its seq: what the server restored after it
	// relaunched the kernel, for the agent's next call. Get and List hand
	// out copies.
	Restored    *events.KernelRestored `json:"restored,omitempty"`
	RestoredSeq uint64                 `json:"restored_seq,omitempty"`
}

// Session is a Jupyter session bound to a kernel.
type Session struct {
	ID       string    `json:"id"`
	Path     string    `json:"path"`
	Name     string    `json:"name,omitempty"`
	Type     string    `json:"type,omitempty"`
	OpenedAt time.Time `json:"opened_at"` // when it was opened (or last changed)
	Seq      uint64    `json:"seq"`       // its last KernelSessionOpened
	By       string    `json:"by,omitempty"`
}

// Frontend is a frontend session that attached to a kernel's channels.
type Frontend struct {
	Session  string    `json:"session"`
	Username string    `json:"username,omitempty"`
	Client   string    `json:"client,omitempty"`
	Framing  string    `json:"framing,omitempty"`
	By       string    `json:"by,omitempty"`
	At       time.Time `json:"at"`
	// Seq is the seq of its last FrontendAttached: a server process that
	// recorded it attached from then on; one from an earlier process tells
	// a reconnecting frontend that output recorded since was for it.
	Seq uint64 `json:"seq"`
}

// Bounds of the per-kernel tables. NB: actors/kernel bounds the sessions
// too (kernel.MaxSessions); the model keeps its own bound whatever the log
// holds.
const (
	MaxSessions  = 256
	MaxFrontends = 256
)

// SharedWith returns the access kernel k was shared with principal at
// ("" if none).
func (k Kernel) SharedWith(principal string) string { return k.Shares[principal] }

// copied returns k with a map of its own.
func (k Kernel) copied() Kernel {
	if k.Shares != nil {
		k.Shares = maps.Clone(k.Shares)
	}
	k.Sessions = slices.Clone(k.Sessions)
	k.Frontends = slices.Clone(k.Frontends)
	if k.Restored != nil {
		r := *k.Restored
		r.Restored, r.Skipped, r.Missing = slices.Clone(r.Restored), slices.Clone(r.Skipped), slices.Clone(r.Missing)
		r.Mismatched, r.Lost = slices.Clone(r.Mismatched), slices.Clone(r.Lost)
		k.Restored = &r
	}
	return k
}

// Frontend returns the record of a frontend session's last attach to the
// kernel (either form of its id).
func (m *Model) Frontend(kernelID, session string) (Frontend, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.kernels[events.CanonicalID(kernelID)]
	if !ok {
		return Frontend{}, false
	}
	for _, f := range k.Frontends {
		if f.Session == session {
			return f, true
		}
	}
	return Frontend{}, false
}

// FindSession returns the kernel a Jupyter session is open on, and the
// session.
func (m *Model) FindSession(sessionID string) (kernelID string, _ Session, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	kernelID, ok = m.sessions[sessionID]
	if !ok {
		return "", Session{}, false
	}
	for _, s := range m.kernels[kernelID].Sessions {
		if s.ID == sessionID {
			return kernelID, s, true
		}
	}
	return "", Session{}, false
}

// SessionsByPath returns the open sessions of path (any kernel), as
// kernel id and session, oldest first.
func (m *Model) SessionsByPath(path string) []KernelSession {
	var out []KernelSession
	for _, ks := range m.AllSessions() {
		if ks.Session.Path == path {
			out = append(out, ks)
		}
	}
	return out
}

// KernelSession is a session with the kernel it is open on.
type KernelSession struct {
	KernelID string
	Session  Session
}

// AllSessions returns every open session, ordered by the seq that opened
// (or last changed) it.
func (m *Model) AllSessions() []KernelSession {
	m.mu.RLock()
	out := make([]KernelSession, 0, len(m.sessions))
	for id, kid := range m.sessions {
		for _, s := range m.kernels[kid].Sessions {
			if s.ID == id {
				out = append(out, KernelSession{KernelID: kid, Session: s})
			}
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b KernelSession) int { return cmp.Compare(a.Session.Seq, b.Session.Seq) })
	return out
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
	// sessions indexes the open Jupyter sessions: session id -> kernel id.
	sessions map[string]string
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{kernels: map[string]*Kernel{}, live: map[string]int{}, sessions: map[string]string{}}
}

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
		events.TypeKernelShared, events.TypeFrontendAttached, events.TypeKernelSessionOpened, events.TypeKernelSessionClosed,
		events.TypeKernelRestored:
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
		k.RestartReason, k.Restoring = p.Reason, p.Restore
		k.Restarts++
	case events.KernelRestored:
		k := m.kernel(p.KernelID, e)
		r := p
		k.Restored, k.RestoredSeq, k.Restoring = &r, e.Seq, ""
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
		k.State, k.Reason, k.Busy, k.Restoring, k.Culled = StateShutDown, p.Reason, false, "", p.Culled
		for _, sess := range k.Sessions {
			delete(m.sessions, sess.ID) // NB: a shut-down kernel's sessions close with it (no event)
		}
		k.Sessions = nil
	case events.FrontendAttached:
		k := m.kernel(p.KernelID, e)
		k.Frontends = slices.DeleteFunc(k.Frontends, func(f Frontend) bool { return f.Session == p.Session })
		if len(k.Frontends) >= MaxFrontends {
			k.Frontends = slices.Delete(k.Frontends, 0, len(k.Frontends)-MaxFrontends+1)
		}
		k.Frontends = append(k.Frontends, Frontend{Session: p.Session, Username: p.Username, Client: p.Client,
			Framing: p.Framing, By: e.Principal, At: e.Time, Seq: e.Seq})
	case events.KernelSessionOpened:
		k := m.kernel(p.KernelID, e)
		if other, ok := m.sessions[p.SessionID]; ok && other != p.KernelID {
			m.closeSession(m.kernels[other], p.SessionID) // NB: moved to this kernel
		}
		sess := Session{ID: p.SessionID, Path: p.Path, Name: p.Name, Type: p.Type, OpenedAt: e.Time, Seq: e.Seq, By: e.Principal}
		if i := slices.IndexFunc(k.Sessions, func(s Session) bool { return s.ID == p.SessionID }); i >= 0 {
			k.Sessions[i] = sess
			break
		}
		if len(k.Sessions) >= MaxSessions {
			m.closeSession(k, k.Sessions[0].ID)
		}
		k.Sessions = append(k.Sessions, sess)
		m.sessions[p.SessionID] = p.KernelID
	case events.KernelSessionClosed:
		m.closeSession(m.kernel(p.KernelID, e), p.SessionID)
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

// closeSession removes a session from k (nil: none). Callers hold m.mu.
func (m *Model) closeSession(k *Kernel, id string) {
	if k == nil {
		return
	}
	k.Sessions = slices.DeleteFunc(k.Sessions, func(s Session) bool { return s.ID == id })
	if len(k.Sessions) == 0 {
		k.Sessions = nil
	}
	if m.sessions[id] == k.ID {
		delete(m.sessions, id)
	}
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
	k, ok := m.kernels[events.CanonicalID(id)] // NB: either form of the id
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
	sessions := map[string]string{}
	for i := range s.Kernels {
		k := s.Kernels[i]
		kernels[k.ID] = &k
		if isLive(&k) {
			live[k.Owner]++
		}
		for _, sess := range k.Sessions {
			sessions[sess.ID] = k.ID
		}
	}
	m.mu.Lock()
	m.kernels, m.live, m.sessions = kernels, live, sessions
	m.mu.Unlock()
	return nil
}
