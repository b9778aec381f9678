// Package auth says who a caller is and what it may do: principals, their
// scopes, their access to a kernel, and the request context that carries
// them from an edge (MCP, /ws, /assets, /events, the Jupyter API, the
// console) to the checks. It knows no read model and no actor: edges look
// a kernel's owner and shares up in projections/kernels and ask On.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Scope is a set of permissions a principal holds, whatever the kernel.
// Scopes do not imply each other, except Admin, which holds them all.
type Scope uint8

const (
	// ScopeRead: list kernels and executions, read outputs, assets and
	// notebooks — of kernels the principal can see.
	ScopeRead Scope = 1 << iota
	// ScopeExecute: start kernels, execute, answer input, interrupt — on
	// kernels the principal owns or was given execute on.
	ScopeExecute
	// ScopeManage: restart, shut down, share, checkpoints — of kernels the
	// principal owns.
	ScopeManage
	// ScopeAdmin: everything, on everyone's kernels.
	ScopeAdmin
)

// scopeNames are the scopes' names in tokens, flags and the principals
// file. NB: stored; must not change.
var scopeNames = []struct {
	s    Scope
	name string
}{{ScopeRead, "read"}, {ScopeExecute, "execute"}, {ScopeManage, "manage"}, {ScopeAdmin, "admin"}}

// DefaultScopes is what `principal add` gives without --scopes: an agent
// that works on its own kernels.
const DefaultScopes = ScopeRead | ScopeExecute | ScopeManage

// Has reports whether s holds every scope in need. Admin holds all.
func (s Scope) Has(need Scope) bool { return s&ScopeAdmin != 0 || s&need == need }

// String renders s as "read,execute" (the form ParseScopes reads).
func (s Scope) String() string {
	var names []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// ParseScopes reads scopes separated by commas or spaces (an OAuth "scope"
// claim is space-separated). Unknown names are an error naming them;
// ignoreUnknown skips them instead (an OAuth token may carry scopes meant
// for other resources). A prefix "mcp-jupyter:" on a name is accepted.
func ParseScopes(s string, ignoreUnknown bool) (Scope, error) {
	var out Scope
	var unknown []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		name := strings.TrimPrefix(strings.ToLower(f), "mcp-jupyter:")
		i := slices.IndexFunc(scopeNames, func(n struct {
			s    Scope
			name string
		}) bool {
			return n.name == name
		})
		if i < 0 {
			unknown = append(unknown, f)
			continue
		}
		out |= scopeNames[i].s
	}
	if len(unknown) > 0 && !ignoreUnknown {
		return 0, fmt.Errorf("unknown scope %s: the scopes are read, execute, manage and admin", strings.Join(unknown, ", "))
	}
	return out, nil
}

// Principal is a caller: a named token, an OAuth subject, or the local
// user of stdio.
type Principal struct {
	// Name identifies the principal in events, ownership and shares.
	// Tokens from `principal add` use the name given; OAuth subjects are
	// "oidc:<sub>"; the data dir's token and stdio are AdminName.
	Name   string
	Scopes Scope
	// MaxKernels overrides the server's --max-kernels for this principal
	// (0: the server's setting).
	MaxKernels int
	// Expires is when the credentials stop authenticating (an OAuth
	// access token's exp; zero: they do not expire on their own). Streams
	// that outlive a request (/ws, /events follow) end at it.
	Expires time.Time
}

// AdminName is the principal of the data dir's token (mcp-token, or
// --token) and of stdio: what every caller was before principals existed.
const AdminName = "admin"

// Admin is the principal of the data dir's token and of stdio.
func Admin() Principal { return Principal{Name: AdminName, Scopes: ScopeAdmin} }

// IsAdmin reports whether p may act on everyone's kernels.
func (p Principal) IsAdmin() bool { return p.Scopes&ScopeAdmin != 0 }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal ctx carries. ok is false when none
// does: an edge that forgot to authenticate; callers refuse, never default.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Access is what a principal may do with one kernel (and its executions,
// outputs and assets). Each level includes the ones before it.
type Access uint8

const (
	AccessNone    Access = iota
	AccessRead           // see it, its executions, outputs and assets
	AccessExecute        // and execute, answer input, interrupt
	AccessManage         // and restart, shut down, share, checkpoint: the owner's
)

// String renders a as shares are stored: "none", "read", "execute", "manage".
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessExecute:
		return "execute"
	case AccessManage:
		return "manage"
	}
	return "none"
}

// ParseAccess reads a share level. Only read and execute can be shared
// (and none, to withdraw a share); manage stays with the owner.
func ParseAccess(s string) (Access, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return AccessRead, nil
	case "execute":
		return AccessExecute, nil
	case "none":
		return AccessNone, nil
	}
	return AccessNone, fmt.Errorf("access %q cannot be shared: give read or execute (or none to withdraw a share)", s)
}

// On returns what p may do with a kernel that owner owns and that was
// shared with p at shared (AccessNone if not). Admins and the owner manage
// it. A kernel with no owner (started before principals existed) is the
// admin's.
func (p Principal) On(owner string, shared Access) Access {
	if p.IsAdmin() || (owner != "" && owner == p.Name) {
		return AccessManage
	}
	return shared
}

// Authenticator resolves a request's credentials to a principal. It
// returns an error wrapping ErrNoCredentials when the request carries none,
// and ErrRejected (with the reason) when it carries ones it refuses.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

var (
	ErrNoCredentials = errors.New("no credentials")
	ErrRejected      = errors.New("credentials rejected")
)
