package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// openCheckpoints spawns the checkpoint actor on the process's actor
// system, its files in infra/checkpointfile and its figures fed to the
// live metrics. The key lives in <data dir>/checkpoint-keys, beside (never
// inside) <data dir>/checkpoints, which is the only directory kernels are
// pointed at.
func (c *core) openCheckpoints(ctx context.Context) error {
	keys, err := checkpointfile.OpenKeyring(filepath.Join(c.cfg.DataDir, "checkpoint-keys"), os.Getenv(checkpointfile.SecretEnv))
	if err != nil {
		return fmt.Errorf("open checkpoint keyring: %w", err)
	}
	files, err := checkpointfile.Open(filepath.Join(c.cfg.DataDir, "checkpoints"), keys, c.cfg.CheckpointEncrypt)
	if err != nil {
		return fmt.Errorf("open checkpoint files: %w", err)
	}
	files.KeepFree(c.cfg.MinFreeDisk, "--min-free-disk")
	replica, err := c.openCheckpointReplica(ctx, files)
	if err != nil {
		return err
	}
	runtimeDir := filepath.Join(c.cfg.DataDir, "runtime")
	ck, err := checkpoint.Open(ctx, checkpoint.Config{System: c.sys.Actors(), Files: files,
		Runner: checkpointRunner{System: c.sys, Queue: c.queue, Log: c.log, Held: c.leaseHeld()}, Log: c.log,
		KernelDir: func(id string) string { return jupyter.KernelDir(runtimeDir, id) },
		Observer:  c.metrics.Live.CheckpointObserver(), Logger: c.logger.With("component", "checkpoint"),
		MaxBytesPerOwner: c.cfg.MaxCheckpointBytes, Replica: replica})
	if err != nil {
		return fmt.Errorf("open checkpoints: %w", err)
	}
	c.mu.Lock()
	c.ckpt = ck
	c.mu.Unlock()
	c.mcp.AddCheckpointTools(checkpointBackend{b: c.back, svc: c.ckpt, cluster: c.clusterCkpt, fetch: c.fetchCheckpoint})
	return nil
}

// checkpointBackend adapts actors/checkpoint to the MCP edge.
type checkpointBackend struct {
	b   *backend
	svc *checkpoint.Client
	// cluster is the cluster's copy (zero on a single server); fetch
	// brings a checkpoint this node lacks (c.fetchCheckpoint).
	cluster clusterCheckpoints
	fetch   func(ctx context.Context, stored string) error
}

var _ mcpserver.CheckpointBackend = checkpointBackend{}

func (cb checkpointBackend) ResolveKernel(ctx context.Context, ref string) (string, error) {
	return cb.b.ResolveKernel(ctx, ref)
}

// checkpointRef resolves a checkpoint name as the caller gives it: "x" is
// the caller's own checkpoint x; "alice/x" is alice's x, which only an
// admin (or alice) may name, to load, list or delete — saving is always
// into one's own names (save is true). Anyone else naming another's
// checkpoint is told it does not exist, in the words an unknown name gets:
// whether another principal has a checkpoint of that name is not leaked.
func checkpointRef(ctx context.Context, ref string, save bool) (owner, name, by string, err error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Name == "" {
		return "", "", "", auth.ErrNoPrincipal
	}
	owner, name, qualified := strings.Cut(ref, "/")
	if !qualified || owner == p.Name && !save {
		if qualified {
			return p.Name, name, p.Name, nil
		}
		return p.Name, ref, p.Name, nil
	}
	if owner == "" || !isAlnum(owner[0]) {
		// NB: not "<principal>/<name>": refused as the name it is ("../x").
		return "", "", "", checkpoint.ValidName(ref)
	}
	switch {
	case save && owner == p.Name:
		return p.Name, name, p.Name, nil
	case save:
		return "", "", "", fmt.Errorf("%w %q: a checkpoint is saved under the saver's own names: give a name without '/'", checkpoint.ErrInvalidName, ref)
	case !p.IsAdmin():
		return "", "", "", fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", checkpoint.ErrNotFound, ref)
	}
	return owner, name, p.Name, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkpointLabel is how the caller names owner's checkpoint name: its
// own by the name alone, another's as "<owner>/<name>".
func checkpointLabel(ctx context.Context, owner, name string) string {
	if p, ok := auth.FromContext(ctx); ok && p.Name == owner || owner == "" {
		return name
	}
	return owner + "/" + name
}

func (cb checkpointBackend) SaveEnvironment(ctx context.Context, r mcpserver.SaveEnvironmentRequest) (mcpserver.CheckpointReply, error) {
	// NB: a checkpoint holds the kernel's variables: its owner's (or an
	// admin's) to take, not a reader's or a collaborator's.
	if _, err := cb.b.may(ctx, r.KernelID, auth.AccessManage); err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	owner, name, by, err := checkpointRef(ctx, r.Name, true)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	if strings.HasPrefix(name, autoCheckpointPrefix) {
		return mcpserver.CheckpointReply{}, fmt.Errorf("%w %q: names starting with %q are the server's auto-checkpoints (it saves them itself; you may load and list them): choose another name",
			checkpoint.ErrInvalidName, r.Name, autoCheckpointPrefix)
	}
	if err := cb.b.refuse(); err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	m, err := cb.svc.Save(ctx, checkpoint.SaveRequest{Name: name, Owner: owner, By: by, KernelID: r.KernelID, Notebook: r.Notebook, Variables: r.Variables, Overwrite: r.Overwrite})
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	m.Name = checkpointLabel(ctx, m.Owner, m.Name)
	var names []string
	for _, v := range m.Saved {
		names = append(names, v.Name)
	}
	sum := fmt.Sprintf("Saved checkpoint %q from kernel %s: %d variables (%s), %d bytes.", m.Name, m.KernelID, len(m.Saved), strings.Join(names, ", "), m.FileBytes)
	if len(m.Skipped) > 0 {
		var sk []string
		for _, v := range m.Skipped {
			sk = append(sk, fmt.Sprintf("%s (%s): %s", v.Name, v.Type, v.Reason))
		}
		sum += "\nNot saved: " + strings.Join(sk, "; ") + "."
	}
	sum += fmt.Sprintf("\nRestore it with load_environment name %q, in this or a new kernel, also after a server restart.", m.Name)
	data := map[string]any{"checkpoint": m}
	if cb.cluster.enabled() {
		data["in_cluster"] = m.NotReplicated == ""
		if m.NotReplicated != "" {
			sum += fmt.Sprintf("\nSAVED ON NODE %s ONLY: its copy to the cluster's object store failed (%s). Another node cannot load it, and it is lost with this node: save it again once the cluster is whole.", cb.cluster.node, m.NotReplicated)
		} else {
			sum += " It is in the cluster's object store: any node can load it."
		}
	}
	return mcpserver.CheckpointReply{Summary: sum, Data: data}, nil
}

func (cb checkpointBackend) LoadEnvironment(ctx context.Context, r mcpserver.LoadEnvironmentRequest) (mcpserver.CheckpointReply, error) {
	if _, err := cb.b.may(ctx, r.KernelID, auth.AccessManage); err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	pol, err := checkpoint.ParsePolicy(r.Policy)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	owner, name, by, err := checkpointRef(ctx, r.Name, false)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	if cb.fetch != nil {
		// NB: the cluster's newest copy first (a save on another node, or
		// one this node never saw); verified like a local file.
		if err := cb.fetch(ctx, checkpoint.Stored(owner, name)); err != nil {
			return mcpserver.CheckpointReply{}, err
		}
	}
	res, err := cb.svc.Load(ctx, checkpoint.LoadRequest{Name: name, Owner: owner, By: by, KernelID: r.KernelID, Policy: pol, AllowRollback: r.AllowRollback})
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	sum := fmt.Sprintf("Restored %d variables from checkpoint %q into kernel %s: %s.", len(res.Restored), r.Name, r.KernelID, strings.Join(res.Restored, ", "))
	if res.RolledBack {
		sum += fmt.Sprintf("\nThis was an OLDER version of %q (created %s) than its newest save, loaded because allow_rollback was true.", r.Name, res.Meta.Created.Format("2006-01-02 15:04:05 MST"))
	}
	if len(res.Missing) > 0 {
		sum += "\nMissing packages in this kernel (recorded at save): " + strings.Join(res.Missing, ", ") + "."
	}
	if len(res.Mismatched) > 0 {
		sum += "\nDifferent package versions: " + strings.Join(res.Mismatched, "; ") + "."
	}
	for _, in := range res.Installs {
		switch {
		case in.OK:
			sum += fmt.Sprintf("\npip install %s: done.", in.Package)
		case in.NoIndex:
			sum += fmt.Sprintf("\npip install %s: FAILED — pip cannot reach a package index from the kernel's machine (offline, proxy or firewall); install it another way or use policy warn.", in.Package)
		case in.ExternallyManaged:
			sum += fmt.Sprintf("\npip install %s: FAILED — the kernel's Python is externally managed (PEP 668); install with the system package manager or use a virtualenv kernel.", in.Package)
		default:
			sum += fmt.Sprintf("\npip install %s: FAILED — see output.", in.Package)
		}
	}
	return mcpserver.CheckpointReply{Summary: sum, Data: map[string]any{"name": r.Name, "kernel_id": r.KernelID, "restored": res.Restored,
		"missing_packages": res.Missing, "mismatched_packages": res.Mismatched, "installs": res.Installs,
		"saved_python": res.Meta.Python, "kernel_python": res.Python, "created": res.Meta.Created, "rolled_back": res.RolledBack}}, nil
}

// Checkpoints lists the caller's checkpoints, every principal's for an
// admin (others' named "<owner>/<name>").
func (cb checkpointBackend) Checkpoints(ctx context.Context) (mcpserver.CheckpointReply, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	owner := p.Name // NB: only the caller's files are opened
	if p.IsAdmin() {
		owner = ""
	}
	l, err := cb.svc.ListOwned(ctx, owner)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	if cb.cluster.enabled() {
		return cb.clusterCheckpoints(ctx, p.Name, owner, l)
	}
	mine := l.Checkpoints[:0]
	for _, c := range l.Checkpoints {
		if c.Owner == p.Name || p.IsAdmin() {
			c.Name = checkpointLabel(ctx, c.Owner, c.Name)
			mine = append(mine, c)
		}
	}
	l.Checkpoints = mine
	if !p.IsAdmin() {
		l.Skipped = nil // NB: directory entries of the whole store are the admin's concern
	}
	sum := fmt.Sprintf("%d checkpoints.", len(l.Checkpoints))
	for _, c := range l.Checkpoints {
		if !c.Verified {
			sum += fmt.Sprintf("\nUNVERIFIED %q: %s", c.Name, c.Problem)
		}
	}
	for _, why := range l.Skipped {
		sum += "\nSkipped: " + why
	}
	data := map[string]any{"checkpoints": l.Checkpoints}
	if len(l.Skipped) > 0 {
		data["skipped"] = l.Skipped
	}
	return mcpserver.CheckpointReply{Summary: sum, Data: data}, nil
}

func (cb checkpointBackend) DeleteCheckpoint(ctx context.Context, ref string) (mcpserver.CheckpointReply, error) {
	owner, name, by, err := checkpointRef(ctx, ref, false)
	if err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	if stored := checkpoint.Stored(owner, name); cb.cluster.enabled() && !cb.cluster.files.Exists(stored) {
		// NB: saved on another node and never fetched here: the cluster's
		// copy is the checkpoint.
		found, err := cb.cluster.deleteRemote(ctx, stored)
		if err != nil {
			return mcpserver.CheckpointReply{}, fmt.Errorf("delete checkpoint %q from the cluster's object store: %w; nothing was deleted: try again", ref, err)
		}
		if !found {
			return mcpserver.CheckpointReply{}, fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", checkpoint.ErrNotFound, ref)
		}
		return mcpserver.CheckpointReply{Summary: fmt.Sprintf("Deleted checkpoint %q from the cluster.", ref), Data: map[string]any{"deleted": ref}}, nil
	}
	if err := cb.svc.Delete(ctx, owner, name, by); err != nil {
		return mcpserver.CheckpointReply{}, err
	}
	name = ref
	return mcpserver.CheckpointReply{Summary: fmt.Sprintf("Deleted checkpoint %q.", name), Data: map[string]any{"deleted": name}}, nil
}

// clusterCheckpoints answers list_checkpoints in cluster mode: the
// cluster's checkpoints (the object store's), merged with this node's
// files (see clusterCheckpoints.list).
func (cb checkpointBackend) clusterCheckpoints(ctx context.Context, caller, owner string, local checkpoint.Listing) (mcpserver.CheckpointReply, error) {
	all, err := cb.cluster.list(ctx, owner, local)
	if err != nil {
		return mcpserver.CheckpointReply{}, fmt.Errorf("list the cluster's checkpoints (object store %s): %w; retry once the cluster is whole", natsbus.CheckpointBucket, err)
	}
	mine := all[:0]
	only := 0
	for _, c := range all {
		if c.Owner == caller || owner == "" {
			c.Name = checkpointLabel(ctx, c.Owner, c.Name)
			mine = append(mine, c)
			if !c.InCluster {
				only++
			}
		}
	}
	sum := fmt.Sprintf("%d checkpoints in the cluster (object store %s, listed by node %s).", len(mine)-only, natsbus.CheckpointBucket, cb.cluster.node)
	if only > 0 {
		sum += fmt.Sprintf(" %d more on node %s only.", only, cb.cluster.node)
	}
	for _, c := range mine {
		if c.OnThisNode && !c.Verified {
			sum += fmt.Sprintf("\nUNVERIFIED %q: %s", c.Name, c.Problem)
		}
	}
	data := map[string]any{"checkpoints": mine, "source": "cluster"}
	if owner == "" && len(local.Skipped) > 0 {
		for _, why := range local.Skipped {
			sum += "\nSkipped: " + why
		}
		data["skipped"] = local.Skipped
	}
	return mcpserver.CheckpointReply{Summary: sum, Data: data}, nil
}
