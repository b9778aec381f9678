package auth

import (
	"context"
	"errors"
)

// ErrNoPrincipal: a call reached the core without an authenticated caller
// (an edge that did not authenticate), or with a principal without a name.
// It is refused, never defaulted.
var ErrNoPrincipal = errors.New("no authenticated principal on this call: the server refuses it; " +
	"connect with a bearer token (mcp-token, or one from `mcp-jupyter principal add`)")

// Caller returns the principal a call runs as: the one its edge put in
// ctx (HTTP: the bearer token's; stdio: the admin). None, or one with an
// empty name, is ErrNoPrincipal: every edge and tool asks here, so none
// can take a nameless principal for someone (an empty owner is the
// admin's, an empty directory name the whole notebook root).
func Caller(ctx context.Context) (Principal, error) {
	if p, ok := FromContext(ctx); ok && p.Name != "" {
		return p, nil
	}
	return Principal{}, ErrNoPrincipal
}
