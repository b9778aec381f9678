package backlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "iopub-backlog"

// Defaults for Options left zero.
const (
	DefaultMaxMessages = 1000
	DefaultMaxBytes    = 8 << 20
)

// Options bound each kernel's ring.
type Options struct {
	MaxMessages int
	MaxBytes    int
	// Observer, when set, is told the backlog's size as it changes
	// (metrics).
	Observer Observer
}

// Observer is told how much the backlog holds, for metrics
// (infra/metrics.Live.Backlog implements it). Calls come from the
// projections runner's goroutine, inside Apply and Restore, with the
// model's lock held: they must be cheap and must not call the Model.
type Observer interface {
	// Held: the bytes every kernel's ring holds now, together.
	Held(bytes int)
	// Evicted: n messages left a ring (or never fit) because of its bound.
	Evicted(n int)
}

type nopObserver struct{}

func (nopObserver) Held(int)    {}
func (nopObserver) Evicted(int) {}

// All is the key of the ring that holds every event, whatever its kernel
// (for readers that follow the whole log).
const All = ""

// Entry is one event as recorded in the log: IOPub output for the most
// part, and the kernel's other events between them.
type Entry struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	ExecutionID string    `json:"execution_id,omitempty"` // from the event's stream; "" for kernel-level events
	// Payload is the event's payload as stored (JSON): for IOPub output the
	// IOPubMessageReceived payload.
	Payload json.RawMessage `json:"payload"`
	// The rest of the envelope. Type is "" in snapshots of older binaries,
	// which held IOPub output only.
	Stream  string `json:"stream,omitempty"`
	Kernel  string `json:"kernel,omitempty"`
	Node    string `json:"node,omitempty"`
	Type    string `json:"type,omitempty"`
	Version uint16 `json:"version,omitempty"`
	// Principal is who caused the event; "" in snapshots of older binaries
	// and for events the server caused on its own.
	Principal string `json:"principal,omitempty"`
}

func (e Entry) size() int { return len(e.Payload) + 64 }

// Event returns the entry as the event it was read from (payload raw, not
// decoded). NB: Raw aliases the entry's payload; do not change it.
func (e Entry) Event() events.Event {
	return events.Event{Seq: e.Seq, Time: e.Time, Stream: e.Stream, Kernel: e.Kernel, Node: e.Node,
		Type: e.Type, Version: e.Version, Principal: e.Principal, Raw: e.Payload}
}

func entryOf(e events.Event, payload json.RawMessage) Entry {
	ent := Entry{Seq: e.Seq, Time: e.Time, Payload: payload, Stream: e.Stream, Kernel: e.Kernel,
		Node: e.Node, Type: e.Type, Version: e.Version, Principal: e.Principal}
	if events.StreamKind(e.Stream) == "execution" {
		ent.ExecutionID = events.StreamID(e.Stream)
	}
	return ent
}

// Stats describe one kernel's ring.
type Stats struct {
	Messages int    `json:"messages"`
	Bytes    int    `json:"bytes"`
	Evicted  uint64 `json:"evicted"`       // messages that left the ring or never fit
	EvictTo  uint64 `json:"evicted_up_to"` // the highest sequence evicted
}

type ring struct {
	ents  []Entry // ents[head:] then ents[:head] in order when full
	head  int
	n     int
	bytes int
	st    Stats
	arena projections.Arena // the payloads of the events pushed here first
}

func (r *ring) at(i int) *Entry { return &r.ents[(r.head+i)%len(r.ents)] }

func (r *ring) popOldest() {
	e := r.at(0)
	r.bytes -= e.size()
	r.st.Evicted++
	r.st.EvictTo = e.Seq
	*e = Entry{}
	r.head = (r.head + 1) % len(r.ents)
	r.n--
}

func (r *ring) push(e Entry, maxMsgs, maxBytes int) {
	if e.size() > maxBytes {
		// NB: the ring holds a contiguous run of the kernel's output (Since
		// relies on it), so a message too big for it empties it.
		for r.n > 0 {
			r.popOldest()
		}
		r.st.Evicted++
		r.st.EvictTo = e.Seq
		return
	}
	for r.n > 0 && (r.n >= maxMsgs || r.bytes+e.size() > maxBytes) {
		r.popOldest()
	}
	if len(r.ents) < maxMsgs && r.n == len(r.ents) {
		// Grow lazily: a quiet kernel costs little. Re-linearize.
		grown := make([]Entry, r.n, min(maxMsgs, max(16, 2*len(r.ents))))
		for i := range r.n {
			grown[i] = *r.at(i)
		}
		r.ents, r.head = grown[:cap(grown)], 0
	}
	*r.at(r.n) = e
	r.n++
	r.bytes += e.size()
}

// Model is the backlog projection. It is safe for concurrent use.
type Model struct {
	opts  Options
	mu    sync.RWMutex
	rings map[string]*ring
	seq   uint64
	// bytes: held by every kernel's ring, for the Observer. NB: the All
	// ring shares its payloads with the kernels' rings and is not counted.
	bytes int
	// floor: events with seq <= floor may be missing from the rings without
	// being counted as evicted (restored from an older snapshot format);
	// readers take them from the log.
	floor uint64
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty backlog.
func New(opts Options) *Model {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = DefaultMaxMessages
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	return &Model{opts: opts, rings: map[string]*ring{}}
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection: every event, envelope and raw
// payload (nothing is decoded).
func (m *Model) Wants(typ string) projections.Interest { return projections.Envelope }

// Apply implements projections.Projection: the event goes into its kernel's
// ring and into the All ring.
func (m *Model) Apply(e events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Seq <= m.seq {
		return nil
	}
	// NB: one copy of the payload, shared by both rings; it never changes.
	// It goes into the kernel ring's arena: that ring holds a contiguous
	// run of the kernel's events, and the All ring a more recent one.
	r := m.ring(e.Kernel)
	ent := entryOf(e, r.arena.Copy(e.Raw))
	if e.Kernel != All {
		m.push(r, ent)
	}
	m.ring(All).push(ent, m.opts.MaxMessages, m.opts.MaxBytes)
	m.seq = e.Seq
	return nil
}

// push adds e to r and tells the Observer what changed. Hold m.mu.
func (m *Model) push(r *ring, e Entry) {
	bytes, evicted := r.bytes, r.st.Evicted
	r.push(e, m.opts.MaxMessages, m.opts.MaxBytes)
	m.bytes += r.bytes - bytes
	if n := r.st.Evicted - evicted; n > 0 {
		m.opts.Observer.Evicted(int(n))
	}
	m.opts.Observer.Held(m.bytes)
}

func (m *Model) ring(kernel string) *ring {
	r := m.rings[kernel]
	if r == nil {
		r = &ring{}
		m.rings[kernel] = r
	}
	return r
}

// Seq returns the last sequence applied.
func (m *Model) Seq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seq
}

// Stats returns one kernel's ring statistics.
func (m *Model) Stats(kernel string) Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rings[kernel]
	if r == nil {
		return Stats{}
	}
	st := r.st
	st.Messages, st.Bytes = r.n, r.bytes
	return st
}

// Since returns the entries of kernel's ring (All: every event) with seq >
// after. complete is false when the ring evicted some entry after `after`:
// those must come from the log, for sequences up to (not including) the
// first entry returned, or up to upTo when none is. upTo is the last
// sequence the backlog applied.
func (m *Model) Since(kernel string, after uint64) (ents []Entry, complete bool, upTo uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	upTo = m.seq
	r := m.rings[kernel]
	if r == nil {
		return nil, m.floor <= after, upTo
	}
	// NB: the ring is in seq order: find the first entry after `after` by
	// binary search, then copy the run after it.
	lo, hi := 0, r.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.at(mid).Seq <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < r.n {
		ents = make([]Entry, 0, r.n-lo)
		for i := lo; i < r.n; i++ {
			ents = append(ents, *r.at(i))
		}
	}
	return ents, r.st.EvictTo <= after && m.floor <= after, upTo
}

// Covers reports whether the ring holds every event about kernel (All:
// every event) after `after`: what Since's complete says, without copying.
func (m *Model) Covers(kernel string, after uint64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rings[kernel]
	if r == nil {
		return m.floor <= after
	}
	return r.st.EvictTo <= after && m.floor <= after
}

// KernelReader reads everything about one kernel after a sequence, in order
// (infra/eventlog's ReadKernel); Scan reads every event in [from, to].
type KernelReader interface {
	ReadKernel(ctx context.Context, kernel string, after uint64, fn func(events.Event) error) error
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
}

var errStop = errors.New("backlog: stop")

// Read calls fn, in sequence order, for every event about kernel (All:
// every event) with seq > after that the backlog has applied: from the log
// for what the ring evicted, then from the ring. An error from fn ends the
// read. Entries read from the log alias its buffers for the call only.
func (m *Model) Read(ctx context.Context, log KernelReader, kernel string, after uint64, fn func(Entry) error) error {
	ents, complete, upTo := m.Since(kernel, after)
	if !complete {
		limit := upTo
		if len(ents) > 0 {
			limit = ents[0].Seq - 1
		}
		visit := func(e events.Event) error {
			if e.Seq > limit {
				return errStop
			}
			if e.Seq <= after {
				return nil
			}
			return fn(entryOf(e, e.Raw))
		}
		var err error
		if kernel == All {
			if limit > after {
				err = log.Scan(ctx, after+1, limit, visit)
			}
		} else {
			err = log.ReadKernel(ctx, kernel, after, visit)
		}
		if err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("read kernel %s events from the log: %w", kernel, err)
		}
	}
	for _, e := range ents {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// snapshot is the stored form. NB: stored in the log; add fields
// compatibly, bump snapshotVersion otherwise.
type snapshot struct {
	Version int        `json:"version"`
	Seq     uint64     `json:"seq"`
	Floor   uint64     `json:"floor,omitempty"`
	Rings   []snapRing `json:"rings"`
}

// snapshotVersion 2: every event (version 1, without the field: IOPub only).
const snapshotVersion = 2

type snapRing struct {
	Kernel  string  `json:"kernel"`
	Entries []Entry `json:"entries"`
	Stats   Stats   `json:"stats"`
}

// Snapshot implements projections.Projection.
func (m *Model) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := snapshot{Version: snapshotVersion, Seq: m.seq, Floor: m.floor}
	for k, r := range m.rings {
		sr := snapRing{Kernel: k, Stats: r.st}
		for i := range r.n {
			sr.Entries = append(sr.Entries, *r.at(i))
		}
		s.Rings = append(s.Rings, sr)
	}
	slices.SortFunc(s.Rings, func(a, b snapRing) int {
		if a.Kernel < b.Kernel {
			return -1
		}
		return 1
	})
	return json.Marshal(s)
}

// Restore implements projections.Projection. Entries beyond the current
// bounds are evicted (and counted) as they are restored.
func (m *Model) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode backlog snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rings, m.bytes = map[string]*ring{}, 0
	m.opts.Observer.Held(0)
	m.floor = s.Floor
	if s.Version < snapshotVersion {
		// NB: version 1 held IOPub output only: the other events up to its
		// seq were never in it, so readers take everything up to it from
		// the log.
		m.floor = s.Seq
	}
	for _, sr := range s.Rings {
		r := &ring{st: sr.Stats}
		for _, e := range sr.Entries {
			if sr.Kernel == All {
				r.push(e, m.opts.MaxMessages, m.opts.MaxBytes)
			} else {
				m.push(r, e)
			}
		}
		m.rings[sr.Kernel] = r
	}
	m.seq = s.Seq
	return nil
}
