package auth

import (
	"context"
	"errors"
	"testing"
)

// TestCallerRefusesMissingOrNamelessPrincipal: no principal, or one with
// an empty name, is refused; a named one is returned.
func TestCallerRefusesMissingOrNamelessPrincipal(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"none":     context.Background(),
		"nameless": WithPrincipal(context.Background(), Principal{Scopes: ScopeAdmin}),
	} {
		if _, err := Caller(ctx); !errors.Is(err, ErrNoPrincipal) {
			t.Errorf("%s: Caller = %v, want ErrNoPrincipal", name, err)
		}
	}
	if p, err := Caller(WithPrincipal(context.Background(), Principal{Name: "alice"})); err != nil || p.Name != "alice" {
		t.Fatalf("Caller(alice) = %v, %v", p, err)
	}
}
