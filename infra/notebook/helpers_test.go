package notebook_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
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

// bigNotebook builds a notebook of n code cells of about cellBytes each,
// mostly outputs (text and a PNG-sized base64 blob), as Jupyter writes them.
func bigNotebook(t testing.TB, n, cellBytes int) []byte {
	t.Helper()
	nb := notebook.New("python3", "Python 3", "python")
	png := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x89PNG-ish", cellBytes/2/8+1)))[:cellBytes/2]
	text := strings.Repeat("loss 0.1234 accuracy 0.9876 epoch\n", cellBytes/2/34+1)[:cellBytes/2]
	for i := range n {
		count := i + 1
		stream, _ := json.Marshal(map[string]any{"output_type": "stream", "name": "stdout", "text": notebook.SplitLines(text)})
		disp, _ := json.Marshal(map[string]any{"output_type": "display_data", "metadata": map[string]any{},
			"data": map[string]any{"image/png": png, "text/plain": []string{"<Figure>"}}})
		if _, err := nb.Insert(i, notebook.Cell{Type: notebook.TypeCode, Source: fmt.Sprintf("for e in range(%d):\n    train(e)\n", i),
			ExecutionCount: &count, Outputs: []json.RawMessage{stream, disp}}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := nb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
