package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCatalogIsCurrent fails when docs/events.md lags behind events/: run
// `go generate ./events`.
func TestCatalogIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events.md")
	if err := generate("../../events", out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/events.md is stale: run `go generate ./events`")
	}
}
