package testkit

import (
	"os/exec"
	"testing"
)

// ValidateNotebook checks the .ipynb at path with Debian's nbformat
// validator (python3-nbformat in /usr/bin/python3) and fails the test with
// its message if the file is not a valid nbformat 4 notebook.
func ValidateNotebook(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nbformat rejects %s: %v\n%s", path, err, out)
	}
}
