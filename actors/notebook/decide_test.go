package notebook

import (
	"errors"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// file is a notebook as if read from disk.
func file(t *testing.T, nb *nbfile.Notebook) *nbfile.File {
	t.Helper()
	b, err := nb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := nbfile.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return &nbfile.File{Bytes: b, Hash: nbfile.Hash(b), Notebook: back}
}

func apply(s State, seq *uint64, ds []events.Draft) State {
	for _, d := range ds {
		*seq++
		s = Apply(s, events.Event{Seq: *seq, Time: time.Unix(int64(*seq), 0), Stream: d.Stream, Type: d.Payload.EventType(), Payload: d.Payload})
	}
	return s
}

func mustDecide(t *testing.T, s State, cur *nbfile.File, c Command) Decision {
	t.Helper()
	d, err := Decide(s, cur, c)
	if err != nil {
		t.Fatalf("%s: %v", c.Op.opName(), err)
	}
	return d
}

// TestDecideTranscript: given the file and the history, when a command,
// then these events or this refusal.
func TestDecideTranscript(t *testing.T) {
	var seq uint64
	var s State
	d := mustDecide(t, s, nil, Command{Path: "a.ipynb", By: "agent-1", Op: Create{KernelSpec: "python3", Language: "python"}})
	if p, ok := d.Drafts[0].Payload.(events.NotebookCreated); !ok || p.SHA256 != d.Hash || p.By != "agent-1" || d.Drafts[0].Stream != events.NotebookStream(StreamID("a.ipynb")) {
		t.Fatalf("create: %+v", d.Drafts)
	}
	s = apply(s, &seq, d.Drafts)
	v0 := file(t, d.Notebook)
	if _, err := Decide(s, v0, Command{Path: "a.ipynb", Op: Create{KernelSpec: "python3"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a file: %v", err)
	}
	if _, err := Decide(s, v0, Command{Path: "a.ipynb", Op: Insert{Source: "x"}}); !errors.Is(err, ErrNoHash) {
		t.Fatalf("edit without a hash: %v", err)
	}

	d = mustDecide(t, s, v0, Command{Path: "a.ipynb", ExpectedHash: v0.Hash, By: "agent-1", Op: Insert{Index: 0, Source: "1+1"}})
	ins := d.Drafts[0].Payload.(events.NotebookCellInserted)
	if ins.PrevSHA256 != v0.Hash || ins.SHA256 != d.Hash || ins.CellType != "code" || ins.CellID == "" {
		t.Fatalf("insert: %+v", ins)
	}
	s = apply(s, &seq, d.Drafts)
	v1 := file(t, d.Notebook)

	// The agent's stale hash is refused...
	if _, err := Decide(s, v1, Command{Path: "a.ipynb", ExpectedHash: v0.Hash, Op: Edit{Cell: ins.CellID, Source: "2"}}); !errors.Is(err, ErrChanged) {
		t.Fatalf("stale hash: %v", err)
	}
	// ...but outputs this server wrote in between do not count as a change.
	one := 1
	d = mustDecide(t, s, v1, Command{Path: "a.ipynb", By: By, Op: WriteOutputs{CellID: ins.CellID, ExecutionID: "x1", ExecutionCount: &one}})
	s = apply(s, &seq, d.Drafts)
	v2 := file(t, d.Notebook)
	d = mustDecide(t, s, v2, Command{Path: "a.ipynb", ExpectedHash: v1.Hash, By: "agent-2", Op: Edit{Cell: ins.CellID, Source: "2+2"}})
	if d.Notebook.Cells[0].Source != "2+2" || *d.Notebook.Cells[0].ExecutionCount != 1 {
		t.Fatalf("edit on top of written outputs: %+v", d.Notebook.Cells[0])
	}
	s = apply(s, &seq, d.Drafts)
	v3 := file(t, d.Notebook)
	// A person's save (a hash this server never wrote) is refused.
	person := v3.Notebook.Clone()
	_ = person.Edit(0, "person's code", "")
	pv := file(t, person)
	var ce *ConflictError
	if _, err := Decide(s, pv, Command{Path: "a.ipynb", ExpectedHash: v3.Hash, Op: Delete{Cell: "0"}}); !errors.As(err, &ce) || ce.Current != pv.Hash {
		t.Fatalf("person's edit: %v", err)
	}
	if _, err := Decide(s, v3, Command{Path: "a.ipynb", ExpectedHash: v3.Hash, Op: Delete{Cell: "nope"}}); !errors.Is(err, nbfile.ErrUnknownCell) {
		t.Fatalf("unknown cell: %v", err)
	}
	d = mustDecide(t, s, v3, Command{Path: "a.ipynb", ExpectedHash: v3.Hash, Op: Delete{Cell: ins.CellID}})
	if del := d.Drafts[0].Payload.(events.NotebookCellDeleted); del.Source != "2+2" || del.Index != 0 {
		t.Fatalf("delete records what was deleted: %+v", del)
	}
	s = apply(s, &seq, d.Drafts)
	if s.Hash != d.Hash || s.Changes != 5 || len(s.OutputSteps) != 1 {
		t.Fatalf("state: %+v", s)
	}
	if _, err := Decide(s, file(t, d.Notebook), Command{Path: "a.ipynb", Op: WriteOutputs{CellID: ins.CellID, ExecutionID: "x2"}}); !errors.Is(err, nbfile.ErrUnknownCell) {
		t.Fatalf("outputs for a deleted cell: %v", err)
	}
}

func TestOutputStepsAreBounded(t *testing.T) {
	var s State
	var seq uint64
	for i := range maxOutputSteps * 3 {
		s = apply(s, &seq, []events.Draft{{Stream: "notebook/x", Payload: events.NotebookOutputsWritten{ExecutionID: "x",
			PrevSHA256: string(rune('a' + i%26)), SHA256: string(rune('A' + i%26))}}})
	}
	if len(s.OutputSteps) != maxOutputSteps {
		t.Fatalf("output steps: %d, want the bound %d", len(s.OutputSteps), maxOutputSteps)
	}
}
