package leases_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
)

func TestFoldQueriesSnapshot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	evs := []events.Event{
		{Seq: 1, Type: events.TypeAssetStored, Payload: events.AssetStored{SHA256: a, MIME: "image/png", Size: 10, KernelID: "k1", ExecutionID: "x1", OutputIndex: 0}},
		{Seq: 2, Type: events.TypeLeaseGranted, Payload: events.LeaseGranted{SHA256: a, Holder: "execution/x1", ExpiresAt: t0.Add(time.Hour)}},
		{Seq: 3, Type: events.TypeAssetStored, Payload: events.AssetStored{SHA256: b, MIME: "text/html", Size: 5, KernelID: "k2", ExecutionID: "x2", OutputIndex: 1}},
		{Seq: 4, Type: events.TypeLeaseGranted, Payload: events.LeaseGranted{SHA256: b, Holder: "execution/x2", ExpiresAt: t0.Add(3 * time.Hour)}},
		{Seq: 5, Type: events.TypeLeaseRenewed, Payload: events.LeaseRenewed{SHA256: a, Holder: "execution/x1", ExpiresAt: t0.Add(2 * time.Hour)}},
	}
	m := leases.New()
	for _, e := range evs {
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	// Applying again (the runner after the actor) changes nothing.
	if err := m.Apply(events.Event{Seq: 2, Type: events.TypeLeaseGranted, Payload: events.LeaseGranted{SHA256: a, Holder: "execution/x1", ExpiresAt: t0}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(a); !got.ExpiresAt().Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("re-applied event changed the lease: %v", got.ExpiresAt())
	}
	if l := m.List(leases.Filter{KernelID: "k1"}); len(l) != 1 || l[0].SHA256 != a {
		t.Fatalf("list k1: %+v", l)
	}
	if l := m.List(leases.Filter{ExecutionID: "x2"}); len(l) != 1 || l[0].SHA256 != b {
		t.Fatalf("list x2: %+v", l)
	}
	if ex := m.Expired(t0.Add(150*time.Minute), 0); len(ex) != 1 || ex[0].SHA256 != a {
		t.Fatalf("expired at 2h30: %+v", ex)
	}
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := leases.New()
	if err := m2.Restore(data); err != nil {
		t.Fatal(err)
	}
	if m2.Seq() != 5 || !m2.Stored(a) || !m2.Stored(b) {
		t.Fatalf("restored: seq %d", m2.Seq())
	}
	if err := m2.Apply(events.Event{Seq: 6, Type: events.TypeAssetCollected, Payload: events.AssetCollected{SHA256: a, Size: 10}}); err != nil {
		t.Fatal(err)
	}
	if m2.Stored(a) || len(m2.List(leases.Filter{})) != 1 || len(m2.Collected()) != 1 {
		t.Fatal("collected asset still listed")
	}
}

// The same bytes printed by more kernels than Origins keeps: every one of
// them still counts as having stored it (access to /assets and list_assets
// by kernel is decided from it), through a snapshot too.
func TestStoredByPastOriginsCap(t *testing.T) {
	sum := strings.Repeat("c", 64)
	m := leases.New()
	const n = 40
	for i := range n {
		e := events.Event{Seq: uint64(i + 1), Type: events.TypeAssetStored, Payload: events.AssetStored{SHA256: sum, MIME: "image/png", Size: 3,
			KernelID: fmt.Sprintf("k%02d", i), ExecutionID: fmt.Sprintf("x%02d", i)}}
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := m.Get(sum)
	if len(a.Origins) >= n || a.MoreOrigins == 0 {
		t.Fatalf("origins not capped (the test needs more kernels): %d kept, %d more", len(a.Origins), a.MoreOrigins)
	}
	last := fmt.Sprintf("k%02d", n-1)
	if !a.StoredBy(last) || len(a.KernelIDs()) != n {
		t.Fatalf("kernel %s past the cap not counted: %d kernels", last, len(a.KernelIDs()))
	}
	if a.StoredBy("k99") {
		t.Fatal("a kernel that never stored it counts")
	}
	if l := m.List(leases.Filter{KernelID: last}); len(l) != 1 {
		t.Fatalf("list by the last kernel: %d assets", len(l))
	}
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := leases.New()
	if err := m2.Restore(data); err != nil {
		t.Fatal(err)
	}
	if a2, _ := m2.Get(sum); !a2.StoredBy(last) {
		t.Fatal("restored model lost the kernels past the cap")
	}
}
