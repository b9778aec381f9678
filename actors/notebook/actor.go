package notebook

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// request is a Command with the absolute path the manager resolved (and,
// for a Rename, the target's).
type request struct {
	Command
	Abs, ToAbs string
}

// Result answers a Command.
type Result struct {
	Hash     string // sha256 of the file after the change
	CellID   string
	Index    int
	Notebook *nbfile.Notebook
	Events   []events.Event
	Err      error
}

// Actor is the protoactor shell of one notebook.
type Actor struct {
	rel      string
	log      actors.Log
	versions *versions
	logger   *slog.Logger
	state    State
	ready    bool
}

func props(rel string, log actors.Log, v *versions, logger *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{rel: rel, log: log, versions: v, logger: logger.With("component", "notebook", "path", rel)}
	})
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.recover()
	case request:
		if !a.ready {
			a.recover()
		}
		res := a.handle(m)
		ctx.Respond(res)
	}
}

func (a *Actor) recover() {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	s, _, err := actors.Recover(ctx, a.log, events.NotebookStream(StreamID(a.rel)), State{Path: a.rel}, 0, Apply)
	if err != nil {
		a.logger.Error("recover notebook history", "err", err)
		return // not ready: the next command tries again
	}
	a.state, a.ready = s, true
}

// handle runs one command: lock, read, decide, write beside, append, rename.
func (a *Actor) handle(m request) Result {
	if !a.ready {
		return Result{Err: fmt.Errorf("the history of %s could not be read from the event log; try again", a.rel)}
	}
	unlock, err := nbfile.Lock(m.Abs)
	if err != nil {
		return Result{Err: err}
	}
	defer unlock()
	nbfile.RemoveStaleTemps(m.Abs)
	var cur *nbfile.File
	_, creating := m.Op.(Create)
	switch {
	case guardedWhole(m.Op):
		// NB: read without parsing: a save or delete must work on a file
		// that is not (yet, or any more) a readable notebook too.
		if cur, err = nbfile.ReadBytes(m.Abs); errors.Is(err, fs.ErrNotExist) {
			cur = nil
		} else if err != nil {
			return Result{Err: err}
		}
	case creating && isNotExist(m.Abs):
		cur = nil
	case creating:
		return Result{Err: fmt.Errorf("%w: %s is already there; read_notebook it, or choose another path", ErrExists, m.Path)}
	default:
		if cur, err = nbfile.ReadFileCached(m.Abs, a.versions.get); err != nil {
			return Result{Err: err}
		}
	}
	if cur != nil && cur.Notebook != nil {
		a.versions.put(cur.Hash, cur.Notebook, int64(len(cur.Bytes)))
	}
	d, err := Decide(a.state, cur, m.Command)
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) && cur != nil && cur.Notebook != nil {
			if old, ok := a.versions.get(ce.Expected); ok {
				diff := nbfile.Compare(old, cur.Notebook)
				ce.Diff = &diff
			}
		}
		return Result{Err: err}
	}
	switch m.Op.(type) {
	case Rename:
		return a.rename(m, cur, d)
	case Remove:
		return a.remove(m, cur, d)
	}
	p, err := nbfile.Prepare(m.Abs, d.Bytes)
	if err != nil {
		return Result{Err: err}
	}
	// NB: the file must be the one Decide saw: a person's save between our
	// read and now is refused, not overwritten.
	if changed(m.Abs, cur) {
		p.Abort()
		return Result{Err: fmt.Errorf("%w: %s was saved by someone else while this change was being made; nothing was written: read_notebook again and retry", ErrChanged, m.Path)}
	}
	kept := ""
	if r, ok := d.Drafts[0].Payload.(events.NotebookReplaced); ok && r.Kept != "" {
		// NB: the version a save replaces is kept before the save is
		// recorded or in place: it stays retrievable as a checkpoint.
		if err := nbfile.WriteCheckpoint(m.Abs, r.Kept, cur.Bytes); err != nil {
			p.Abort()
			return Result{Err: fmt.Errorf("keep the version of %s this save replaces: %w (nothing was written)", m.Path, err)}
		}
		kept = r.Kept
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	evs, err := a.log.Append(ctx, d.Drafts...)
	cancel()
	if err != nil {
		p.Abort()
		a.ready = false // NB: rebuild from the log before the next command
		return Result{Err: fmt.Errorf("record the change to %s: %w (nothing was written)", m.Path, err)}
	}
	if cur == nil {
		err = p.CommitNew()
	} else {
		err = p.Commit()
	}
	for _, e := range evs {
		a.state = Apply(a.state, e)
	}
	if err != nil {
		return Result{Err: fmt.Errorf("put the new version of %s in place: %w", m.Path, err)}
	}
	if kept != "" {
		nbfile.PruneReplaced(m.Abs)
	}
	a.versions.put(d.Hash, d.Notebook, int64(len(d.Bytes)))
	return Result{Hash: d.Hash, CellID: d.CellID, Index: d.Index, Notebook: d.Notebook, Events: evs}
}

// record appends d's events and applies them.
func (a *Actor) record(m request, d Decision) ([]events.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	evs, err := a.log.Append(ctx, d.Drafts...)
	cancel()
	if err != nil {
		a.ready = false // NB: rebuild from the log before the next command
		return nil, fmt.Errorf("record the change to %s: %w", m.Path, err)
	}
	for _, e := range evs {
		a.state = Apply(a.state, e)
	}
	return evs, nil
}

// rename moves the file to m.ToAbs without ever replacing a file there: the
// target's writer lock is held too, so its actor cannot create it meanwhile.
// NB: the move is made first and recorded after, and moved back when it
// cannot be recorded: the log never says a notebook moved that did not (a
// failed rename, a full disk). A kill between the two leaves the file moved
// and unrecorded, as a rename by hand would.
func (a *Actor) rename(m request, cur *nbfile.File, d Decision) Result {
	unlockTo, err := nbfile.Lock(m.ToAbs)
	if err != nil {
		return Result{Err: err}
	}
	defer unlockTo()
	to := m.Op.(Rename).To
	if _, err := os.Lstat(m.ToAbs); err == nil {
		return Result{Err: fmt.Errorf("%w: %s is already there; choose another name, or delete it first", ErrExists, to)}
	}
	if changed(m.Abs, cur) {
		return Result{Err: fmt.Errorf("%w: %s was saved by someone else while it was being renamed; nothing was changed: retry", ErrChanged, m.Path)}
	}
	if err := nbfile.RenameNoReplace(m.Abs, m.ToAbs); err != nil {
		if errors.Is(err, nbfile.ErrTargetExists) {
			err = fmt.Errorf("%w: %s is already there", ErrExists, to)
		}
		return Result{Err: fmt.Errorf("rename %s to %s: %w (nothing was changed)", m.Path, to, err)}
	}
	evs, err := a.record(m, d)
	if err != nil {
		if berr := nbfile.RenameNoReplace(m.ToAbs, m.Abs); berr != nil {
			a.logger.Error("move a notebook back after its rename could not be recorded", "to", to, "err", berr)
			return Result{Err: fmt.Errorf("%w; and moving it back failed (%v): it is at %s, unrecorded", err, berr, to)}
		}
		return Result{Err: fmt.Errorf("%w (nothing was changed)", err)}
	}
	nbfile.RenameCheckpoints(m.Abs, m.ToAbs)
	return Result{Hash: d.Hash, Index: -1, Events: evs}
}

// remove deletes the file, and its checkpoints as Jupyter does. NB: the
// file is first moved aside (a hidden name in its directory), then the
// removal recorded, then the file deleted: a removal that cannot be made or
// recorded puts the file back, and the log never says a notebook was
// deleted that is still there.
func (a *Actor) remove(m request, cur *nbfile.File, d Decision) Result {
	if changed(m.Abs, cur) {
		return Result{Err: fmt.Errorf("%w: %s was saved by someone else while it was being deleted; nothing was deleted: retry", ErrChanged, m.Path)}
	}
	dir, base := filepath.Split(m.Abs)
	// NB: a name of its own each time: one a kill left behind never
	// blocks the next removal.
	aside := filepath.Join(dir, fmt.Sprintf(".%s.removing-%d", base, time.Now().UnixNano()))
	if err := nbfile.RenameNoReplace(m.Abs, aside); err != nil {
		return Result{Err: fmt.Errorf("delete %s: %w (nothing was deleted)", m.Path, err)}
	}
	evs, err := a.record(m, d)
	if err != nil {
		if berr := nbfile.RenameNoReplace(aside, m.Abs); berr != nil {
			a.logger.Error("put a notebook back after its removal could not be recorded", "err", berr)
			return Result{Err: fmt.Errorf("%w; and putting it back failed (%v)", err, berr)}
		}
		return Result{Err: fmt.Errorf("%w (nothing was deleted)", err)}
	}
	if err := nbfile.Remove(aside); err != nil {
		a.logger.Error("delete a removed notebook's file", "err", err)
	}
	nbfile.RemoveCheckpoints(m.Abs)
	return Result{Hash: d.Hash, Index: -1, Events: evs}
}

func isNotExist(abs string) bool {
	_, err := os.Stat(abs)
	return errors.Is(err, os.ErrNotExist)
}

func changed(abs string, cur *nbfile.File) bool {
	st, err := nbfile.StatFile(abs)
	if cur == nil {
		return err == nil // created meanwhile (CommitNew would refuse too)
	}
	return err != nil || st != cur.Stat
}
