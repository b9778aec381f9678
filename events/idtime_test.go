package events

import (
	"testing"
	"time"
)

func TestIDTimeRoundTrips(t *testing.T) {
	for _, at := range []time.Time{time.UnixMilli(0).UTC(), time.Date(2026, 12, 1, 6, 30, 0, 123e6, time.UTC), time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)} {
		got, ok := IDTime(NewID(at))
		if !ok || !got.Equal(at) {
			t.Fatalf("IDTime(NewID(%s)) = %s, %v", at, got, ok)
		}
	}
	for _, bad := range []string{"", "x-client-id", "01JK0000000000000000000000", "0123456789abcdefghjkmnpqrs!"} {
		if _, ok := IDTime(bad); ok {
			t.Fatalf("IDTime(%q) ok for an id NewID did not make", bad)
		}
	}
}
