package events_test

import (
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

func TestUUIDFormRoundTrips(t *testing.T) {
	for range 1000 {
		id := events.NewID(time.Now())
		u, ok := events.UUIDForm(id)
		if !ok || len(u) != 36 || u[8] != '-' || u[13] != '-' {
			t.Fatalf("UUIDForm(%q) = %q, %v", id, u, ok)
		}
		back, ok := events.FromUUIDForm(u)
		if !ok || back != id {
			t.Fatalf("FromUUIDForm(%q) = %q, %v; want %q", u, back, ok, id)
		}
		if events.CanonicalID(u) != id || events.CanonicalID(id) != id {
			t.Fatalf("CanonicalID does not map both forms of %q to it", id)
		}
	}
	for _, bad := range []string{"", "k1", "zzzzzzzzzzzzzzzzzzzzzzzzzz", "8zzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if u, ok := events.UUIDForm(bad); ok {
			t.Errorf("UUIDForm(%q) = %q, want not ok", bad, u)
		}
	}
	for _, bad := range []string{"", "not-a-uuid", "0123456789abcdef0123456789abcdeg", "0123-4567-89ab-cdef-0123456789abcdef0"} {
		if id, ok := events.FromUUIDForm(bad); ok {
			t.Errorf("FromUUIDForm(%q) = %q, want not ok", bad, id)
		}
	}
}
