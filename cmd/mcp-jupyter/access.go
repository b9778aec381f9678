package main

import (
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// access answers, for every edge (MCP tools, /ws, /assets, /events), what a
// principal may do with a kernel: p.On(owner, share) over the kernels read
// model. One lookup by id per check (a map read under the model's read
// lock), whatever the number of kernels and principals.
//
// A kernel the principal cannot read does not exist for it: the edges
// answer exactly as for an unknown id, so a kernel id (or a notebook path,
// a label, an execution id) does not tell another principal that it
// exists. A kernel it can read but not act on says so and names the owner
// to ask.
type access struct {
	kernels *kernels.Model
}

// ownership is a kernel's owner ("" before principals: the admin's) and
// what it was shared with name at.
func ownership(k kernels.Kernel, name string) (owner string, shared auth.Access) {
	return k.Owner, shareLevel(k.SharedWith(name))
}

// shareLevel reads a share as the kernels model stores it ("" and
// anything unknown: none).
func shareLevel(s string) auth.Access {
	a, _ := auth.ParseAccess(s)
	return a
}

// lookup is kernel id's owner and its share with name: one map read, no
// copy.
func (a access) lookup(id, name string) (owner string, shared auth.Access, ok bool) {
	owner, share, ok := a.kernels.Ownership(id, name)
	return owner, shareLevel(share), ok
}

// owner is kernel id's owner (AdminName for a kernel from before
// principals), or "" for one the model does not know.
func (a access) owner(id string) string {
	owner, _, ok := a.lookup(id, "")
	if !ok {
		return ""
	}
	if owner == "" {
		return auth.AdminName
	}
	return owner
}

// kernelAccess is what p may do with kernel id; AccessNone for a kernel the
// model does not know.
func (a access) kernelAccess(p auth.Principal, id string) auth.Access {
	if p.IsAdmin() {
		return auth.AccessManage // NB: no lookup: the admin's path costs nothing
	}
	owner, shared, ok := a.lookup(id, p.Name)
	if !ok {
		return auth.AccessNone
	}
	return p.On(owner, shared)
}

// canRead reports whether p may see kernel id, its executions, outputs and
// assets.
func (a access) canRead(p auth.Principal, id string) bool {
	return a.kernelAccess(p, id) >= auth.AccessRead
}

// visibleKernels is every kernel p may read, sorted by id.
func (a access) visibleKernels(p auth.Principal) []kernels.Kernel {
	all := a.kernels.List()
	if p.IsAdmin() {
		return all
	}
	out := all[:0]
	for _, k := range all {
		if p.On(ownership(k, p.Name)) >= auth.AccessRead {
			out = append(out, k)
		}
	}
	return out
}

// require checks that p may act on kernel id at level need. A kernel p
// cannot read gets hidden() — the caller's own "unknown id" error, word for
// word; one it can read but not act on says what it lacks and whom to ask.
func (a access) require(p auth.Principal, id string, need auth.Access, hidden func() error) error {
	if p.IsAdmin() {
		return nil
	}
	owner, shared, ok := a.lookup(id, p.Name)
	if !ok {
		return hidden()
	}
	has := p.On(owner, shared)
	switch {
	case has >= need:
		return nil
	case has < auth.AccessRead:
		return hidden()
	}
	if owner == "" {
		owner = auth.AdminName
	}
	if need == auth.AccessExecute {
		return fmt.Errorf("kernel %s is shared with you for read only; ask its owner (%s) for execute (share_kernel), or start_kernel for your own", id, owner)
	}
	// NB: here need is manage: read or less was granted above, execute
	// answered just before.
	return fmt.Errorf("kernel %s belongs to %s and is shared with you for %s: only its owner or an admin can restart, shut down, share or checkpoint it; start_kernel for your own", id, owner, has)
}

// unknownKernel is the error for a kernel id (or notebook path) nobody
// knows — and, word for word, for one the caller may not see.
func unknownKernel(ref string) error {
	return fmt.Errorf("no kernel or bound notebook %q: call list_kernels for the ids, or start_kernel", ref)
}
