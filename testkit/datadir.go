package testkit

import (
	"path/filepath"
	"testing"
)

// TempDataDir returns a fresh, empty data dir path (not yet created) inside
// the test's temporary directory, removed when the test ends.
func TempDataDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "data")
}
