package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// TestEdgesRefuseNamelessPrincipal: /events and /assets refuse a principal
// without a name, as every MCP tool does (caller), instead of serving it
// as some principal "".
func TestEdgesRefuseNamelessPrincipal(t *testing.T) {
	nameless := auth.Principal{Scopes: auth.DefaultScopes}
	r := httptest.NewRequest("GET", "/events", nil)
	r = r.WithContext(auth.WithPrincipal(r.Context(), nameless))
	if _, err := (edgeAccess{}).eventFilter(r); !errors.Is(err, auth.ErrNoPrincipal) {
		t.Fatalf("/events for a nameless principal: %v, want auth.ErrNoPrincipal", err)
	}
	ctx := auth.WithPrincipal(context.Background(), nameless)
	if _, _, _, err := (principalAssets{}).ReadAsset(ctx, "00"); !errors.Is(err, auth.ErrNoPrincipal) {
		t.Fatalf("/assets for a nameless principal: %v, want auth.ErrNoPrincipal", err)
	}
}

// TestKernelReadersAsAccess: the /ws index's readers are exactly the
// principals access.go lets read: the owner, read and execute shares, not
// a withdrawn one, not the admin.
func TestKernelReadersAsAccess(t *testing.T) {
	km := kernels.New()
	evs := []events.Event{
		{Seq: 1, Type: events.TypeKernelStarted, Kernel: "k1", Payload: events.KernelStarted{KernelID: "k1", Spec: "python3", Owner: "alice"}},
		{Seq: 2, Type: events.TypeKernelShared, Kernel: "k1", Payload: events.KernelShared{KernelID: "k1", Principal: "bob", Access: events.AccessRead}},
		{Seq: 3, Type: events.TypeKernelShared, Kernel: "k1", Payload: events.KernelShared{KernelID: "k1", Principal: "carol", Access: events.AccessExecute}},
		{Seq: 4, Type: events.TypeKernelShared, Kernel: "k1", Payload: events.KernelShared{KernelID: "k1", Principal: "dave", Access: events.AccessRead}},
		{Seq: 5, Type: events.TypeKernelShared, Kernel: "k1", Payload: events.KernelShared{KernelID: "k1", Principal: "dave", Access: events.AccessNone}},
		{Seq: 6, Type: events.TypeKernelStarted, Kernel: "k2", Payload: events.KernelStarted{KernelID: "k2", Spec: "python3"}},
	}
	for _, e := range evs {
		if err := km.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	got := kernelReaders(km)
	rs := slices.Sorted(slices.Values(got["k1"]))
	if !slices.Equal(rs, []string{"alice", "bob", "carol"}) || len(got["k2"]) != 0 {
		t.Fatalf("readers %v, want k1: alice bob carol, k2: none", got)
	}
	a := access{kernels: km}
	for _, name := range []string{"alice", "bob", "carol", "dave", "eve"} {
		p := auth.Principal{Name: name, Scopes: auth.DefaultScopes}
		if a.canRead(p, "k1") != slices.Contains(rs, name) {
			t.Fatalf("%s: access.canRead %v, but the /ws readers say %v", name, a.canRead(p, "k1"), rs)
		}
	}
}
