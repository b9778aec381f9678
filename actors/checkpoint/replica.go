package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Replica keeps a copy of every checkpoint committed on this node off it
// (cmd/mcp-jupyter, in cluster mode: the cluster's object store). nil: the
// files stay on this node only, and the actor never calls out.
//
//   - Put copies name's committed file. The actor calls it after the
//     save's CheckpointSaved is durable and before the save is answered,
//     with the name still busy: two saves of one name reach the replica in
//     their order, and a load or delete of it waits. A failed put fails
//     nothing: the save is answered with Meta.NotReplicated saying why.
//   - Delete removes name's copy (a missing one is not an error). The actor
//     calls it before removing the local file: a delete that cannot reach
//     the replica deletes nothing, so no other node fetches back a
//     checkpoint its owner deleted.
type Replica interface {
	Put(ctx context.Context, name string, meta Meta) error
	Delete(ctx context.Context, name string) error
}

// Messages and reports of the replica and of adoption.
type (
	adoptMsg struct {
		name  string
		fetch func(ctx context.Context, dst string) error
	}
	replicated struct {
		save saveDone
		err  error
	}
	adoptDone struct {
		name   string
		meta   Meta
		err    error
		sender *actor.PID
	}
)

// Adopt takes in the checkpoint stored under name (a stored name:
// "<owner>~<name>" or "<name>") from elsewhere — another node of the
// cluster: fetch writes the file to dst. The file is verified in full, as
// a load verifies it (a refusal is a RejectError and a CheckpointRejected
// event), its signed name must be name and it must not be older than the
// newest save of name this node recorded (older: an error wrapping
// ErrRollback, not a rejection, and this node's file stays); only then does it replace this
// node's file of name, and the actor records its CheckpointSaved (By "":
// the server's) so that load, list and quota know it like a save made here.
// A file that is the newest save recorded already is committed again and
// recorded no second time.
func (c *Client) Adopt(ctx context.Context, name string, fetch func(ctx context.Context, dst string) error) (Meta, error) {
	if err := ValidStored(name); err != nil {
		return Meta{}, err
	}
	var r saveReply
	if err := c.request(ctx, adoptMsg{name: name, fetch: fetch}, &r); err != nil {
		return Meta{}, err
	}
	if r.err == nil {
		r.meta.Owner, r.meta.Name = Owned(r.meta.Name)
	}
	return r.meta, r.err
}

// replicate puts a save recorded durably in the replica, the name still
// busy, and reports back; the save is answered then (replicatedSave).
func (a *Actor) replicate(m saveDone) {
	a.sh.busy[m.req.Name] = true
	a.work(func(wctx context.Context) {
		err := a.deps.Replica.Put(wctx, m.req.Name, m.meta)
		a.root.Send(a.self, replicated{save: m, err: err})
	})
}

func (a *Actor) replicatedSave(r replicated) {
	delete(a.sh.busy, r.save.req.Name)
	meta := r.save.meta
	if r.err != nil {
		meta.NotReplicated = r.err.Error()
		a.deps.Logger.Warn("checkpoint saved on this node only", "name", r.save.req.Name, "err", r.err)
	}
	a.root.Send(r.save.sender, saveReply{meta: meta})
}

func (a *Actor) adopt(ctx actor.Context, m adoptMsg) {
	if _, err := a.begin(m.name, Load{Name: m.name, OnDisk: true}); err != nil {
		ctx.Respond(saveReply{err: err})
		return
	}
	sender, st := ctx.Sender(), a.state
	a.work(func(wctx context.Context) {
		var meta Meta
		_, _, err := a.deps.Files.Import(m.name, func(dst string) error { return m.fetch(wctx, dst) },
			func(mb []byte, size int64) error {
				if err := json.Unmarshal(mb, &meta); err != nil {
					return fmt.Errorf("decode checkpoint metadata: %w", err)
				}
				meta.FileBytes = size
				_, err := CheckFile(st, m.name, meta, size, false)
				if errors.Is(err, ErrRollback) {
					// NB: not tampering: the copy elsewhere is behind this
					// node's (its put failed, say); this node keeps its own.
					return err
				}
				if err != nil {
					return &RejectError{Err: err}
				}
				return nil
			})
		a.root.Send(a.self, adoptDone{name: m.name, meta: meta, err: fileError(m.name, err), sender: sender})
	})
}

func (a *Actor) adopted(m adoptDone) {
	delete(a.sh.busy, m.name)
	var ds []events.Draft
	var err error
	switch {
	case m.err != nil && rejected(m.err):
		a.sh.stats.SignatureFailures++
		a.deps.Logger.Warn("checkpoint from elsewhere refused", "name", m.name, "err", m.err)
		ds, err = Decide(a.state, Record{Kernel: m.meta.KernelID, Payload: events.CheckpointRejected{Name: m.name,
			KernelID: m.meta.KernelID, Reason: m.err.Error(), Signature: true}})
	case m.err != nil:
	default:
		if e, ok := a.state.Checkpoints[m.name]; !ok || e.SHA256 != m.meta.SHA256 || e.Size != m.meta.FileBytes {
			ds, err = Decide(a.state, Record{Kernel: m.meta.KernelID, Payload: savedEvent(m.meta)})
		}
	}
	if err == nil {
		err = a.append(ds)
	}
	if err != nil {
		a.root.Send(m.sender, saveReply{err: err})
		fail(err)
	}
	a.root.Send(m.sender, saveReply{meta: m.meta, err: m.err})
}
