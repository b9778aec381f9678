package notebook_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// validate runs Debian's nbformat validator on path (the Python that has
// nbformat is /usr/bin/python3, not the first python3 on PATH).
func validate(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nbformat rejects %s: %v\n%s", path, err, out)
	}
}

// bigNotebook is testkit.BigNotebook.
func bigNotebook(t testing.TB, n, cellBytes int) []byte { return testkit.BigNotebook(t, n, cellBytes) }

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
