package main

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// The console's past (infra/console then.go): the state at any event is
// what the server's own replay gives (replayModelsFrom, events_replay.go:
// the runner and projections the server runs), never a second fold.
//
// Cost: a fold from the log's start per request would grow with the log
// (the outside check measured 65x between a long and a short one). So the
// replayed states are cached every replayEvery events (bounded in entries
// and in bytes — a state weighs its models' snapshot size —, least recently
// used first out): a request copies the nearest cached state at or before
// its seq (Model.Clone: restoring a JSON snapshot of 10,000 executions per
// request cost ~50x more) and folds only the events after it. A request far from any cached state folds from the nearest one,
// leaving on its way a few coarse states (at most replayCoarse of them) and
// the states every replayEvery events over the last replayFine intervals
// before its seq, so the next request around there folds at most
// replayEvery events. One fold runs at a time (they share the CPU with the
// server's own work).
//
// Retention: every read here is a short read (one iterator, a point-in-time
// view of the log) that checks the retained log first: a seq or cursor
// older than it answers 410 naming --retain-events (eventlog.TruncatedError
// with the server's hint), so no floor is registered (retention.go). After
// a truncation the replay folds what the log retains (replayOptions.retained).

// Bounds of the console's replay.
const (
	replayEvery      = 2048     // events between cached states
	replayFine       = 4        // cached states kept every replayEvery events before a request's seq
	replayCoarse     = 8        // at most this many coarse states left by one long fold
	replayMaxEntries = 256      // cached states at most
	replayMaxBytes   = 32 << 20 // bytes of cached states at most (their weight: queue.Model.Weight)
	// replayMaxFoldIntervals*replayEvery events at most folded by one
	// request: beyond, it answers 503 "being computed, retry" and the
	// retry goes on from the states it left.
	replayMaxFoldIntervals = 16
	replayNearFolds        = 2                      // short folds (at most replayEvery events) at once
	replayWait             = 500 * time.Millisecond // longest wait for a fold slot before 503 "busy"
	// outputs of an execution in /at, per execution and in all
	atOutputsPerExecution = 256 << 10
	atOutputsTotal        = 1 << 20
	atOutputsExecutions   = 20 // executions whose outputs /at carries (the newest)
	// around: the events before and after the seq /at shows
	atAround = 10
	// timeline page bytes (raw payloads read) at most
	timelinePageBytes = 4 << 20
)

// consoleReplay is the console's past: the server's own replay of the log.
func (c *core) consoleReplay() console.Replayer {
	return newConsoleReplayer(c.log, c.edgeAccess(), replayCacheLimits{entries: replayMaxEntries, bytes: replayMaxBytes}, replayEvery)
}

// consoleReplayer implements console.Replayer over the log, the present
// kernels read model (who may read what: the same rule as /events) and a
// cache of replayed states.
type consoleReplayer struct {
	log *eventlog.Log
	// src is what folds read (the log; a test wraps it).
	src    replaySource
	access edgeAccess
	every  uint64
	cache  *replayCache
	// folding admits one far fold at a time (more than every events past a
	// cached state), near admits replayNearFolds short ones beside it.
	folding, near chan struct{}
	// maxFold bounds the events one request folds; wait how long it waits
	// for its slot.
	maxFold uint64
	wait    time.Duration
}

func newConsoleReplayer(l *eventlog.Log, a edgeAccess, limits replayCacheLimits, every uint64) *consoleReplayer {
	return &consoleReplayer{log: l, src: l, access: a, every: every, cache: newReplayCache(limits),
		folding: make(chan struct{}, 1), near: make(chan struct{}, replayNearFolds),
		maxFold: replayMaxFoldIntervals * every, wait: replayWait}
}

// caller is the request's principal, with the read scope, its reads of
// the present kernels model caught up with the log (a kernel started a
// moment ago is not hidden for a lag).
func (r *consoleReplayer) caller(ctx context.Context) (auth.Principal, error) {
	p, err := consoleCaller(ctx)
	if err != nil {
		return p, err
	}
	if !p.Scopes.Has(auth.ScopeRead) {
		return p, console.Errorf(http.StatusForbidden, "principal %q lacks the read scope the console needs: ask an admin for it", p.Name)
	}
	if err := r.access.caughtUp(ctx, r.log.Last()); err != nil {
		return p, fmt.Errorf("read the kernels model: %w", err)
	}
	return p, nil
}

// kernel resolves a kernel id the principal may read (either form of the
// id), or the 404 of the Now view — the same words for one it may not
// read as for one nobody knows.
func (r *consoleReplayer) kernel(p auth.Principal, asked string) (string, error) {
	id := events.CanonicalID(asked)
	if _, ok := r.access.kernels.Get(id); !ok || !r.access.canRead(p, id) {
		return "", consoleNoKernel(asked)
	}
	return id, nil
}

// Timeline implements console.Replayer: a page of the kernel's events from
// the log's per-kernel index.
func (r *consoleReplayer) Timeline(ctx context.Context, q console.TimelineQuery) (console.Timeline, error) {
	p, err := r.caller(ctx)
	if err != nil {
		return console.Timeline{}, err
	}
	id, err := r.kernel(p, q.Kernel)
	if err != nil {
		return console.Timeline{}, err
	}
	if q.After >= r.log.Last() {
		// NB: past the last event: an empty page (the index's after+1
		// would wrap for MaxUint64 and read from the start).
		return console.Timeline{First: r.log.First(), Last: r.log.Last(), Events: []console.TimelineEvent{}}, nil
	}
	if q.After > 0 {
		if err := r.log.CheckAfter(q.After); err != nil {
			return console.Timeline{}, fmt.Errorf("timeline of kernel %s after %d: %w", id, q.After, err)
		}
	}
	tl := console.Timeline{First: r.log.First(), Last: r.log.Last(), Events: []console.TimelineEvent{}}
	_ = r.log.ScanKernel(ctx, id, 0, func(e events.Event) error { tl.KernelFirst = e.Seq; return eventlog.ErrStop })
	bytes := 0
	err = r.log.ScanKernel(ctx, id, q.After, func(e events.Event) error {
		if len(tl.Events) >= q.Limit || bytes >= timelinePageBytes {
			tl.More = true
			return eventlog.ErrStop
		}
		bytes += len(e.Raw)
		if err := e.DecodePayload(); err != nil {
			return err
		}
		tl.Events = append(tl.Events, timelineEvent(e))
		return nil
	})
	if err != nil {
		return console.Timeline{}, fmt.Errorf("timeline of kernel %s: %w", id, err)
	}
	return tl, nil
}

// At implements console.Replayer.
func (r *consoleReplayer) At(ctx context.Context, q console.AtQuery) (console.AtState, error) {
	p, err := r.caller(ctx)
	if err != nil {
		return console.AtState{}, err
	}
	kernelID := ""
	if q.Kernel != "" {
		if kernelID, err = r.kernel(p, q.Kernel); err != nil {
			return console.AtState{}, err
		}
	}
	first, last := r.log.First(), r.log.Last()
	switch {
	case q.Seq == 0:
		return console.AtState{}, console.Errorf(http.StatusBadRequest, "seq 0: event sequences start at 1 (the log holds %d..%d)", first, last)
	case q.Seq > last:
		return console.AtState{}, console.Errorf(http.StatusBadRequest, "seq %d is beyond the log's last event %d: pick one from %d to %d", q.Seq, last, first, last)
	}
	if err := r.log.Truncated(q.Seq); err != nil {
		return console.AtState{}, fmt.Errorf("the state at %d: %w", q.Seq, err)
	}
	if q.Limit <= 0 {
		q.Limit = console.DefaultAtExecutions
	}
	m, folded, err := r.models(ctx, q.Seq)
	if err != nil {
		return console.AtState{}, fmt.Errorf("replay up to %d: %w", q.Seq, err)
	}
	at, err := r.log.Get(q.Seq)
	if err != nil {
		return console.AtState{}, fmt.Errorf("the state at %d: %w", q.Seq, err)
	}
	st := console.AtState{Seq: q.Seq, Time: at.Time, First: first, Last: last, Folded: folded,
		Kernels: []console.PastKernel{}, Executions: []console.Execution{},
		OutputsOf: map[string][]queue.Output{}, OutputsMore: map[string]bool{}}
	readable := func(k string) bool { return kernelID == k || (kernelID == "" && r.access.canRead(p, k)) }
	for _, k := range m.Kernels.List() {
		if readable(k.ID) {
			st.Kernels = append(st.Kernels, pastKernel(k, m.Queue))
		}
	}
	xs := m.Queue.List(kernelID, "")
	slices.Reverse(xs) // newest first
	for _, x := range xs {
		if !readable(x.KernelID) {
			continue
		}
		if len(st.Executions) == q.Limit {
			st.MoreExecutions = true
			break
		}
		st.Executions = append(st.Executions, console.ExecutionAt(x, at.Time))
	}
	budget := atOutputsTotal
	for i, x := range st.Executions {
		if i == atOutputsExecutions || budget <= 0 {
			st.OutputsMore[x.ID] = true
			continue
		}
		page, used, err := r.outputs(ctx, x.ID, q.Seq, 0, min(budget, atOutputsPerExecution))
		if err != nil {
			return console.AtState{}, err
		}
		budget -= used
		st.OutputsOf[x.ID] = page.Outputs
		if page.More {
			st.OutputsMore[x.ID] = true
		}
	}
	if st.Around, err = r.around(ctx, p, kernelID, q.Seq); err != nil {
		return console.AtState{}, err
	}
	return st, nil
}

// OutputsAt implements console.Replayer.
func (r *consoleReplayer) OutputsAt(ctx context.Context, q console.OutputsQuery) (console.OutputsPage, error) {
	p, err := r.caller(ctx)
	if err != nil {
		return console.OutputsPage{}, err
	}
	if q.Seq > r.log.Last() || q.Seq == 0 {
		return console.OutputsPage{}, console.Errorf(http.StatusBadRequest, "seq %d: pick one from %d to %d", q.Seq, r.log.First(), r.log.Last())
	}
	if err := r.log.Truncated(q.Seq); err != nil {
		return console.OutputsPage{}, fmt.Errorf("outputs as of %d: %w", q.Seq, err)
	}
	// NB: the execution's kernel from its first event: an execution of a
	// kernel the principal may not read is unknown, in the same words.
	id := events.CanonicalID(q.Execution)
	unknown := consoleNoExecution(q.Execution)
	var kernel string
	err = r.log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		if x, ok := e.Payload.(events.ExecutionQueued); ok {
			kernel = x.KernelID
		} else {
			kernel = e.Kernel
		}
		return eventlog.ErrStop
	})
	if err != nil {
		return console.OutputsPage{}, err
	}
	if kernel == "" || !r.access.canRead(p, kernel) {
		return console.OutputsPage{}, unknown
	}
	page, _, err := r.outputs(ctx, id, q.Seq, q.After, atOutputsPerExecution)
	return page, err
}

// outputs reads an execution's outputs with after < seq <= upTo from its
// stream, at most budget bytes of content (at least one output), and
// returns them with the bytes used.
func (r *consoleReplayer) outputs(ctx context.Context, id string, upTo, after uint64, budget int) (console.OutputsPage, int, error) {
	page := console.OutputsPage{Outputs: []queue.Output{}, Cursor: after}
	used := 0
	err := r.log.ReadStream(ctx, events.ExecutionStream(id), after, func(e events.Event) error {
		if e.Seq > upTo {
			return eventlog.ErrStop
		}
		io, ok := e.Payload.(events.IOPubMessageReceived)
		if !ok || !isOutput(io.MsgType) {
			page.Cursor = e.Seq
			return nil
		}
		if len(page.Outputs) > 0 && used+len(io.Content) > budget {
			page.More = true
			return eventlog.ErrStop
		}
		used += len(io.Content)
		page.Outputs = append(page.Outputs, queue.Output{Seq: e.Seq, MsgType: io.MsgType, Content: slices.Clone(io.Content)})
		page.Cursor = e.Seq
		return nil
	})
	if err != nil {
		return page, used, fmt.Errorf("outputs of execution %s up to %d: %w", id, upTo, err)
	}
	return page, used, nil
}

// isOutput: the IOPub messages the page renders (outputs.js's OutputArea).
func isOutput(msgType string) bool {
	switch msgType {
	case "stream", "execute_result", "display_data", "update_display_data", "error", "clear_output":
		return true
	}
	return false
}

// around is the events just before and after seq: of the kernel (from its
// index), or of every kernel the principal may read.
func (r *consoleReplayer) around(ctx context.Context, p auth.Principal, kernel string, seq uint64) ([]console.TimelineEvent, error) {
	out := []console.TimelineEvent{}
	if kernel == "" {
		from := uint64(1)
		if seq > atAround {
			from = seq - atAround
		}
		from = max(from, r.log.First())
		err := r.log.Read(ctx, from, seq+atAround, func(e events.Event) error {
			if r.access.mayRead(ctx, p, &e) {
				out = append(out, timelineEvent(e))
			}
			return nil
		})
		return out, err
	}
	// Before: the kernel's last atAround events before seq, from windows of
	// the index growing backwards (the index reads forward only).
	var before []uint64
	for w := uint64(64); ; w *= 8 {
		after := uint64(0)
		if seq > w {
			after = seq - w
		}
		before = before[:0]
		err := r.log.ScanKernel(ctx, kernel, after, func(e events.Event) error {
			if e.Seq >= seq {
				return eventlog.ErrStop
			}
			if before = append(before, e.Seq); len(before) > atAround {
				before = before[1:]
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("events of kernel %s before %d: %w", kernel, seq, err)
		}
		if len(before) >= atAround || after == 0 {
			break
		}
	}
	for _, s := range before {
		e, err := r.log.Get(s)
		if err != nil {
			return nil, err
		}
		out = append(out, timelineEvent(e))
	}
	n := 0
	err := r.log.ScanKernel(ctx, kernel, seq-1, func(e events.Event) error {
		if n++; n > atAround+1 {
			return eventlog.ErrStop
		}
		if err := e.DecodePayload(); err != nil {
			return err
		}
		out = append(out, timelineEvent(e))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events of kernel %s after %d: %w", kernel, seq, err)
	}
	return out, nil
}

// models is the read models as of seq: the nearest cached state at or
// before it, then the server's own replay of the events after it. It
// returns how many events it folded past that state.
//
// Retention may truncate the log between reading its First and the fold
// (the fold then meets a gap): models then drops the states below the new
// First and tries once more, re-reading what is retained; when seq itself
// is gone the answer is the TruncatedError (410).
func (r *consoleReplayer) models(ctx context.Context, seq uint64) (*readModels, uint64, error) {
	m, folded, err := r.modelsOnce(ctx, seq)
	if err != nil && (errors.Is(err, projections.ErrGap) || errors.Is(err, eventlog.ErrTruncated)) {
		if gone := r.log.Truncated(seq); gone != nil {
			return nil, 0, gone
		}
		return r.modelsOnce(ctx, seq)
	}
	return m, folded, err
}

// modelsOnce is one try of models. A fold of at most every events past a
// cached state (a request near an earlier one) takes a near slot; a longer
// one takes the one far slot, waiting for it at most r.wait (else 503
// "busy, retry"), and folds at most r.maxFold events: beyond, it leaves
// its states in the cache and answers 503 "being computed, retry", so the
// retry starts where it stopped. No request holds a slot longer than a
// bounded fold, and near requests never queue behind far ones.
func (r *consoleReplayer) modelsOnce(ctx context.Context, seq uint64) (*readModels, uint64, error) {
	first := r.src.First()
	retained := first > 1
	start := func() (uint64, *readModels) {
		if first > 1 {
			// NB: a state before the retained log cannot be folded on: the
			// events after it are gone.
			r.cache.dropBelow(first - 1)
		}
		if base := r.cache.floor(seq); base != nil {
			return base.Seq, base
		}
		if retained {
			return first - 1, nil
		}
		return 0, nil
	}
	from, base := start()
	slot := r.near
	if seq-from > r.every {
		slot = r.folding
	}
	if err := r.acquire(ctx, slot, seq); err != nil {
		return nil, 0, err
	}
	defer func() { <-slot }()
	if slot == r.folding {
		from, base = start() // NB: another request may have left a nearer state meanwhile
	}
	var cur *readModels // NB: a copy: cached states are never changed
	if base != nil {
		cur = base.clone()
	}
	until := seq
	if seq-from > r.maxFold {
		until = max((from+r.maxFold)/r.every*r.every, from+1)
	}
	for _, pt := range replayPoints(from, until, r.every) {
		var err error
		if cur, err = replayModelsFrom(ctx, r.src, pt, replayOptions{from: cur, retained: retained}); err != nil {
			return nil, 0, err
		}
		if pt == seq && pt%r.every != 0 {
			break // NB: the request's own seq: not a cache point
		}
		if err := r.cache.put(cur.clone()); err != nil {
			return nil, 0, err
		}
	}
	if until < seq {
		return nil, 0, &console.RetryError{After: time.Second, Msg: fmt.Sprintf(
			"the past at seq %d is being computed (replayed up to %d, %d events to go): retry in a moment", seq, until, seq-until)}
	}
	return cur, seq - from, nil
}

// acquire takes slot, waiting at most r.wait or until ctx ends: a busy
// replay answers "retry" at once rather than queueing requests behind it.
func (r *consoleReplayer) acquire(ctx context.Context, slot chan struct{}, seq uint64) error {
	select {
	case slot <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(r.wait)
	defer wait.Stop()
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		return &console.RetryError{After: time.Second, Msg: fmt.Sprintf(
			"the console's replay is busy with other requests for the past; the state at seq %d was not computed: retry in a moment", seq)}
	}
}

// replayPoints is where a fold from `from` to seq stops: the coarse states
// it leaves behind (at most replayCoarse, every step events, aligned to
// every), the states every `every` events over the last replayFine
// intervals before seq, and seq itself (last).
func replayPoints(from, seq, every uint64) []uint64 {
	var pts []uint64
	fine := uint64(0)
	if seq > replayFine*every {
		fine = seq - replayFine*every
	}
	if fine > from {
		step := max(2*every, (fine-from)/replayCoarse/every*every)
		for pt := (from/step + 1) * step; pt < fine; pt += step {
			pts = append(pts, pt)
		}
	}
	for pt := (max(from, fine)/every + 1) * every; pt <= seq; pt += every {
		pts = append(pts, pt)
	}
	if len(pts) == 0 || pts[len(pts)-1] != seq {
		pts = append(pts, seq)
	}
	if from == seq {
		return nil
	}
	return pts
}

// replayCache holds replayed states (the read models as of a seq, never
// changed once in: a fold starts from a clone), bounded in entries and in
// bytes — a state weighs its models' snapshot size (Projection.Snapshot),
// the form the server stores them in — the least recently used dropped
// first. Safe for concurrent use.
type replayCache struct {
	limits replayCacheLimits

	mu      sync.Mutex
	bytes   int
	entries map[uint64]*list.Element // of *cachedState
	lru     *list.List               // most recently used first
}

type replayCacheLimits struct{ entries, bytes int }

type cachedState struct {
	models *readModels
	size   int
}

func newReplayCache(l replayCacheLimits) *replayCache {
	return &replayCache{limits: l, entries: map[uint64]*list.Element{}, lru: list.New()}
}

// floor returns the cached state with the highest seq <= seq, or nil.
func (c *replayCache) floor(seq uint64) *readModels {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *list.Element
	for s, el := range c.entries {
		if s <= seq && (best == nil || s > best.Value.(*cachedState).models.Seq) {
			best = el
		}
	}
	if best == nil {
		return nil
	}
	c.lru.MoveToFront(best)
	return best.Value.(*cachedState).models
}

// put adds a state (NB: nobody changes it after), dropping the least
// recently used beyond the limits; a state larger than the byte limit
// alone is not kept.
func (c *replayCache) put(m *readModels) error {
	size, err := modelsSize(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.limits.bytes {
		return nil
	}
	if el, ok := c.entries[m.Seq]; ok {
		c.remove(el)
	}
	c.entries[m.Seq] = c.lru.PushFront(&cachedState{models: m, size: size})
	c.bytes += size
	for len(c.entries) > c.limits.entries || c.bytes > c.limits.bytes {
		c.remove(c.lru.Back())
	}
	return nil
}

// kernelWeight is what one kernel of the kernels model weighs, roughly
// (its ids, spec, label, sessions): kernels are few beside executions.
const kernelWeight = 2 << 10

// modelsSize is what a state weighs, without encoding it (a JSON snapshot
// of 10,000 executions per cached state cost more than the fold).
func modelsSize(m *readModels) (int, error) {
	return m.Queue.Weight() + m.Kernels.Len()*kernelWeight, nil
}

func (c *replayCache) remove(el *list.Element) {
	cs := c.lru.Remove(el).(*cachedState)
	delete(c.entries, cs.models.Seq)
	c.bytes -= cs.size
}

// dropBelow drops the states with seq < seq.
func (c *replayCache) dropBelow(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, el := range c.entries {
		if s < seq {
			c.remove(el)
		}
	}
}

// stats is how many states the cache holds and their bytes.
func (c *replayCache) stats() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// pastKernel is a kernel as the replayed models show it (the Now view's
// shape, consoleSource.kernel, from the models as they were).
func pastKernel(k kernels.Kernel, q *queue.Model) console.PastKernel {
	uuid, _ := events.UUIDForm(k.ID)
	last := k.LastActivity
	if last.IsZero() {
		last = k.StartedAt
	}
	owner := k.Owner
	if owner == "" {
		owner = auth.AdminName
	}
	pk := console.PastKernel{Kernel: console.Kernel{ID: k.ID, UUID: uuid, State: string(k.State), ExecutionState: k.ExecutionState,
		Reason: k.Reason, Kernelspec: k.Spec, Label: k.Label, Notebook: k.Notebook, Owner: owner, QueueDepth: q.Depth(k.ID),
		LastActivity: last.UTC(), StartedAt: k.StartedAt.UTC()}, Busy: k.Busy, Restarts: k.Restarts}
	if x, ok := q.Active(k.ID); ok {
		pk.Running = x.ID
	}
	return pk
}

// timelineEvent is e (payload decoded) as the timeline shows it.
func timelineEvent(e events.Event) console.TimelineEvent {
	te := console.TimelineEvent{Seq: e.Seq, Time: e.Time, Type: e.Type, Stream: e.Stream, Principal: e.Principal}
	if events.StreamKind(e.Stream) == "execution" {
		te.ExecutionID = events.StreamID(e.Stream)
	}
	te.Summary = summarize(e, &te)
	return te
}

// summarize is one human line for an event.
func summarize(e events.Event, te *console.TimelineEvent) string {
	by := e.Principal
	if by == "" {
		by = "the server"
	}
	switch p := e.Payload.(type) {
	case events.ExecutionQueued:
		return fmt.Sprintf("%s queued by %s", clipLine(p.Code, 60), by)
	case events.ExecutionStarted:
		if p.Behind != "" {
			return "sent to the kernel behind " + p.Behind
		}
		return "started"
	case events.ExecutionInputRequested:
		return "waits for input: " + clipLine(p.Prompt, 60)
	case events.ExecutionInputSent:
		return "input sent"
	case events.ExecutionFinished:
		s := "finished " + p.Status
		if p.ErrorName != "" {
			s += ": " + p.ErrorName
			if p.ErrorValue != "" {
				s += ": " + clipLine(p.ErrorValue, 60)
			}
		}
		return s
	case events.ExecutionInterrupted:
		return "interrupted (KeyboardInterrupt)"
	case events.ExecutionCancelled:
		return "cancelled: " + clipLine(p.Reason, 80)
	case events.ExecutionLost:
		return "lost: " + clipLine(p.Reason, 80)
	case events.ExecutionOutputLost:
		if p.Messages > 0 {
			return fmt.Sprintf("%d output messages lost", p.Messages)
		}
		return "output messages lost"
	case events.IOPubMessageReceived:
		if p.ExecutionID != "" {
			te.ExecutionID = p.ExecutionID
		}
		return summarizeIOPub(p)
	case events.IOPubGapRecorded:
		return fmt.Sprintf("%d IOPub messages dropped: %s", p.Dropped, clipLine(p.Reason, 60))
	case events.KernelStarted:
		return fmt.Sprintf("kernel started (%s) by %s", p.Spec, by)
	case events.KernelStartFailed:
		return "kernel failed to start: " + clipLine(p.Reason, 80)
	case events.KernelInterrupted:
		return fmt.Sprintf("interrupted (%s) by %s", p.Mode, by)
	case events.KernelRestarted:
		return fmt.Sprintf("kernel restarted by %s: its variables are gone", by)
	case events.KernelShutDown:
		return "kernel shut down by " + by
	case events.KernelDied:
		return "kernel died: " + clipLine(p.Reason, 80)
	case events.KernelReattached:
		return "kernel re-attached after a server restart"
	case events.KernelLost:
		return "kernel lost: " + clipLine(p.Reason, 80)
	case events.KernelShared:
		return fmt.Sprintf("shared with %s for %s by %s", p.Principal, p.Access, by)
	case events.KernelRanUnrecorded:
		return fmt.Sprintf("%d executions ran unrecorded", p.Count)
	case events.FrontendAttached:
		return "frontend attached " + clipLine(p.Client, 40)
	case events.KernelSessionOpened:
		return "session opened on " + clipLine(p.Path, 60)
	case events.KernelSessionClosed:
		return "session closed"
	}
	return e.Type
}

// summarizeIOPub is one line for an IOPub message: "stream stdout 2
// lines", "status busy", "error NameError: ...".
func summarizeIOPub(p events.IOPubMessageReceived) string {
	var c struct {
		Name           string             `json:"name"`
		Text           string             `json:"text"`
		ExecutionState string             `json:"execution_state"`
		Ename          string             `json:"ename"`
		Evalue         string             `json:"evalue"`
		Data           map[string]skipped `json:"data"` // NB: only the keys: values are neither decoded nor copied
	}
	_ = json.Unmarshal(p.Content, &c)
	switch p.MsgType {
	case "stream":
		n := strings.Count(c.Text, "\n")
		if c.Text != "" && !strings.HasSuffix(c.Text, "\n") {
			n++
		}
		unit := "lines"
		if n == 1 {
			unit = "line"
		}
		return fmt.Sprintf("stream %s %d %s", c.Name, n, unit)
	case "status":
		return "status " + c.ExecutionState
	case "error":
		return "error " + c.Ename + ": " + clipLine(c.Evalue, 60)
	case "execute_input":
		return "execute_input"
	case "execute_result", "display_data", "update_display_data":
		mimes := make([]string, 0, len(c.Data))
		for k := range c.Data {
			mimes = append(mimes, k)
		}
		sort.Strings(mimes)
		return p.MsgType + " " + strings.Join(mimes, ", ")
	}
	return p.MsgType
}

// skipped is a JSON value read past: neither decoded nor copied (a
// json.RawMessage would copy a 10 MB image to list its MIME type).
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// clipLine is s's first line, at most n runes, with an ellipsis when cut.
func clipLine(s string, n int) string {
	line, rest, more := strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(line); len(r) > n {
		return string(r[:n]) + "…"
	}
	if more && rest != "" {
		return line + " …"
	}
	return line
}
