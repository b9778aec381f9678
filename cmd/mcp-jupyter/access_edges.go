package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
)

// The HTTP edges other than /mcp (/ws, /assets, /events) by principal: a
// principal reads the events of the kernels it can read (access.canRead:
// owner, shares, admins everything) and the events it caused; an asset if
// it can read a kernel that stored it. What it may not read answers as
// what does not exist.

// kernelReaders is every kernel's readers other than admins (its owner and
// the principals it is shared with), for the /ws hub's index (ws.Access).
func kernelReaders(km *kernels.Model) map[string][]string {
	out := map[string][]string{}
	for _, k := range km.List() {
		// NB: through ownership, the rule every MCP tool asks (access.go),
		// so the two cannot drift apart.
		var rs []string
		for name := range k.Shares {
			if _, shared := ownership(k, name); shared >= auth.AccessRead {
				rs = append(rs, name)
			}
		}
		if owner, _ := ownership(k, ""); owner != "" && owner != auth.AdminName && !slices.Contains(rs, owner) {
			rs = append(rs, owner)
		}
		if len(rs) > 0 {
			out[k.ID] = rs
		}
	}
	return out
}

// edgeAccess answers the edges that read the log. The kernels read model
// lags the log a little: a refusal is decided only once it has applied the
// event in question (caughtUp), so a kernel started or shared a moment ago
// is not hidden for a lag. Grants cost no wait.
type edgeAccess struct {
	access
	caughtUp func(ctx context.Context, seq uint64) error
}

// mayRead reports whether p may read e: an admin everything; others the
// events they caused and those of kernels they can read now.
func (a edgeAccess) mayRead(ctx context.Context, p auth.Principal, e *events.Event) bool {
	if p.IsAdmin() || (e.Principal != "" && e.Principal == p.Name) {
		return true
	}
	if e.Kernel == "" {
		return false
	}
	if a.canRead(p, e.Kernel) {
		return true
	}
	if a.caughtUp(ctx, e.Seq) != nil {
		return false
	}
	return a.canRead(p, e.Kernel)
}

// eventFilter is the events r's principal may read (every one for an
// admin), or an error when r carries no principal (refused, never
// defaulted).
func (a edgeAccess) eventFilter(r *http.Request) (func(*events.Event) bool, error) {
	// NB: caller, the rule of every MCP tool: no principal, or one
	// without a name, is refused.
	p, err := auth.Caller(r.Context())
	if err != nil {
		return nil, err
	}
	if !p.Scopes.Has(auth.ScopeRead) {
		return nil, fmt.Errorf("principal %q lacks the read scope the events API needs: ask an admin for it", p.Name)
	}
	if p.IsAdmin() {
		return nil, nil
	}
	ctx := r.Context()
	return func(e *events.Event) bool { return a.mayRead(ctx, p, e) }, nil
}

// assetAccess decides /assets/<sha256>: an asset is readable through any
// kernel that stored it (AssetStored.KernelID, the leases read model's
// Kernels: every one, not only the first Origins).
type assetAccess struct {
	edgeAccess
	leases *leases.Model
	// leasesCaughtUp waits until the leases read model applied every event
	// appended so far.
	leasesCaughtUp func(ctx context.Context) error
	last           func() uint64
}

func (a assetAccess) mayReadAsset(ctx context.Context, p auth.Principal, sum string) bool {
	if p.IsAdmin() {
		return true
	}
	if a.storedByReadable(p, sum) {
		return true
	}
	// NB: the models lag the log: refuse only once they hold what was
	// appended before this request.
	if a.leasesCaughtUp(ctx) != nil || a.caughtUp(ctx, a.last()) != nil {
		return false
	}
	return a.storedByReadable(p, sum)
}

func (a assetAccess) storedByReadable(p auth.Principal, sum string) bool {
	as, ok := a.leases.Get(sum)
	if !ok {
		return false
	}
	// NB: every kernel that stored it (KernelIDs), not the capped Origins.
	for _, k := range as.KernelIDs() {
		if a.canRead(p, k) {
			return true
		}
	}
	return false
}

// principalAssets is the lease actor as /assets reads it for the principal
// in the request context: an asset it may not read is not found, exactly
// as one never stored (the same 404, the same words).
type principalAssets struct {
	next   assetstore.Reader
	access assetAccess
}

func (r principalAssets) ReadAsset(ctx context.Context, sum string) (io.ReadSeekCloser, int64, string, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, 0, "", err
	}
	if !p.Scopes.Has(auth.ScopeRead) || !r.access.mayReadAsset(ctx, p, sum) {
		// NB: the error of a never-stored asset (leaseReader): the same 404,
		// so the answer does not tell that it exists.
		return nil, 0, "", fmt.Errorf("%w (asset %s: %w)", assetstore.ErrNotFound, sum, lease.ErrNotFound)
	}
	return r.next.ReadAsset(ctx, sum)
}

// edgeAccess is the access the HTTP edges ask, over the core's kernels
// read model and its runner.
func (c *core) edgeAccess() edgeAccess {
	return edgeAccess{access: access{kernels: c.kernels}, caughtUp: c.runner.WaitFor}
}
