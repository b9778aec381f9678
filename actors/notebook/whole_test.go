package notebook

import (
	"errors"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// TestDecideWholeFileTranscript: Replace, Rename and Remove — given the
// file and the history, when a command, then these events or this refusal.
func TestDecideWholeFileTranscript(t *testing.T) {
	var seq uint64
	var s State
	body := []byte(`{"cells":[{"cell_type":"code","id":"c1","source":"1","metadata":{"trusted":true},"outputs":[],"execution_count":null}],"metadata":{"signature":"x"},"nbformat":4,"nbformat_minor":5}`)

	// Replace with no file: creates it, keeps nothing, strips transient keys.
	d := mustDecide(t, s, nil, Command{Path: "a.ipynb", By: "jupyter-api", Op: Replace{Bytes: body}})
	p := d.Drafts[0].Payload.(events.NotebookReplaced)
	if p.PrevSHA256 != "" || p.Kept != "" || p.SHA256 != d.Hash || p.Cells != 1 {
		t.Fatalf("replace onto nothing: %+v", p)
	}
	if _, ok := d.Notebook.Metadata["signature"]; ok || string(d.Notebook.Cells[0].Metadata) != "{}" {
		t.Fatalf("transient keys kept: %v %s", d.Notebook.Metadata, d.Notebook.Cells[0].Metadata)
	}
	s = apply(s, &seq, d.Drafts)
	v1 := file(t, d.Notebook)
	if v1.Hash != d.Hash {
		t.Fatal("the decided bytes are not what the file holds")
	}

	// New refuses an existing file; a guard that is not the file's refuses.
	if _, err := Decide(s, v1, Command{Path: "a.ipynb", Op: Replace{Bytes: body, New: true}}); !errors.Is(err, ErrExists) {
		t.Fatalf("new over a file: %v", err)
	}
	var ce *ConflictError
	if _, err := Decide(s, v1, Command{Path: "a.ipynb", ExpectedHash: "stale", Op: Replace{Bytes: body}}); !errors.As(err, &ce) || ce.Current != v1.Hash {
		t.Fatalf("stale guard: %v", err)
	}

	// An output-only write since the guard's version still refuses a
	// replace (the replace would drop those outputs).
	n := 1
	d = mustDecide(t, s, v1, Command{Path: "a.ipynb", Op: WriteOutputs{CellID: "c1", ExecutionID: "x1", ExecutionCount: &n}})
	s = apply(s, &seq, d.Drafts)
	v2 := file(t, d.Notebook)
	if _, err := Decide(s, v2, Command{Path: "a.ipynb", ExpectedHash: v1.Hash, Op: Replace{Bytes: body}}); !errors.As(err, &ce) {
		t.Fatalf("replace guarded by the version before an output write: %v", err)
	}

	// A different save keeps the version it replaces.
	other := []byte(`{"cells":[],"metadata":{},"nbformat":4,"nbformat_minor":5}`)
	d = mustDecide(t, s, v2, Command{Path: "a.ipynb", ExpectedHash: v2.Hash, Op: Replace{Bytes: other}})
	p = d.Drafts[0].Payload.(events.NotebookReplaced)
	if p.PrevSHA256 != v2.Hash || p.Kept != nbfile.ReplacedID(v2.Hash) {
		t.Fatalf("replace: %+v", p)
	}
	s = apply(s, &seq, d.Drafts)
	if len(s.OutputSteps) != 0 || s.Hash != d.Hash {
		t.Fatalf("state after a replace: %+v", s)
	}
	v3 := file(t, d.Notebook)

	// Rename and Remove: of what is there, optionally guarded.
	if _, err := Decide(s, nil, Command{Path: "a.ipynb", Op: Rename{To: "b.ipynb"}}); !errors.Is(err, ErrNoFile) {
		t.Fatalf("rename of nothing: %v", err)
	}
	if _, err := Decide(s, v3, Command{Path: "a.ipynb", ExpectedHash: v2.Hash, Op: Remove{}}); !errors.As(err, &ce) {
		t.Fatalf("stale remove: %v", err)
	}
	d = mustDecide(t, s, v3, Command{Path: "a.ipynb", Op: Rename{To: "b.ipynb"}})
	if r := d.Drafts[0].Payload.(events.NotebookRenamed); r.To != "b.ipynb" || r.SHA256 != v3.Hash {
		t.Fatalf("rename: %+v", r)
	}
	s = apply(s, &seq, d.Drafts)
	if s.Hash != "" {
		t.Fatalf("the old path still has a version after the rename: %+v", s)
	}
	d = mustDecide(t, s, v3, Command{Path: "a.ipynb", ExpectedHash: v3.Hash, Op: Remove{}})
	if r := d.Drafts[0].Payload.(events.NotebookRemoved); r.SHA256 != v3.Hash {
		t.Fatalf("remove: %+v", r)
	}
}
