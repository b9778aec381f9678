package auth

import (
	"context"
	"strings"
	"testing"
)

func TestParseScopes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Scope
	}{
		{"read", ScopeRead},
		{"read,execute", ScopeRead | ScopeExecute},
		{"openid mcp-jupyter:read  manage", ScopeRead | ScopeManage}, // OAuth form, unknown ignored
		{"admin", ScopeAdmin},
		{"", 0},
	} {
		got, err := ParseScopes(c.in, true)
		if err != nil || got != c.want {
			t.Errorf("ParseScopes(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if _, err := ParseScopes("read,wrtie", false); err == nil || !strings.Contains(err.Error(), "wrtie") {
		t.Errorf("an unknown scope must be named in the error, got %v", err)
	}
	if s, _ := ParseScopes("execute,read", false); s.String() != "read,execute" {
		t.Errorf("String = %q", s.String())
	}
}

func TestScopeHas(t *testing.T) {
	if !ScopeAdmin.Has(ScopeManage | ScopeExecute) {
		t.Error("admin must hold every scope")
	}
	if (ScopeRead | ScopeExecute).Has(ScopeManage) {
		t.Error("read,execute must not hold manage")
	}
	if !(ScopeRead | ScopeExecute).Has(ScopeRead) {
		t.Error("read,execute must hold read")
	}
}

func TestOn(t *testing.T) {
	alice := Principal{Name: "alice", Scopes: DefaultScopes}
	if got := alice.On("alice", AccessNone); got != AccessManage {
		t.Errorf("owner: %v", got)
	}
	if got := alice.On("bob", AccessNone); got != AccessNone {
		t.Errorf("stranger: %v", got)
	}
	if got := alice.On("bob", AccessRead); got != AccessRead {
		t.Errorf("shared read: %v", got)
	}
	if got := alice.On("", AccessNone); got != AccessNone {
		t.Errorf("ownerless kernels are the admin's, got %v", got)
	}
	if got := Admin().On("bob", AccessNone); got != AccessManage {
		t.Errorf("admin: %v", got)
	}
	if _, err := ParseAccess("manage"); err == nil {
		t.Error("manage cannot be shared")
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("no principal in a bare context")
	}
	p, ok := FromContext(WithPrincipal(context.Background(), Principal{Name: "bob"}))
	if !ok || p.Name != "bob" {
		t.Fatalf("got %v %v", p, ok)
	}
}
