package notebook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// Follower is what OutputWriter needs from the log (infra/eventlog
// implements it): the whole history once, then every new event.
type Follower interface {
	actors.Log
	Last() uint64
	// Scan calls fn for events from..to with payloads not decoded.
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
	// Follow calls fn for every event after seq, decoded, then waits for
	// more until ctx ends.
	Follow(ctx context.Context, after uint64, fn func(events.Event) error) error
}

// By is who OutputWriter's changes are recorded as.
const By = "mcp-jupyter"

// DefaultMaxPending bounds the cell executions OutputWriter waits for.
const DefaultMaxPending = 10000

// OutputWriter writes each cell execution's outputs into its notebook when
// the execution ends.
type OutputWriter struct {
	Log     Follower
	Manager *Manager
	Logger  *slog.Logger
	// MaxPending bounds the executions waiting to be written (default
	// DefaultMaxPending); past it the oldest is dropped with a warning (its
	// outputs stay in the log, readable with get_execution).
	MaxPending int
	// LockRetries is how often a write refused by another writer's lock is
	// tried again, LockBackoff apart (default 5, 200 ms).
	LockRetries int
	LockBackoff time.Duration
	// Node, in a cluster, is this node's name: only cell executions this
	// node queued are written (the log also holds other nodes' imported
	// executions; their notebooks are their node's to write). "" writes
	// every one.
	Node string

	pending map[string]target // execution id -> cell
	order   []string          // execution ids, oldest first
	// Dropped counts executions dropped because MaxPending was reached.
	Dropped int
}

// target is where an execution's outputs go, and who submitted it (the
// outputs written carry that principal, as the execution's own do).
type target struct{ path, cell, by string }

func (w *OutputWriter) defaults() {
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.MaxPending <= 0 {
		w.MaxPending = DefaultMaxPending
	}
	if w.LockRetries <= 0 {
		w.LockRetries = 5
	}
	if w.LockBackoff <= 0 {
		w.LockBackoff = 200 * time.Millisecond
	}
	if w.pending == nil {
		w.pending = map[string]target{}
	}
}

// Run catches up with the log (CatchUp), then follows it until ctx ends,
// writing each cell execution's outputs as it ends. It returns ctx's error
// or the log's. Run is not safe for concurrent use with itself.
func (w *OutputWriter) Run(ctx context.Context) error {
	last, err := w.CatchUp(ctx)
	if err != nil {
		return err
	}
	return w.follow(ctx, last)
}

// CatchUp reads the log to its end, noting the cell executions not yet
// written, and writes the outputs of those that ended while no writer ran.
// It returns the sequence it read up to.
func (w *OutputWriter) CatchUp(ctx context.Context) (uint64, error) {
	w.defaults()
	last := w.Log.Last()
	var ended []string
	err := w.Log.Scan(ctx, 0, last, func(e events.Event) error {
		switch e.Type {
		case events.TypeExecutionQueued, events.TypeNotebookOutputsWritten:
			if err := e.DecodePayload(); err != nil {
				return err
			}
			w.observe(e)
		case events.TypeExecutionFinished, events.TypeExecutionInterrupted, events.TypeExecutionLost, events.TypeExecutionCancelled:
			id := events.StreamID(e.Stream)
			if _, ok := w.pending[id]; ok {
				if e.Type == events.TypeExecutionLost || e.Type == events.TypeExecutionCancelled {
					w.forget(id)
				} else {
					ended = append(ended, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("notebook outputs: catch up with the log: %w", err)
	}
	for _, id := range ended {
		if _, ok := w.pending[id]; ok { // NB: not written since it ended
			w.write(ctx, id)
		}
	}
	return last, nil
}

func (w *OutputWriter) follow(ctx context.Context, last uint64) error {
	return w.Log.Follow(ctx, last, func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.ExecutionQueued, events.NotebookOutputsWritten:
			w.observe(e)
		case events.ExecutionFinished:
			if p.Status != "aborted" {
				w.write(ctx, p.ExecutionID)
			} else {
				w.forget(p.ExecutionID)
			}
		case events.ExecutionInterrupted:
			w.write(ctx, p.ExecutionID)
		case events.ExecutionLost:
			w.forget(p.ExecutionID)
		case events.ExecutionCancelled:
			w.forget(p.ExecutionID)
		}
		return nil
	})
}

func (w *OutputWriter) observe(e events.Event) {
	if w.Node != "" && e.Node != w.Node {
		return
	}
	switch p := e.Payload.(type) {
	case events.ExecutionQueued:
		if p.Notebook == "" || p.CellID == "" {
			return
		}
		if _, ok := w.pending[p.ExecutionID]; ok {
			return
		}
		if len(w.order) >= w.MaxPending {
			old := w.order[0]
			w.forget(old)
			w.Dropped++
			w.Logger.Warn("notebook outputs: too many cell executions waiting; the oldest will not be written into its notebook",
				"execution_id", old, "max_pending", w.MaxPending)
		}
		w.pending[p.ExecutionID] = target{path: p.Notebook, cell: p.CellID, by: e.Principal}
		w.order = append(w.order, p.ExecutionID)
	case events.NotebookOutputsWritten:
		w.forget(p.ExecutionID)
	}
}

func (w *OutputWriter) forget(id string) {
	if _, ok := w.pending[id]; !ok {
		return
	}
	delete(w.pending, id)
	for i, x := range w.order {
		if x == id {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
}

// Pending is how many cell executions wait to be written.
func (w *OutputWriter) Pending() int { return len(w.order) }

// write reads the execution's outputs from the log and writes them into its
// cell. A failure is logged: the outputs stay in the log either way.
func (w *OutputWriter) write(ctx context.Context, id string) {
	t, ok := w.pending[id]
	if !ok {
		return
	}
	w.forget(id)
	var msgs []nbfile.Message
	var count *int
	err := w.Log.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.IOPubMessageReceived:
			msgs = append(msgs, nbfile.Message{MsgType: p.MsgType, Content: append([]byte(nil), p.Content...)})
		case events.ExecutionFinished:
			if p.ExecutionCount > 0 {
				n := p.ExecutionCount
				count = &n
			}
		case events.ExecutionInterrupted:
			if p.ExecutionCount > 0 {
				n := p.ExecutionCount
				count = &n
			}
		}
		return nil
	})
	if err != nil {
		w.Logger.Error("notebook outputs: read execution", "execution_id", id, "err", err)
		return
	}
	cmd := Command{Path: t.path, By: By, Principal: t.by, Op: WriteOutputs{CellID: t.cell, ExecutionID: id, Outputs: nbfile.Outputs(msgs), ExecutionCount: count}}
	for attempt := 0; ; attempt++ {
		_, err = w.Manager.Do(ctx, cmd)
		if !errors.Is(err, nbfile.ErrLocked) || attempt >= w.LockRetries {
			break
		}
		select { // NB: another process holds the file's lock: wait for it, bounded
		case <-time.After(w.LockBackoff):
		case <-ctx.Done():
			return
		}
	}
	if err != nil {
		w.Logger.Warn("notebook outputs: not written into the notebook (they stay in the log)", "execution_id", id,
			"path", t.path, "cell_id", t.cell, "err", err)
	}
}
