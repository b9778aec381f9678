package notebook_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func outputTypes(c nbfile.Cell) []string {
	var ts []string
	for _, o := range c.Outputs {
		var m map[string]any
		_ = json.Unmarshal(o, &m)
		ts = append(ts, m["output_type"].(string))
	}
	return ts
}

// TestRunCellsWritesOutputsIntoTheFile runs cells on a real kernel and
// checks the outputs in the file as Jupyter writes them: stream,
// execute_result, display_data with a matplotlib PNG, error — also for an
// execution that finished while no writer ran (a server restart).
func TestRunCellsWritesOutputsIntoTheFile(t *testing.T) {
	st := testkit.StartStack(t, "")
	root := t.TempDir()
	r, _ := nbfile.NewRoot(root)
	m := nbactor.NewManager(nbactor.Config{Root: r, Log: st.Log})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := &nbactor.OutputWriter{Log: st.Log, Manager: m}
	go func() { done <- w.Run(ctx) }()

	res, err := m.Do(ctx, nbactor.Command{Path: "run.ipynb", Op: nbactor.Create{KernelSpec: "python3", Language: "python"}})
	if err != nil {
		t.Fatal(err)
	}
	hash := res.Hash
	sources := []string{
		"print('hello')\nprint('world')",
		"40 + 2",
		"import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
		"raise ValueError('boom')",
	}
	var cells []string
	for i, src := range sources {
		res, err := m.Do(ctx, nbactor.Command{Path: "run.ipynb", ExpectedHash: hash, Op: nbactor.Insert{Index: i, Source: src}})
		if err != nil {
			t.Fatal(err)
		}
		hash, cells = res.Hash, append(cells, res.CellID)
	}
	k, err := st.System.StartKernel(ctx, "python3", "", "run.ipynb", "admin")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, src := range sources {
		x, err := st.System.Submit(ctx, k.ID, scheduler.Submit{Code: src, Notebook: "run.ipynb", CellID: cells[i]})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, x.ID)
	}
	testkit.WaitOutputsWritten(t, st.Log, filepath.Join(root, "run.ipynb"), ids...)
	path := filepath.Join(root, "run.ipynb")
	testkit.ValidateNotebook(t, path)
	f, err := nbfile.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Notebook.Cells
	if got := outputTypes(c[0]); strings.Join(got, ",") != "stream" || !strings.Contains(string(c[0].Outputs[0]), `"hello\n",`) {
		t.Fatalf("cell 0 (two prints, one merged stream split in lines): %v %s", got, c[0].Outputs)
	}
	if got := outputTypes(c[1]); strings.Join(got, ",") != "execute_result" || !strings.Contains(string(c[1].Outputs[0]), `"42"`) || c[1].ExecutionCount == nil {
		t.Fatalf("cell 1: %v %s", got, c[1].Outputs)
	}
	if got := outputTypes(c[2]); !strings.Contains(strings.Join(got, ","), "display_data") || !strings.Contains(string(c[2].Outputs[len(c[2].Outputs)-1]), `"image/png": "iVBOR`) &&
		!strings.Contains(string(c[2].Outputs[len(c[2].Outputs)-1]), `"image/png":"iVBOR`) {
		t.Fatalf("cell 2 (matplotlib PNG): %v", got)
	}
	if got := outputTypes(c[3]); strings.Join(got, ",") != "error" || !strings.Contains(string(c[3].Outputs[0]), "ValueError") {
		t.Fatalf("cell 3: %v %s", got, c[3].Outputs)
	}
	for i := 1; i < 4; i++ {
		if *c[i].ExecutionCount <= *c[i-1].ExecutionCount {
			t.Fatalf("execution counts must increase: %d then %d", *c[i-1].ExecutionCount, *c[i].ExecutionCount)
		}
	}
	// The agent's hash from before the runs still edits: only outputs
	// changed since, and this server wrote them.
	if _, err := m.Do(ctx, nbactor.Command{Path: "run.ipynb", ExpectedHash: hash, Op: nbactor.Edit{Cell: cells[1], Source: "40 + 3"}}); err != nil {
		t.Fatalf("edit after runs: %v", err)
	}

	// Stop the writer; an execution finishes meanwhile; a new writer
	// catches up and writes it (once).
	cancel()
	if err := testkit.Receive(t, done, 30*time.Second, "the outputs writer stops"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("outputs writer: %v", err)
	}
	x, err := st.System.Submit(context.Background(), k.ID, scheduler.Submit{Code: "40 + 3", Notebook: "run.ipynb", CellID: cells[1]})
	if err != nil {
		t.Fatal(err)
	}
	st.WaitExecution(x.ID, 60*time.Second)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w2 := &nbactor.OutputWriter{Log: st.Log, Manager: m}
	go func() { done <- w2.Run(ctx2) }()
	testkit.WaitOutputsWritten(t, st.Log, filepath.Join(root, "run.ipynb"), x.ID)
	f, _ = nbfile.ReadFile(path)
	if !strings.Contains(string(f.Notebook.Cells[1].Outputs[0]), `"43"`) {
		_ = st.Log.Read(context.Background(), 0, 0, func(e events.Event) error {
			if events.StreamKind(e.Stream) == "notebook" || e.Type == events.TypeExecutionQueued || e.Type == events.TypeExecutionFinished {
				b, _ := e.MarshalJSON()
				t.Logf("%s", b)
			}
			return nil
		})
		t.Fatalf("caught-up write of %s: %s", x.ID, f.Notebook.Cells[1].Outputs)
	}
	count := 0
	_ = st.Log.Read(context.Background(), 0, 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.NotebookOutputsWritten); ok && p.By == nbactor.By {
			count++
		}
		return nil
	})
	if count != 5 {
		t.Fatalf("%d outputs writes, want 5 (each execution once)", count)
	}
	cancel2()
	if err := testkit.Receive(t, done, 30*time.Second, "the second outputs writer stops"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("outputs writer: %v", err)
	}
}

// TestPendingIsBounded: past MaxPending the oldest waiting execution is
// dropped (and counted), never an unbounded map.
func TestPendingIsBounded(t *testing.T) {
	l := testkit.OpenLog(t, filepath.Join(testkit.TempDataDir(t), "events"))
	var drafts []events.Draft
	for i := range 10 {
		id := "x" + string(rune('a'+i))
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(id), Kernel: "k",
			Payload: events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1", Notebook: "a.ipynb", CellID: "c"}})
	}
	testkit.AppendAll(t, l, drafts)
	r, _ := nbfile.NewRoot(t.TempDir())
	m := nbactor.NewManager(nbactor.Config{Root: r, Log: l})
	defer m.Close(context.Background())
	w := &nbactor.OutputWriter{Log: l, Manager: m, MaxPending: 3}
	if _, err := w.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Pending() != 3 || w.Dropped != 7 {
		t.Fatalf("pending %d dropped %d, want 3 and 7", w.Pending(), w.Dropped)
	}
}

// TestOutputsOfOtherNodesAreNotWritten: in a cluster the log also holds the
// cell executions other nodes queued (imported); a writer for node b waits
// only for b's own, whatever the others' say.
func TestOutputsOfOtherNodesAreNotWritten(t *testing.T) {
	dir := filepath.Join(testkit.TempDataDir(t), "events")
	l := testkit.OpenLogWith(t, dir, eventlog.Options{Node: "b"})
	var foreign []events.Event
	for i := range 4 {
		id := "xa" + string(rune('a'+i))
		e := events.Event{Time: time.Now(), Stream: events.ExecutionStream(id), Kernel: "ka", Node: "a", Type: events.TypeExecutionQueued,
			Payload: events.ExecutionQueued{ExecutionID: id, KernelID: "ka", Code: "1", Notebook: "a.ipynb", CellID: "c"}}
		e.Version, _ = events.CurrentVersion(e.Type)
		raw, err := json.Marshal(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		e.Raw = raw
		foreign = append(foreign, e)
	}
	if err := l.AppendForeign(context.Background(), 1, foreign); err != nil {
		t.Fatal(err)
	}
	testkit.AppendAll(t, l, []events.Draft{{Stream: events.ExecutionStream("xb"), Kernel: "kb",
		Payload: events.ExecutionQueued{ExecutionID: "xb", KernelID: "kb", Code: "1", Notebook: "b.ipynb", CellID: "c"}}})
	r, _ := nbfile.NewRoot(t.TempDir())
	m := nbactor.NewManager(nbactor.Config{Root: r, Log: l})
	defer m.Close(context.Background())
	w := &nbactor.OutputWriter{Log: l, Manager: m, Node: "b"}
	if _, err := w.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Pending() != 1 {
		t.Fatalf("writer for node b waits for %d cell executions, want only b's 1", w.Pending())
	}
}
