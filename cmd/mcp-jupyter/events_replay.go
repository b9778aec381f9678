package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// queueProjection presents the server's queue read model to a
// projections.Runner (the server folds it with the same Apply).
type queueProjection struct{ *queue.Model }

func (queueProjection) Wants(typ string) projections.Interest {
	if queue.IsExecutionEvent(typ) {
		return projections.Payload
	}
	return projections.Skip
}

// replaySource is what a replay reads: the events CLI's source and the
// server's own *eventlog.Log both are one.
type replaySource interface {
	First() uint64
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
}

// boundedLog is a source seen as the projections runner's Log, ending at
// until: the runner replays up to it and stops (FollowRaw returns at once).
// Snapshots are never stored: a replay leaves the log as it found it. With
// from set, the runner "loads" every projection as of from (preloaded: the
// models are from's already) and folds only the events after it. visit,
// when set, sees every event before the projections.
//
// retained folds a truncated log from what it retains (see
// replayOptions.retained) rather than refusing with ErrGap.
type boundedLog struct {
	src      replaySource
	until    uint64
	visit    func(e *events.Event) error
	from     uint64 // 0: from the log's start
	retained bool
}

func (b *boundedLog) Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error {
	if to == 0 || to > b.until {
		to = b.until
	}
	if b.retained && from <= 1 {
		from = 0 // NB: every retained event, the kept streams' below First included
	}
	if b.visit == nil {
		return b.src.Scan(ctx, from, to, fn)
	}
	return b.src.Scan(ctx, from, to, func(e events.Event) error {
		if err := b.visit(&e); err != nil {
			return err
		}
		return fn(e)
	})
}
func (b *boundedLog) FollowRaw(context.Context, uint64, func(events.Event) error) error { return nil }
func (b *boundedLog) Last() uint64                                                      { return b.until }
func (b *boundedLog) First() uint64 {
	if b.retained {
		return 1 // NB: Scan reads from what is retained: no gap to refuse
	}
	return b.src.First()
}
func (b *boundedLog) SaveSnapshot(string, uint64, []byte) error { return nil }
func (b *boundedLog) LoadSnapshot(string) (uint64, []byte, bool, error) {
	return b.from, nil, b.from > 0, nil
}
func (b *boundedLog) TruncateBefore(uint64, func(events.Event) bool) (int, error) { return 0, nil }

// readModels is every read model the server keeps, as of one event.
type readModels struct {
	Seq     uint64
	Time    time.Time
	Queue   *queue.Model
	Kernels *kernels.Model
}

// clone is an independent copy of the models (see queue.Model.Clone).
func (m *readModels) clone() *readModels {
	return &readModels{Seq: m.Seq, Time: m.Time, Queue: m.Queue.Clone(), Kernels: m.Kernels.Clone()}
}

// preloaded is a projection whose model is already as of the runner's
// start (boundedLog.from): the runner's Restore, given no data, keeps it.
type preloaded struct{ projections.Projection }

func (p preloaded) Restore(data []byte) error {
	if data == nil {
		return nil
	}
	return p.Projection.Restore(data)
}

// replayModels rebuilds every read model from the start of the log up to
// until, with the server's own projection code driven by the server's own
// runner. visit (optional) sees each event first.
func replayModels(ctx context.Context, src replaySource, until uint64, visit func(e *events.Event) error) (*readModels, error) {
	return replayModelsFrom(ctx, src, until, replayOptions{visit: visit})
}

// replayOptions: where a replay starts and what it sees.
type replayOptions struct {
	// from: fold onto these models (changing them) the events after
	// from.Seq, which must be >= the log's First-1, rather than replaying
	// from the log's start.
	from *readModels
	// retained: when the log was truncated (retention), fold what it
	// retains — the kept streams' events below First, then everything from
	// First — instead of failing with ErrGap: kernels and executions whose
	// whole record retention deleted are then absent.
	retained bool
	visit    func(e *events.Event) error
}

// replayModelsFrom is replayModels from a state (the console's cached
// ones, console_then.go): the same runner and projections, folding only the
// events in (o.from.Seq, until].
func replayModelsFrom(ctx context.Context, src replaySource, until uint64, o replayOptions) (*readModels, error) {
	m := o.from
	if m == nil {
		m = &readModels{Queue: queue.NewModel(), Kernels: kernels.New()}
	}
	bl := &boundedLog{src: src, until: until, visit: o.visit, from: m.Seq, retained: o.retained}
	m.Seq = until
	r := projections.NewRunner(bl, projections.Options{Rebuild: bl.from == 0}, preloaded{queueProjection{m.Queue}}, preloaded{m.Kernels})
	// NB: no Close: it would encode snapshots only to throw them away. The
	// loop ends by itself at until (FollowRaw returns); cancel frees it.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.Start(rctx); err != nil {
		return nil, err
	}
	if err := r.Wait(); err != nil {
		return nil, err
	}
	return m, nil
}

func runEventsReplay(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events replay", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	until := fs.String("until", "", "the moment to rebuild: a sequence, or a time (the last event at or before it)")
	asJSON := fs.Bool("json", false, "print the read models as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("events replay: unexpected argument %q (give --until)", pos[0])
	}
	src, err := openSource(ctx, ef)
	if err != nil {
		return err
	}
	defer src.Close()
	seq := src.Last()
	if *until != "" {
		if seq, err = resolvePoint(src, "--until", *until, true); err != nil {
			return fmt.Errorf("events replay: %w", err)
		}
	}
	if seq == 0 {
		return fmt.Errorf("events replay: the log is empty")
	}
	bar := newProgress(sio.stderr, "replay", seq-src.First()+1)
	var at time.Time
	m, err := replayModels(ctx, src, seq, func(e *events.Event) error {
		bar.add(1)
		at = e.Time
		return nil
	})
	bar.done()
	if err != nil {
		return fmt.Errorf("events replay up to %d: %w", seq, err)
	}
	m.Time = at
	out := newBufferedOut(sio.stdout)
	defer out.Flush()
	if *asJSON {
		return printModelsJSON(out, m)
	}
	printModels(out, m)
	return nil
}

// The read models this version does not have yet: replay says so rather
// than printing an empty section that would look like "none".
const (
	noLeases  = "leases: not tracked yet (this version keeps no lease read model; LeaseGranted events are in the log but nothing folds them)"
	noBacklog = "backlog: not tracked yet (this version keeps no IOPub backlog read model)"
)

func printModels(w io.Writer, m *readModels) {
	fmt.Fprintf(w, "as of event %d (%s)\n\n", m.Seq, m.Time.Format(events.TimeFormat))
	ks := m.Kernels.List()
	fmt.Fprintf(w, "kernels (%d):\n", len(ks))
	for _, k := range ks {
		busy := "idle"
		if k.Busy {
			busy = "busy"
		}
		fmt.Fprintf(w, "  %s  %-9s %-4s pid %-7d spec %s", k.ID, k.State, busy, k.Pid, k.Spec)
		if k.Label != "" {
			fmt.Fprintf(w, " label %q", k.Label)
		}
		if k.Restarts > 0 {
			fmt.Fprintf(w, " restarts %d", k.Restarts)
		}
		if k.Reason != "" {
			fmt.Fprintf(w, " (%s)", k.Reason)
		}
		fmt.Fprintf(w, " last event %d\n", k.Seq)
	}
	ids := map[string]bool{}
	for _, k := range ks {
		ids[k.ID] = true
	}
	for _, x := range m.Queue.List("", queue.StatusRunning) {
		ids[x.KernelID] = true
	}
	for _, x := range m.Queue.List("", queue.StatusQueued) {
		ids[x.KernelID] = true
	}
	for _, x := range m.Queue.List("", queue.StatusInputRequired) {
		ids[x.KernelID] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	fmt.Fprintf(w, "\nqueue:\n")
	idle := 0
	for _, id := range sorted {
		active, running := m.Queue.Active(id)
		pending := m.Queue.Pending(id)
		if !running && len(pending) == 0 {
			idle++
			continue
		}
		fmt.Fprintf(w, "  kernel %s:\n", id)
		if running {
			fmt.Fprintf(w, "    %-14s %s since %s (seq %d) code %s\n", active.Status, active.ID,
				active.StartedAt.Format(events.TimeFormat), active.LastSeq, quoteClip(active.Code, 50))
		}
		for i, x := range pending {
			fmt.Fprintf(w, "    waiting #%-5d %s queued %s (seq %d) code %s\n", i+1, x.ID,
				x.QueuedAt.Format(events.TimeFormat), x.QueuedSeq, quoteClip(x.Code, 50))
		}
	}
	if idle > 0 {
		fmt.Fprintf(w, "  (%d more kernels with nothing running or waiting)\n", idle)
	}
	fmt.Fprintf(w, "\n%s\n%s\n", noLeases, noBacklog)
}

func printModelsJSON(w io.Writer, m *readModels) error {
	type kernelQueue struct {
		Active  *queue.Execution  `json:"active,omitempty"`
		Pending []queue.Execution `json:"pending"`
	}
	v := struct {
		Seq     uint64                 `json:"seq"`
		Time    string                 `json:"time"`
		Kernels []kernels.Kernel       `json:"kernels"`
		Queue   map[string]kernelQueue `json:"queue"`
		Leases  any                    `json:"leases"`
		Backlog any                    `json:"backlog"`
		Notes   []string               `json:"notes"`
	}{Seq: m.Seq, Time: m.Time.Format(events.TimeFormat), Kernels: m.Kernels.List(), Queue: map[string]kernelQueue{},
		Notes: []string{noLeases, noBacklog}}
	for _, k := range m.Kernels.List() {
		x := queue.Execution{KernelID: k.ID}
		kq := kernelQueue{Pending: m.Queue.Pending(x.KernelID)}
		if a, ok := m.Queue.Active(x.KernelID); ok {
			kq.Active = &a
		}
		if kq.Active != nil || len(kq.Pending) > 0 {
			v.Queue[x.KernelID] = kq
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
