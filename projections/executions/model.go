package executions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Name is the projection's snapshot name. NB: stored in the log; must not
// change.
const Name = "executions"

// Defaults for Options left zero.
const (
	// DefaultMaxOutputBytes bounds the outputs held in memory, over every
	// execution.
	DefaultMaxOutputBytes = 4 << 20
	// DefaultMaxFinished bounds how many finished executions keep their
	// status in memory.
	DefaultMaxFinished = 10_000
	// DefaultMaxReadBytes bounds the outputs one Read returns.
	DefaultMaxReadBytes = 1 << 20
)

// outputOverhead is what one held output costs beside its payload (the
// slice element and the allocation header), counted against the budget.
const outputOverhead = 64

// Options bound the model's memory.
type Options struct {
	// MaxOutputBytes bounds the outputs held in memory (payload bytes + 64
	// per output). Beyond it outputs are paged from the log.
	MaxOutputBytes int
	// MaxFinished bounds the finished executions whose status is held.
	MaxFinished int
	// MaxReadBytes bounds the outputs one Read returns (their stored
	// payload bytes): an execution that printed 200 MB is read in pieces,
	// never whole. A single output larger than it is returned alone.
	MaxReadBytes int
}

// Reader pages one stream of the log: every event of stream with seq >
// after, in order, payload decoded (infra/eventlog's ReadStream). An error
// from fn ends the read and is returned.
//
// Truncated returns an error naming the retention setting when seq is no
// longer in the retained log (nil when it is, or for 0).
type Reader interface {
	ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error
	Truncated(seq uint64) error
}

// ErrUnknown: no execution with that id in the model or the log.
var ErrUnknown = errors.New("executions: unknown execution")

// View is what Read returns.
type View struct {
	Execution queue.Execution
	// Outputs are the execution's outputs with seq > since, in log order.
	Outputs []queue.Output
	// Cursor is the last seq of the execution's stream the model reflects:
	// pass it as since to get only what is newer.
	Cursor uint64
	// Changed is closed at the execution's next change (status or output).
	// It is nil when the execution is finished and no longer held: nothing
	// about it will change.
	Changed <-chan struct{}
	// More: Outputs stopped at MaxReadBytes; Cursor is the last output
	// returned, and reading again from it returns the rest (do not wait on
	// Changed first).
	More bool
}

// output is one held IOPub message of an execution.
type output struct {
	seq uint64
	raw []byte // the IOPubMessageReceived payload as stored; owned, never changed
}

func (o output) size() int { return len(o.raw) + outputOverhead }

// entry is one execution.
type entry struct {
	x       queue.Execution
	outs    []output // held outputs, seq ascending, each > dropped
	dropped uint64   // outputs with seq <= dropped are not held: they are paged from the log
	bytes   int
	cursor  uint64
	// changed is made when a reader asks for it and closed, then
	// forgotten, at the entry's next change: a quiet execution costs no
	// channel, and an event wakes only this execution's waiters.
	changed chan struct{}
	// settled is made when a waiter asks for it (Settled) and closed, then
	// forgotten, when the execution settles: its output does not wake it.
	settled chan struct{}
}

// Settles reports whether waiting longer for x cannot help: it finished,
// or it waits for input only the agent can give.
func Settles(x queue.Execution) bool {
	return x.Status.Done() || x.Status == queue.StatusInputRequired
}

// Model is the execution read model. It implements projections.Projection;
// its query methods are safe for concurrent use with Apply.
type Model struct {
	opts Options
	log  Reader

	mu    sync.RWMutex
	seq   uint64
	execs map[string]*entry
	bytes int // outputs held, over every entry
	// finished lists executions in the order they reached a final status.
	// Entries before statusHead lost their status (deleted from execs);
	// before outHead their outputs. outHead >= statusHead.
	finished   []string
	statusHead int
	outHead    int
	// unknown holds the change channels of executions read from the log
	// before the model applied their ExecutionQueued (see awaitKnown).
	unknown map[string]chan struct{}
	// awaiting holds the settle channels of executions submitted but not
	// applied yet (see Settled), with how many waiters hold each: the
	// last to give up removes it, so the map holds only live waits.
	awaiting map[string]*settleWait
	// wakes counts channels closed by Apply (tests and benchmarks).
	wakes uint64
	// arenas hold the outputs' payloads, one per kernel: a kernel runs
	// one execution at a time and outputs are dropped oldest first, so
	// what a kernel's arena keeps in memory is its held outputs and one
	// chunk.
	arenas map[string]*projections.Arena
}

// maxArenas bounds the arenas kept (kernels come and go): past it they
// are forgotten, their outputs staying valid.
const maxArenas = 64

func (m *Model) arena(kernel string) *projections.Arena {
	a := m.arenas[kernel]
	if a == nil {
		if m.arenas == nil || len(m.arenas) >= maxArenas {
			m.arenas = map[string]*projections.Arena{}
		}
		a = &projections.Arena{}
		m.arenas[kernel] = a
	}
	return a
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model that pages dropped outputs through log.
func New(opts Options, log Reader) *Model {
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.MaxFinished <= 0 {
		opts.MaxFinished = DefaultMaxFinished
	}
	if opts.MaxReadBytes <= 0 {
		opts.MaxReadBytes = DefaultMaxReadBytes
	}
	return &Model{opts: opts, log: log, execs: map[string]*entry{}, unknown: map[string]chan struct{}{},
		awaiting: map[string]*settleWait{}}
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Wants implements projections.Projection: execution events decoded; IOPub
// output raw (it is kept as stored and decoded only when read).
func (m *Model) Wants(typ string) projections.Interest {
	if queue.IsExecutionEvent(typ) {
		return projections.Payload
	}
	if typ == events.TypeIOPubMessageReceived {
		return projections.Envelope
	}
	return projections.Skip
}

// Apply implements projections.Projection.
func (m *Model) Apply(e events.Event) error {
	if events.StreamKind(e.Stream) != "execution" {
		return nil // kernel-level output belongs to no execution
	}
	id := events.StreamID(e.Stream)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq = e.Seq
	x, ok := m.execs[id]
	if e.Type == events.TypeIOPubMessageReceived {
		if !ok {
			return nil // NB: its status was dropped; the log keeps the output
		}
		x.cursor = e.Seq
		// NB: a pipelined execution's first message: the kernel took it up.
		x.x = queue.StartBehind(x.x, e.Time)
		m.push(x, output{seq: e.Seq, raw: m.arena(e.Kernel).Copy(e.Raw)})
		m.wake(x)
		return nil
	}
	if !ok {
		if e.Type != events.TypeExecutionQueued {
			return nil // NB: an execution whose Queued event was truncated away keeps no state
		}
		x = &entry{changed: m.unknown[id]}
		delete(m.unknown, id)
		if w := m.awaiting[id]; w != nil {
			x.settled = w.ch
			delete(m.awaiting, id)
		}
		m.execs[id] = x
	}
	before := x.x.Status
	x.x = queue.ApplyExecution(x.x, e)
	x.cursor = e.Seq
	m.wake(x)
	if x.settled != nil && Settles(x.x) {
		close(x.settled)
		x.settled = nil
		m.wakes++
	}
	if x.x.Status.Done() && !before.Done() {
		m.finished = append(m.finished, id)
		m.trimStatuses()
		m.trimOutputs(nil)
	}
	return nil
}

func (m *Model) wake(x *entry) {
	if x.changed != nil {
		close(x.changed)
		x.changed = nil
		m.wakes++
	}
}

// push holds o and keeps the budget: finished executions' outputs go
// first, then the oldest of x's own.
func (m *Model) push(x *entry, o output) {
	x.outs = append(x.outs, o)
	x.bytes += o.size()
	m.bytes += o.size()
	m.trimOutputs(x)
}

// trimOutputs drops outputs until the budget holds: every output of the
// oldest finished executions, then (when grow is not nil) the oldest
// outputs of grow, the execution that just grew.
func (m *Model) trimOutputs(grow *entry) {
	for m.bytes > m.opts.MaxOutputBytes && m.outHead < len(m.finished) {
		if x, ok := m.execs[m.finished[m.outHead]]; ok {
			m.dropAll(x)
		}
		m.outHead++
	}
	if grow == nil || m.bytes <= m.opts.MaxOutputBytes {
		return
	}
	n := 0
	for n < len(grow.outs) && m.bytes > m.opts.MaxOutputBytes {
		sz := grow.outs[n].size()
		grow.bytes -= sz
		m.bytes -= sz
		grow.dropped = grow.outs[n].seq
		grow.outs[n] = output{} // NB: release the payload now, not when the slice regrows
		n++
	}
	grow.outs = grow.outs[n:]
}

func (m *Model) dropAll(x *entry) {
	if len(x.outs) > 0 {
		x.dropped = x.outs[len(x.outs)-1].seq
	}
	m.bytes -= x.bytes
	x.outs, x.bytes = nil, 0
}

// SetMaxFinished changes the bound of finished executions whose status is
// held (tests of long runs lower it to see the log's own growth).
func (m *Model) SetMaxFinished(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opts.MaxFinished = n
	m.trimStatuses()
}

// trimStatuses forgets the oldest finished executions beyond MaxFinished.
func (m *Model) trimStatuses() {
	for len(m.finished)-m.statusHead > m.opts.MaxFinished {
		id := m.finished[m.statusHead]
		if x, ok := m.execs[id]; ok {
			m.dropAll(x)
			m.wake(x)
			delete(m.execs, id)
		}
		m.finished[m.statusHead] = ""
		m.statusHead++
	}
	m.outHead = max(m.outHead, m.statusHead)
	if m.statusHead > 1024 && m.statusHead > len(m.finished)/2 {
		// Compact the FIFO so that it does not grow with every execution ever run.
		m.finished = append([]string(nil), m.finished[m.statusHead:]...)
		m.outHead -= m.statusHead
		m.statusHead = 0
	}
}

// settleWait is a settle channel of an execution not applied yet, shared
// by its waiters.
type settleWait struct {
	ch      chan struct{}
	waiters int
}

// Settled returns a channel closed once execution id settles (a final
// status, or waiting for input) in the model: at once if it has, and not
// at its outputs — the one wake-up an execute call needs. seq is the
// append that queued it (a submit's LastSeq): an execution submitted but
// not yet applied (its append is not durable yet: the model only sees
// durable events) is waited for too. Nil when the model cannot tell: it
// applied past seq without holding id (an old execution it dropped); read
// it instead. Call release when done waiting.
func (m *Model) Settled(id string, seq uint64) (settled <-chan struct{}, release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := m.execs[id]; ok {
		if Settles(x.x) {
			ch := make(chan struct{})
			close(ch)
			return ch, func() {}
		}
		if x.settled == nil {
			x.settled = make(chan struct{})
		}
		return x.settled, func() {}
	}
	if m.seq >= seq {
		return nil, func() {}
	}
	w := m.awaiting[id]
	if w == nil {
		w = &settleWait{ch: make(chan struct{})}
		m.awaiting[id] = w
	}
	w.waiters++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if w.waiters--; w.waiters == 0 && m.awaiting[id] == w {
				delete(m.awaiting, id)
			}
		})
	}
}

// Read returns execution id's status, its outputs with seq > since, its
// cursor and its change channel. Outputs the model no longer holds are
// paged from the log, from since on; an execution whose status it dropped
// is folded from its stream.
func (m *Model) Read(ctx context.Context, id string, since uint64) (View, error) {
	m.mu.Lock() // NB: write lock: it may create the change channel
	x, ok := m.execs[id]
	if !ok {
		m.mu.Unlock()
		return m.readLog(ctx, id, since)
	}
	if x.changed == nil {
		x.changed = make(chan struct{})
	}
	v := View{Execution: x.x, Cursor: max(x.cursor, since), Changed: x.changed}
	dropped := x.dropped
	i := sort.Search(len(x.outs), func(i int) bool { return x.outs[i].seq > since })
	held := slices.Clone(x.outs[i:]) // NB: raw is never changed, so sharing it is safe
	m.mu.Unlock()

	budget := readBudget{left: m.opts.MaxReadBytes}
	if since < dropped {
		// NB: a finished execution's stream is not kept by retention: its
		// outputs older than the retained log are gone, and saying so beats
		// answering fewer of them.
		if v.Execution.Status.Done() && m.log != nil {
			if err := m.log.Truncated(max(since+1, v.Execution.QueuedSeq)); err != nil {
				return View{}, fmt.Errorf("read execution %s outputs after %d: %w", id, since, err)
			}
		}
		err := m.page(ctx, id, since, dropped, func(seq uint64, raw []byte) error {
			if !budget.take(len(raw)) {
				return errStop
			}
			o, err := decode(seq, raw)
			if err != nil {
				return err
			}
			v.Outputs = append(v.Outputs, o)
			return nil
		})
		if err != nil {
			return View{}, err
		}
	}
	if v.Outputs == nil {
		v.Outputs = make([]queue.Output, 0, len(held))
	}
	for _, o := range held {
		if budget.full || !budget.take(len(o.raw)) {
			break
		}
		out, err := decode(o.seq, o.raw)
		if err != nil {
			return View{}, err
		}
		v.Outputs = append(v.Outputs, out)
	}
	if budget.full {
		v.More, v.Cursor = true, since
		if n := len(v.Outputs); n > 0 {
			v.Cursor = v.Outputs[n-1].Seq
		}
	}
	return v, nil
}

// readBudget counts the bytes one Read returns.
type readBudget struct {
	left int
	took bool
	full bool // something was left out
}

// take reports whether an output of n bytes fits; the first always does.
func (b *readBudget) take(n int) bool {
	if b.took && n > b.left {
		b.full = true
		return false
	}
	b.took, b.left = true, b.left-n
	return true
}

// Get returns an execution's status as held in memory.
func (m *Model) Get(id string) (queue.Execution, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	x, ok := m.execs[id]
	if !ok {
		return queue.Execution{}, false
	}
	return x.x, true
}

var errStop = errors.New("executions: stop")

// KernelOf is the kernel execution id ran on, without reading its outputs:
// from memory, or from the first event of its stream (ExecutionQueued).
// An edge checks access on it before reading anything else.
func (m *Model) KernelOf(ctx context.Context, id string) (string, error) {
	if x, ok := m.Get(id); ok {
		return x.KernelID, nil
	}
	if m.log == nil {
		return "", fmt.Errorf("%w %q", ErrUnknown, id)
	}
	var kernel string
	err := m.log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		if e.Type == events.TypeExecutionQueued {
			if err := e.DecodePayload(); err != nil {
				return err
			}
			if p, ok := e.Payload.(events.ExecutionQueued); ok {
				kernel = p.KernelID
			}
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", fmt.Errorf("read execution %s from the log: %w", id, err)
	}
	if kernel == "" {
		return "", fmt.Errorf("%w %q", ErrUnknown, id)
	}
	return kernel, nil
}

// page calls fn for the outputs of id's stream with since < seq <= upTo,
// read from the log.
func (m *Model) page(ctx context.Context, id string, since, upTo uint64, fn func(seq uint64, raw []byte) error) error {
	if m.log == nil {
		return fmt.Errorf("read execution %s outputs after %d: they are no longer in memory and the model has no log", id, since)
	}
	err := m.log.ReadStream(ctx, events.ExecutionStream(id), since, func(e events.Event) error {
		if e.Seq > upTo {
			return errStop
		}
		if e.Type != events.TypeIOPubMessageReceived {
			return nil
		}
		return fn(e.Seq, e.Raw)
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("read execution %s outputs from the log: %w", id, err)
	}
	return nil
}

// readLog folds an execution the model does not hold from its stream.
func (m *Model) readLog(ctx context.Context, id string, since uint64) (View, error) {
	if m.log == nil {
		return View{}, fmt.Errorf("%w %q", ErrUnknown, id)
	}
	v := View{Cursor: since}
	budget := readBudget{left: m.opts.MaxReadBytes}
	err := m.log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		if queue.IsExecutionEvent(e.Type) {
			if err := e.DecodePayload(); err != nil {
				return err
			}
			v.Execution = queue.ApplyExecution(v.Execution, e)
		} else if e.Type == events.TypeIOPubMessageReceived && e.Seq > since && !budget.full {
			if budget.take(len(e.Raw)) {
				o, err := decode(e.Seq, e.Raw)
				if err != nil {
					return err
				}
				v.Outputs = append(v.Outputs, o)
			}
		}
		if !budget.full {
			v.Cursor = max(v.Cursor, e.Seq)
		}
		return nil
	})
	v.More = budget.full
	if err != nil {
		return View{}, fmt.Errorf("read execution %s from the log: %w", id, err)
	}
	if v.Execution.ID == "" {
		return View{}, fmt.Errorf("%w %q", ErrUnknown, id)
	}
	if !v.Execution.Status.Done() {
		// NB: in the log, not finished, yet not held: the caller read past
		// the runner (no WaitFor). Its channel closes when the model
		// learns of it.
		v.Changed = m.awaitKnown(id)
	}
	return v, nil
}

// awaitKnown returns a channel closed once the model holds id (at once if
// it does already).
func (m *Model) awaitKnown(id string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := m.execs[id]; ok {
		if x.changed == nil {
			x.changed = make(chan struct{})
		}
		return x.changed
	}
	ch, ok := m.unknown[id]
	if !ok {
		ch = make(chan struct{})
		m.unknown[id] = ch
	}
	return ch
}

// decode turns a stored IOPubMessageReceived payload into an Output.
func decode(seq uint64, raw []byte) (queue.Output, error) {
	var p struct {
		MsgType string          `json:"msg_type"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return queue.Output{}, fmt.Errorf("decode output %d: %w", seq, err)
	}
	return queue.Output{Seq: seq, MsgType: p.MsgType, Content: p.Content}, nil
}

// Stats describe the model's memory.
type Stats struct {
	Executions  int    // statuses held
	Outputs     int    // outputs held
	OutputBytes int    // their cost against Options.MaxOutputBytes
	Wakes       uint64 // change and settle channels closed by Apply
	Awaiting    int    // settle waits for executions not applied yet
	LastSeq     uint64 // the last event applied
	Budget      int    // Options.MaxOutputBytes
}

// Stats returns the model's memory figures.
func (m *Model) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := Stats{Executions: len(m.execs), OutputBytes: m.bytes, Wakes: m.wakes, LastSeq: m.seq, Budget: m.opts.MaxOutputBytes,
		Awaiting: len(m.awaiting)}
	for _, x := range m.execs {
		st.Outputs += len(x.outs)
	}
	return st
}

// snapshot is the stored form: statuses and cursors, not outputs (they are
// paged from the log after a restore). NB: stored in the log; add fields
// compatibly, bump snapshotVersion otherwise.
type snapshot struct {
	Version    int         `json:"version"`
	Seq        uint64      `json:"seq"`
	Executions []snapEntry `json:"executions"`
	Finished   []string    `json:"finished"`
}

type snapEntry struct {
	X       queue.Execution `json:"x"`
	Cursor  uint64          `json:"cursor"`
	Dropped uint64          `json:"dropped"` // the last output seq: every output is paged after a restore
}

const snapshotVersion = 1

// Snapshot implements projections.Projection.
func (m *Model) Snapshot() ([]byte, error) {
	m.mu.RLock()
	s := snapshot{Version: snapshotVersion, Seq: m.seq, Finished: slices.Clone(m.finished[m.statusHead:])}
	for _, x := range m.execs {
		d := x.dropped
		if len(x.outs) > 0 {
			d = x.outs[len(x.outs)-1].seq
		}
		s.Executions = append(s.Executions, snapEntry{X: x.x, Cursor: x.cursor, Dropped: d})
	}
	m.mu.RUnlock()
	slices.SortFunc(s.Executions, func(a, b snapEntry) int {
		switch {
		case a.X.QueuedSeq < b.X.QueuedSeq:
			return -1
		case a.X.QueuedSeq > b.X.QueuedSeq:
			return 1
		}
		return 0
	})
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("snapshot executions: %w", err)
	}
	return b, nil
}

// Restore implements projections.Projection.
func (m *Model) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode executions snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("decode executions snapshot: version %d, this binary reads %d", s.Version, snapshotVersion)
	}
	execs := make(map[string]*entry, len(s.Executions))
	for _, se := range s.Executions {
		execs[se.X.ID] = &entry{x: se.X, cursor: se.Cursor, dropped: se.Dropped}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, w := range m.awaiting {
		if x, ok := execs[id]; ok {
			// NB: a wait begun before the restore: hand it to the entry.
			delete(m.awaiting, id)
			if Settles(x.x) {
				close(w.ch)
			} else {
				x.settled = w.ch
			}
		}
	}
	m.execs, m.seq, m.bytes = execs, s.Seq, 0
	m.finished, m.statusHead, m.outHead = s.Finished, 0, len(s.Finished)
	m.trimStatuses()
	return nil
}
