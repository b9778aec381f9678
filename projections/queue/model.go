package queue

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// Model is the queue read model over every kernel. It implements the
// projections framework's Projection; its methods are safe for concurrent
// use (one writer applying, many readers).
type Model struct {
	mu         sync.RWMutex
	seq        uint64
	executions map[string]*Execution
	// pending is, per kernel, the FIFO of executions not yet started
	// (queued), in queue order.
	pending map[string][]string
	// waitingBy counts pending executions per submitting principal ("" for
	// those from before principals), kept with pending: a per-principal
	// queue quota reads it in O(1) on every submit instead of scanning
	// every queue.
	waitingBy map[string]int
	// byKernel indexes executions by kernel: a kernel's list (what a
	// principal sees of the kernels it may read) costs that kernel's
	// executions, not everyone's.
	byKernel map[string]map[string]*Execution
	// active is, per kernel, the execution that started and has no final
	// status yet.
	active map[string]string
	// behind maps an execution to the one pipelined behind it (shown
	// queued until the first ends).
	behind map[string]string
	// changed is closed at the model's next change (nil until Changed asks).
	changed chan struct{}
	// finished lists executions in the order they reached a final status;
	// beyond maxFinished the oldest are dropped from memory (the log keeps
	// them: readers fall back to the execution's stream).
	finished    []string
	maxFinished int
}

// DefaultMaxFinished bounds how many finished executions the model keeps.
const DefaultMaxFinished = 10_000

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{executions: map[string]*Execution{}, pending: map[string][]string{}, waitingBy: map[string]int{},
		byKernel: map[string]map[string]*Execution{}, active: map[string]string{}, behind: map[string]string{}, changed: make(chan struct{}), maxFinished: DefaultMaxFinished}
}

// SetMaxFinished changes how many finished executions stay in memory.
func (m *Model) SetMaxFinished(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxFinished = n
}

// Name implements Projection.
func (m *Model) Name() string { return "queue" }

// Wants implements Projection.
func (m *Model) Wants(typ string) projections.Interest {
	if IsExecutionEvent(typ) {
		return projections.Payload
	}
	return projections.Skip
}

// Apply implements Projection. e's payload is decoded.
func (m *Model) Apply(e events.Event) error {
	if !IsExecutionEvent(e.Type) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apply(e)
	m.seq = e.Seq
	// NB: made on demand by Changed: a replay changes the model a million
	// times with nobody waiting.
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
	return nil
}

func (m *Model) apply(e events.Event) {
	id := events.StreamID(e.Stream)
	x, ok := m.executions[id]
	if !ok {
		if e.Type != events.TypeExecutionQueued {
			return // NB: an execution whose Queued event was truncated away keeps no state
		}
		x = &Execution{}
		m.executions[id] = x
	}
	before := x.Status
	*x = ApplyExecution(*x, e)
	k := x.KernelID
	if !ok {
		m.index(x)
	}
	if x.Behind != "" && e.Type == events.TypeExecutionStarted {
		if first, ok := m.executions[x.Behind]; ok && !first.Status.Done() {
			m.behind[x.Behind] = id
		} else {
			*x = StartBehind(*x, e.Time) // NB: that one ended first
		}
	}
	m.transition(k, id, x, before)
	if x.Status.Done() && !before.Done() {
		if next, ok := m.behind[id]; ok {
			delete(m.behind, id)
			// NB: one the kernel ended lets the next one run, and so does
			// one recorded lost that ran (a re-attach found the kernel went
			// on to the next). A cancel, or a loss with the kernel (it died,
			// was stopped), ends the next one too, which never started.
			if y := m.executions[next]; y != nil && (x.Status != StatusLost || ranLost(e)) && x.Status != StatusCancelled {
				b := y.Status
				*y = StartBehind(*y, e.Time)
				m.transition(y.KernelID, next, y, b)
			}
		}
	}
	if x.Status.Done() && !before.Done() {
		m.finished = append(m.finished, id)
		for len(m.finished) > m.maxFinished {
			if old, ok := m.executions[m.finished[0]]; ok {
				m.unindex(old)
			}
			delete(m.executions, m.finished[0])
			m.finished = m.finished[1:]
		}
	}
}

// transition keeps the per-kernel pending and active indexes in step with
// x's change of status from before. Callers hold m.mu.
func (m *Model) transition(k, id string, x *Execution, before Status) {
	if before == StatusQueued && x.Status != StatusQueued {
		m.pending[k] = remove(m.pending[k], id)
		if len(m.pending[k]) == 0 {
			delete(m.pending, k)
		}
		if m.waitingBy[x.By]--; m.waitingBy[x.By] <= 0 {
			delete(m.waitingBy, x.By)
		}
	}
	switch {
	case x.Status == StatusQueued && before == "":
		m.pending[k] = append(m.pending[k], id)
		m.waitingBy[x.By]++
	case !x.Status.Done() && x.Status != StatusQueued:
		m.active[k] = id
	case x.Status.Done() && m.active[k] == id:
		delete(m.active, k)
	}
}

// index adds x to its kernel's executions. Callers hold m.mu.
func (m *Model) index(x *Execution) {
	xs := m.byKernel[x.KernelID]
	if xs == nil {
		xs = map[string]*Execution{}
		m.byKernel[x.KernelID] = xs
	}
	xs[x.ID] = x
}

// unindex removes x from its kernel's executions. Callers hold m.mu.
func (m *Model) unindex(x *Execution) {
	if xs := m.byKernel[x.KernelID]; xs != nil {
		delete(xs, x.ID)
		if len(xs) == 0 {
			delete(m.byKernel, x.KernelID)
		}
	}
}

func remove(ids []string, id string) []string {
	for i, v := range ids {
		if v == id {
			return append(ids[:i:i], ids[i+1:]...)
		}
	}
	return ids
}

// Seq returns the last sequence applied.
func (m *Model) Seq() uint64 { m.mu.RLock(); defer m.mu.RUnlock(); return m.seq }

// Changed returns a channel closed at the model's next change.
func (m *Model) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

// Get returns one execution.
func (m *Model) Get(id string) (Execution, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	x, ok := m.executions[id]
	if !ok {
		return Execution{}, false
	}
	return *x, true
}

// Pending returns a kernel's queued executions in FIFO order.
func (m *Model) Pending(kernel string) []Execution {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Execution, 0, len(m.pending[kernel]))
	for _, id := range m.pending[kernel] {
		out = append(out, *m.executions[id])
	}
	return out
}

// Active returns the kernel's started, unfinished execution, if any.
func (m *Model) Active(kernel string) (Execution, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.active[kernel]
	if !ok {
		return Execution{}, false
	}
	return *m.executions[id], true
}

// Depth returns how many executions wait on a kernel (queued, not started).
func (m *Model) Depth(kernel string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.pending[kernel])
}

// Waiting returns how many executions principal submitted that wait, not
// started, on any kernel (executions submitted before principals existed
// count as the admin's, named admin).
func (m *Model) Waiting(principal, admin string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := m.waitingBy[principal]
	if principal == admin && principal != "" {
		n += m.waitingBy[""]
	}
	return n
}

// List returns the executions of a kernel ("" for all) with the given
// status ("" for any), oldest first.
func (m *Model) List(kernel string, status Status) []Execution {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Execution
	all := m.executions
	if kernel != "" {
		all = m.byKernel[kernel]
	}
	for _, x := range all {
		if (kernel == "" || x.KernelID == kernel) && (status == "" || x.Status == status) {
			out = append(out, *x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QueuedSeq < out[j].QueuedSeq })
	return out
}

type snapshot struct {
	Seq        uint64              `json:"seq"`
	Executions []Execution         `json:"executions"`
	Pending    map[string][]string `json:"pending"`
	Active     map[string]string   `json:"active"`
	Finished   []string            `json:"finished"`
}

// Snapshot implements Projection.
func (m *Model) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := snapshot{Seq: m.seq, Pending: m.pending, Active: m.active, Finished: m.finished}
	for _, x := range m.executions {
		s.Executions = append(s.Executions, *x)
	}
	sort.Slice(s.Executions, func(i, j int) bool { return s.Executions[i].QueuedSeq < s.Executions[j].QueuedSeq })
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("snapshot queue: %w", err)
	}
	return b, nil
}

// Restore implements Projection.
func (m *Model) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("restore queue snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq = s.Seq
	m.executions = make(map[string]*Execution, len(s.Executions))
	m.byKernel = map[string]map[string]*Execution{}
	for i := range s.Executions {
		m.executions[s.Executions[i].ID] = &s.Executions[i]
		m.index(&s.Executions[i])
	}
	m.pending, m.active, m.finished = s.Pending, s.Active, s.Finished
	if m.pending == nil {
		m.pending = map[string][]string{}
	}
	m.waitingBy = map[string]int{}
	for _, ids := range m.pending {
		for _, id := range ids {
			if x, ok := m.executions[id]; ok {
				m.waitingBy[x.By]++
			}
		}
	}
	if m.active == nil {
		m.active = map[string]string{}
	}
	// NB: not in the snapshot: rebuilt from the executions still shown
	// queued behind a running one, so its end starts them after a restore.
	m.behind = map[string]string{}
	for id, x := range m.executions {
		if x.Behind != "" && x.Status == StatusQueued {
			if first, ok := m.executions[x.Behind]; ok && !first.Status.Done() {
				m.behind[x.Behind] = id
			}
		}
	}
	return nil
}

// ranLost reports whether e records an execution lost after it ran.
func ranLost(e events.Event) bool {
	p, ok := e.Payload.(events.ExecutionLost)
	return ok && p.Ran
}
