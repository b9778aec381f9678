package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// notebookCore opens a core whose notebook root is a fresh temp dir and an
// in-process MCP client on it.
func notebookCore(t testing.TB) (*core, *client.Client, string) {
	t.Helper()
	root := t.TempDir()
	t.Setenv("MCP_NOTEBOOK_ROOT", root)
	cfg := testConfig(t, testkit.TempDataDir(t))
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl, root
}

func must(t testing.TB, cl *client.Client, tool string, args map[string]any) map[string]any {
	t.Helper()
	sc, text := callTool(t, cl, tool, args)
	if strings.HasPrefix(text, "ERROR") {
		t.Fatalf("%s: %s", tool, text)
	}
	return sc
}

// TestNotebookToolsAgainstRealKernel drives the notebook tools as an agent
// does: create, insert, bind a kernel, run cells, read the outputs back, and
// be refused when a person changed the file meanwhile.
func TestNotebookToolsAgainstRealKernel(t *testing.T) {
	c, cl, root := notebookCore(t)
	if _, text := callTool(t, cl, "create_notebook", map[string]any{"path": "work/analysis.ipynb"}); !strings.Contains(text, "does not exist") {
		t.Fatalf("create in a missing directory: %s", text)
	}
	if err := os.MkdirAll(filepath.Join(root, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := must(t, cl, "create_notebook", map[string]any{"path": "work/analysis.ipynb"})
	hash := sc["sha256"].(string)
	path := filepath.Join(root, "work", "analysis.ipynb")
	testkit.ValidateNotebook(t, path)

	sources := []string{"print('hello')", "40 + 2",
		"import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()", "1/0"}
	var cells []string
	for _, src := range sources {
		sc = must(t, cl, "insert_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": hash, "source": src})
		hash, cells = sc["sha256"].(string), append(cells, sc["cell_id"].(string))
	}
	must(t, cl, "insert_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": hash, "source": "# Results", "cell_type": "markdown", "index": 0})
	_, text := callTool(t, cl, "run_cell", map[string]any{"path": "work/analysis.ipynb", "cell": cells[0]})
	if !strings.Contains(text, "no kernel is bound") || !strings.Contains(text, "start_kernel") {
		t.Fatalf("run_cell without a kernel: %s", text)
	}
	must(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "notebook": "work/analysis.ipynb"})

	var execs []string
	for i, id := range cells {
		sc, text := callTool(t, cl, "run_cell", map[string]any{"path": "work/analysis.ipynb", "cell": id, "timeout_s": 60})
		if strings.HasPrefix(text, "ERROR") || sc["cell_id"] != id {
			t.Fatalf("run_cell %d: %s", i, text)
		}
		execs = append(execs, sc["execution_id"].(string))
		switch i {
		case 0:
			if sc["status"] != "ok" || !strings.Contains(text, "hello") {
				t.Fatalf("run_cell print: %s", text)
			}
		case 3:
			if sc["status"] != "error" || !strings.Contains(text, "ZeroDivisionError") {
				t.Fatalf("run_cell error: %s", text)
			}
		}
	}
	testkit.WaitOutputsWritten(t, c.log, path, execs...)
	testkit.ValidateNotebook(t, path)
	b, _ := os.ReadFile(path)
	for _, want := range []string{`"output_type": "stream"`, `"hello\n"`, `"output_type": "execute_result"`, `"42"`,
		`"output_type": "display_data"`, `"image/png": "iVBOR`, `"output_type": "error"`, `"ename": "ZeroDivisionError"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the file lacks %s", want)
		}
	}

	// read_notebook shows sources, outputs (the PNG inline) and the hash.
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "read_notebook", map[string]any{"path": "work/analysis.ipynb"}
	res, err := cl.CallTool(asAdmin(context.Background()), req)
	if err != nil || res.IsError {
		t.Fatalf("read_notebook: %v %+v", err, res)
	}
	var all strings.Builder
	images := 0
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			all.WriteString(tc.Text + "\n")
		}
		if _, ok := mcp.AsImageContent(ct); ok {
			images++
		}
	}
	read := res.StructuredContent.(map[string]any)
	for _, want := range []string{"# Results", "hello", "Out[", "42", "ZeroDivisionError", "kernel_id:"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("read_notebook lacks %q:\n%s", want, all.String())
		}
	}
	if images != 1 {
		t.Errorf("read_notebook: %d images inline, want the matplotlib PNG", images)
	}
	hash = read["sha256"].(string)

	// A person edits the notebook in JupyterLab: the agent's stale edit is
	// refused with what changed, and the file is untouched.
	person := strings.Replace(string(b), `"40 + 2"`, `"40 + 3"`, 1)
	if err := os.WriteFile(path, []byte(person), 0o644); err != nil {
		t.Fatal(err)
	}
	_, text = callTool(t, cl, "edit_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": hash, "cell": cells[1], "source": "x"})
	if !strings.Contains(text, "changed on disk") || !strings.Contains(text, "source changed: "+cells[1]) {
		t.Fatalf("stale edit: %s", text)
	}
	if got, _ := os.ReadFile(path); string(got) != person {
		t.Fatal("a refused edit changed the file")
	}
	// Bad input: outside the root, unknown cell, not a notebook.
	_, text = callTool(t, cl, "read_notebook", map[string]any{"path": "../../etc/x.ipynb"})
	if !strings.Contains(text, "notebook root") {
		t.Fatalf("outside root: %s", text)
	}
	sc = must(t, cl, "read_notebook", map[string]any{"path": "work/analysis.ipynb", "outputs": false})
	_, text = callTool(t, cl, "delete_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": sc["sha256"], "cell": "nope"})
	if !strings.Contains(text, "no cell has id") {
		t.Fatalf("unknown cell: %s", text)
	}
	if err := os.WriteFile(filepath.Join(root, "junk.ipynb"), []byte("{oops"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, text = callTool(t, cl, "read_notebook", map[string]any{"path": "junk.ipynb"})
	if !strings.Contains(text, "not JSON") {
		t.Fatalf("not JSON: %s", text)
	}

	// run_all queues every code cell in order; move and delete still work.
	sc = must(t, cl, "run_all", map[string]any{"path": "work/analysis.ipynb", "timeout_s": 60})
	rows := sc["cells"].([]any)
	if len(rows) != 4 {
		t.Fatalf("run_all: %v", sc)
	}
	var runIDs []string
	for _, r := range rows {
		runIDs = append(runIDs, r.(map[string]any)["execution_id"].(string))
	}
	testkit.WaitOutputsWritten(t, c.log, path, runIDs...)
	sc = must(t, cl, "read_notebook", map[string]any{"path": "work/analysis.ipynb", "outputs": false})
	sc = must(t, cl, "move_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": sc["sha256"], "cell": cells[3], "to": 0})
	must(t, cl, "delete_cell", map[string]any{"path": "work/analysis.ipynb", "expected_hash": sc["sha256"], "cell": "0"})
	testkit.ValidateNotebook(t, path)
	// The log says who changed which cell, and when.
	var history []string
	_ = c.log.Read(context.Background(), 0, 0, func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.NotebookCellInserted:
			history = append(history, "insert "+p.CellID+" by "+p.By)
		case events.NotebookCellMoved:
			history = append(history, "move "+p.CellID+" by "+p.By)
		case events.NotebookOutputsWritten:
			history = append(history, "outputs "+p.CellID+" by "+p.By)
		}
		if e.Time.IsZero() {
			t.Errorf("event %d has no time", e.Seq)
		}
		return nil
	})
	joined := strings.Join(history, "\n")
	if !strings.Contains(joined, "insert "+cells[0]+" by e2e") || !strings.Contains(joined, "move "+cells[3]+" by e2e") ||
		!strings.Contains(joined, "outputs "+cells[0]+" by mcp-jupyter") {
		t.Fatalf("history does not say who changed which cell:\n%s", joined)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "1/0") || !strings.Contains(string(b), `"40 + 3"`) {
		t.Fatal("moved-then-deleted cell still there, or the person's edit lost")
	}
}
