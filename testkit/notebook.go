package testkit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
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

// BigNotebook returns the bytes of an nbformat 4.5 notebook of n code cells
// of about cellBytes each, mostly outputs (a stream of log lines and a
// base64 image-sized blob), as Jupyter writes them.
func BigNotebook(t testing.TB, n, cellBytes int) []byte {
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

// WaitFileHash waits until the file at path has the sha256 want (a test
// helper: it polls, which non-test code must not).
func WaitFileHash(t testing.TB, path, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && notebook.Hash(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became version %s (read error %v)", path, want, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitOutputsWritten waits until NotebookOutputsWritten is in the log for
// every execution id, then until the file at path is the newest of those
// versions (the event is durable before the rename puts the file in place).
func WaitOutputsWritten(t testing.TB, l *eventlog.Log, path string, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var last string
	stop := errors.New("found")
	err := l.Follow(ctx, 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.NotebookOutputsWritten); ok && want[p.ExecutionID] {
			delete(want, p.ExecutionID)
			last = p.SHA256
			if len(want) == 0 {
				return stop
			}
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("outputs of %v not written: %v", want, err)
	}
	WaitFileHash(t, path, last, 30*time.Second)
}
