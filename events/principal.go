package events

import "context"

type principalKey struct{}

// WithPrincipal returns ctx naming the principal whose request work done
// with it serves: what actors append for it carries that principal
// (Draft.Principal). Actors take it from a context where a message crosses
// a package that knows no edge (an asset put, a checkpoint's kernel code).
func WithPrincipal(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, principalKey{}, name)
}

// PrincipalFrom is the principal WithPrincipal put in ctx ("" if none: the
// server's own work).
func PrincipalFrom(ctx context.Context) string {
	name, _ := ctx.Value(principalKey{}).(string)
	return name
}
