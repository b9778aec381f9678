package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// clusterCheckpoints is the cluster's copy of the checkpoints (cluster
// mode only; the zero value on a single server, which makes no object
// store call at all). Every checkpoint committed on this node is put in
// the object store by the checkpoint actor (its Replica) before its save
// is answered; a node that lacks one fetches it, verified with the
// keyring every node derives from MCP_CHECKPOINT_SECRET, before a load.
type clusterCheckpoints struct {
	objs  *natsbus.Checkpoints
	files *checkpointfile.Store
	node  string
}

// enabled reports whether checkpoints are shared (cluster mode).
func (cc clusterCheckpoints) enabled() bool { return cc.objs != nil }

// openCheckpointReplica opens the object store in cluster mode and returns
// the checkpoint actor's Replica over it; nil on a single server.
func (c *core) openCheckpointReplica(ctx context.Context, files *checkpointfile.Store) (checkpoint.Replica, error) {
	if !c.cfg.Cluster.Enabled() {
		return nil, nil
	}
	nb := c.clusterNATS()
	if nb == nil || nb.JetStream() == nil {
		return nil, errors.New("open the cluster's checkpoints: the cluster's NATS server with JetStream is not open yet")
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	objs, err := natsbus.OpenCheckpoints(octx, nb.JetStream(), nb.Replicas())
	if err != nil {
		return nil, fmt.Errorf("open the cluster's checkpoints: %w", err)
	}
	cc := clusterCheckpoints{objs: objs, files: files, node: c.cfg.Cluster.Node}
	c.mu.Lock()
	c.clusterCkpt = cc
	c.mu.Unlock()
	return checkpointReplica(cc), nil
}

// checkpointReplica is the checkpoint actor's Replica: the committed file,
// put whole in the object store with its signed metadata in short (what
// list_checkpoints shows for a checkpoint this node has not fetched).
type checkpointReplica clusterCheckpoints

func (r checkpointReplica) Put(ctx context.Context, name string, m checkpoint.Meta) error {
	ctx, cancel := context.WithTimeout(ctx, objectTimeout(m.FileBytes))
	defer cancel()
	return r.objs.Put(ctx, name, r.files.Path(name), objectMeta(m, r.node))
}

func (r checkpointReplica) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, objectTimeout(0))
	defer cancel()
	return r.objs.Delete(ctx, name)
}

// objectTimeout bounds one object store call moving size bytes: a store
// without its quorum (this node cut off) answers nothing, and a save must
// not wait on it for the checkpoint actor's whole work timeout. It allows
// 15 s plus a second per 4 MiB.
func objectTimeout(size int64) time.Duration {
	return 15*time.Second + time.Duration(size/(4<<20))*time.Second
}

// maxSavedList bounds the variable names an object's metadata lists.
const maxSavedList = 2048

// objectMeta is the checkpoint's signed metadata in short, attached to its
// object (unverified until the file is fetched: for listings only).
func objectMeta(m checkpoint.Meta, node string) map[string]string {
	var names []string
	n := 0
	for _, v := range m.Saved {
		if n += len(v.Name) + 1; n > maxSavedList {
			names = append(names, "…")
			break
		}
		names = append(names, v.Name)
	}
	return map[string]string{"sha256": m.SHA256, "kernel_id": m.KernelID, "created": m.Created.UTC().Format(time.RFC3339Nano),
		"key_id": m.KeyID, "python": m.Python, "saved": strings.Join(names, ","), "node": node}
}

// fetchCheckpoint makes sure this node holds the cluster's copy of the
// checkpoint stored under stored ("<owner>~<name>" or "<name>"): when the
// object store's version is not the one this node recorded, it gets the
// file, has the checkpoint actor verify it with the keyring exactly as a
// local file is verified (a tampered object, or one signed with another
// secret, is refused and recorded CheckpointRejected), and record it. It
// returns nil when the store has no such checkpoint (this node's copy, if
// any, is all there is), when this node's copy is newer than the store's,
// and when the store cannot be reached but this node has a copy (logged).
// A single server: nil at once.
func (c *core) fetchCheckpoint(ctx context.Context, stored string) error {
	c.mu.RLock()
	cc, ck := c.clusterCkpt, c.ckpt
	c.mu.RUnlock()
	if !cc.enabled() {
		return nil
	}
	label := checkpoint.Display(stored)
	ictx, cancel := context.WithTimeout(ctx, objectTimeout(0))
	info, err := cc.objs.Info(ictx, stored)
	cancel()
	if errors.Is(err, natsbus.ErrNoCheckpoint) {
		return nil
	}
	local := cc.files.Exists(stored)
	if err != nil {
		if local {
			c.logger.Warn("cluster's object store unreachable: this node's copy of the checkpoint is used", "component", "checkpoint", "checkpoint", label, "err", err)
			return nil
		}
		return fmt.Errorf("checkpoint %q is not on node %s and the cluster's object store %s cannot be reached: %w; retry once the cluster is whole", label, cc.node, natsbus.CheckpointBucket, err)
	}
	st, err := ck.State(ctx)
	if err != nil {
		return err
	}
	if e, ok := st.Checkpoints[stored]; ok && local && e.SHA256 == info.Meta["sha256"] && uint64(e.Size) == info.Size {
		return nil
	}
	_, err = ck.Adopt(ctx, stored, func(ctx context.Context, dst string) error {
		ctx, cancel := context.WithTimeout(ctx, objectTimeout(int64(info.Size)))
		defer cancel()
		return cc.objs.Get(ctx, stored, dst)
	})
	switch {
	case err == nil:
		c.logger.Info("checkpoint fetched from the cluster", "component", "checkpoint", "checkpoint", label, "from_node", info.Meta["node"], "bytes", info.Size)
		return nil
	case errors.Is(err, checkpoint.ErrRollback):
		c.logger.Warn("the cluster's copy of the checkpoint is older than this node's: this node's is used", "component", "checkpoint", "checkpoint", label, "err", err)
		return nil
	case errors.Is(err, checkpoint.ErrRejected):
		return fmt.Errorf("%w: checkpoint %q in the cluster's object store %s (put by node %q) was refused by node %s: %v. It was altered in the store, or signed with another MCP_CHECKPOINT_SECRET: check that every node has the same MCP_CHECKPOINT_SECRET; if they do, delete it with delete_checkpoint and save it again from its kernel",
			checkpoint.ErrRejected, label, natsbus.CheckpointBucket, info.Meta["node"], cc.node, err)
	}
	return fmt.Errorf("fetch checkpoint %q from the cluster's object store %s: %w", label, natsbus.CheckpointBucket, err)
}

// deleteRemote deletes a checkpoint this node has no copy of
// from the object store; found is false when the store has none either.
func (cc clusterCheckpoints) deleteRemote(ctx context.Context, stored string) (found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, objectTimeout(0))
	defer cancel()
	if _, err := cc.objs.Info(ctx, stored); errors.Is(err, natsbus.ErrNoCheckpoint) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, cc.objs.Delete(ctx, stored)
}

// clusterListed is one checkpoint as list_checkpoints shows it in cluster
// mode: the cluster's (the object store's), merged with this node's files.
type clusterListed struct {
	checkpoint.Listed
	// InCluster: the object store holds it (any node can load it);
	// OnThisNode: this node has the file (a load needs no fetch).
	InCluster  bool `json:"in_cluster"`
	OnThisNode bool `json:"on_this_node"`
}

// list merges the object store's checkpoints of owner ("" for every
// owner) with this node's listing: a checkpoint in both is this node's
// entry (verified as ever) when it is the same version; one only in the
// store is described from its object's metadata (verified when fetched);
// one only here is this node's alone (its put failed).
func (cc clusterCheckpoints) list(ctx context.Context, owner string, local checkpoint.Listing) ([]clusterListed, error) {
	lctx, cancel := context.WithTimeout(ctx, objectTimeout(0))
	objs, err := cc.objs.List(lctx)
	cancel()
	if err != nil {
		return nil, err
	}
	here := map[string]checkpoint.Listed{}
	for _, l := range local.Checkpoints {
		here[l.Stored] = l
	}
	var out []clusterListed
	for _, o := range objs {
		if checkpoint.ValidStored(o.Name) != nil {
			continue
		}
		oo, name := checkpoint.Owned(o.Name)
		if owner != "" && oo != owner {
			continue
		}
		if l, ok := here[o.Name]; ok && l.SHA256 == o.Meta["sha256"] {
			out = append(out, clusterListed{Listed: l, InCluster: true, OnThisNode: true})
			delete(here, o.Name)
			continue
		}
		created, _ := time.Parse(time.RFC3339Nano, o.Meta["created"])
		m := checkpoint.Meta{Name: name, KernelID: o.Meta["kernel_id"], Created: created, KeyID: o.Meta["key_id"],
			SHA256: o.Meta["sha256"], FileBytes: int64(o.Size), Python: o.Meta["python"]}
		for _, v := range strings.Split(o.Meta["saved"], ",") {
			if v != "" {
				m.Saved = append(m.Saved, checkpoint.Variable{Name: v})
			}
		}
		problem := fmt.Sprintf("saved on node %s, not fetched to node %s yet: its signature is checked in full when load_environment fetches it", o.Meta["node"], cc.node)
		if _, ok := here[o.Name]; ok {
			problem = fmt.Sprintf("node %s's copy differs from the cluster's (saved on node %s): load_environment fetches the cluster's", cc.node, o.Meta["node"])
			delete(here, o.Name)
		}
		out = append(out, clusterListed{Listed: checkpoint.Listed{Meta: m, Owner: oo, Stored: o.Name, Problem: problem}, InCluster: true})
	}
	for _, l := range here {
		l.Problem = strings.TrimPrefix(l.Problem+"; ", "; ") + fmt.Sprintf("on node %s only: its copy to the cluster's object store failed (another node cannot load it): save it again to share it", cc.node)
		out = append(out, clusterListed{Listed: l, OnThisNode: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stored < out[j].Stored })
	return out, nil
}
