package notebook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

type env struct {
	t    *testing.T
	root string
	log  *eventlog.Log
	m    *nbactor.Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	r, err := nbfile.NewRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	l := testkit.OpenLog(t, filepath.Join(testkit.TempDataDir(t), "events"))
	m := nbactor.NewManager(nbactor.Config{Root: r, Log: l})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &env{t: t, root: r.Dir(), log: l, m: m}
}

func (e *env) do(c nbactor.Command) nbactor.Result {
	e.t.Helper()
	r, err := e.m.Do(context.Background(), c)
	if err != nil {
		e.t.Fatalf("%+v: %v", c.Op, err)
	}
	testkit.ValidateNotebook(e.t, filepath.Join(e.root, c.Path))
	return r
}

func (e *env) bytes(p string) []byte {
	b, err := os.ReadFile(filepath.Join(e.root, p))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func TestEditsAreWrittenValidAndRecorded(t *testing.T) {
	e := newEnv(t)
	r := e.do(nbactor.Command{Path: "a.ipynb", By: "agent-1", Op: nbactor.Create{KernelSpec: "python3", Language: "python"}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, By: "agent-1", Op: nbactor.Insert{Index: 0, Source: "x = 1"}})
	first := r.CellID
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, By: "agent-2", Op: nbactor.Insert{Index: 1, CellType: "markdown", Source: "# Notes"}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, By: "agent-1", Op: nbactor.Edit{Cell: first, Source: "x = 2"}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, By: "agent-2", Op: nbactor.Move{Cell: first, To: 1}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, By: "agent-2", Op: nbactor.Delete{Cell: "0"}})
	if nbfile.Hash(e.bytes("a.ipynb")) != r.Hash {
		t.Fatal("the returned hash must be the file's")
	}
	f, _, err := e.m.Read("a.ipynb")
	if err != nil || len(f.Notebook.Cells) != 1 || f.Notebook.Cells[0].Source != "x = 2" {
		t.Fatalf("file: %v %+v", err, f)
	}
	// The history says who changed which cell, in order.
	var got []string
	err = e.log.ReadStream(context.Background(), events.NotebookStream(nbactor.StreamID("a.ipynb")), 0, func(ev events.Event) error {
		b, _ := ev.MarshalJSON()
		by := ""
		if i := strings.Index(string(b), `"by":"`); i >= 0 {
			by = strings.SplitN(string(b)[i+6:], `"`, 2)[0]
		}
		got = append(got, ev.Type+"/"+by)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "NotebookCreated/agent-1 NotebookCellInserted/agent-1 NotebookCellInserted/agent-2 NotebookCellEdited/agent-1 NotebookCellMoved/agent-2 NotebookCellDeleted/agent-2"
	if strings.Join(got, " ") != want {
		t.Fatalf("history:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestTwoAgentsAreSerialized: many agents edit one notebook at once, each
// re-reading and retrying when refused. Every edit lands, none is lost.
func TestTwoAgentsAreSerialized(t *testing.T) {
	e := newEnv(t)
	e.do(nbactor.Command{Path: "n.ipynb", Op: nbactor.Create{KernelSpec: "python3"}})
	const agents, edits = 4, 5
	var wg sync.WaitGroup
	var conflicts sync.Map
	for a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range edits {
				for {
					f, _, err := e.m.Read("n.ipynb")
					if err != nil {
						t.Error(err)
						return
					}
					_, err = e.m.Do(context.Background(), nbactor.Command{Path: "n.ipynb", ExpectedHash: f.Hash, By: fmt.Sprint("agent-", a),
						Op: nbactor.Insert{Index: len(f.Notebook.Cells), Source: fmt.Sprintf("agent %d edit %d", a, i)}})
					if err == nil {
						break
					}
					if !errors.Is(err, nbactor.ErrChanged) {
						t.Error(err)
						return
					}
					conflicts.Store(a, true)
				}
			}
		}()
	}
	testkit.WaitGroup(t, &wg, 2*time.Minute, "the agents' edits")
	f, _, err := e.m.Read("n.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Notebook.Cells) != agents*edits {
		t.Fatalf("%d cells, want %d: an edit was lost", len(f.Notebook.Cells), agents*edits)
	}
	testkit.ValidateNotebook(t, filepath.Join(e.root, "n.ipynb"))
}

// TestRefusalsLeaveTheFileUntouched: a change on disk since the agent read,
// a lock held by another writer, an unknown cell, a path outside the root, a
// file that is not a notebook: a clear error, the same bytes.
func TestRefusalsLeaveTheFileUntouched(t *testing.T) {
	e := newEnv(t)
	r := e.do(nbactor.Command{Path: "a.ipynb", Op: nbactor.Create{KernelSpec: "python3"}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, Op: nbactor.Insert{Source: "agent"}})
	read := r.Hash
	agentCell := r.CellID

	// A person edits the file in JupyterLab.
	f, _, _ := e.m.Read("a.ipynb")
	nb := f.Notebook.Clone()
	_ = nb.Edit(0, "person's change", "")
	_, _ = nb.Insert(1, nbfile.Cell{ID: "pcell", Source: "new"})
	b, _ := nb.Marshal()
	if err := os.WriteFile(filepath.Join(e.root, "a.ipynb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	refused := func(name string, c nbactor.Command, target error, words ...string) {
		t.Helper()
		before := e.bytes(c.Path)
		_, err := e.m.Do(context.Background(), c)
		if err == nil || (target != nil && !errors.Is(err, target)) {
			t.Fatalf("%s: want %v, got %v", name, target, err)
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", name, err, w)
			}
		}
		if string(e.bytes(c.Path)) != string(before) {
			t.Fatalf("%s: the file changed", name)
		}
	}
	refused("changed on disk", nbactor.Command{Path: "a.ipynb", ExpectedHash: read, Op: nbactor.Edit{Cell: agentCell, Source: "mine"}},
		nbactor.ErrChanged, "cells added: pcell", "source changed: "+agentCell, "read_notebook again")

	cur := nbfile.Hash(e.bytes("a.ipynb"))
	unlock, err := nbfile.Lock(filepath.Join(e.root, "a.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	refused("locked", nbactor.Command{Path: "a.ipynb", ExpectedHash: cur, Op: nbactor.Delete{Cell: "pcell"}}, nbfile.ErrLocked, "pid")
	unlock()
	refused("unknown cell", nbactor.Command{Path: "a.ipynb", ExpectedHash: cur, Op: nbactor.Delete{Cell: "nope"}}, nbfile.ErrUnknownCell, "read_notebook")
	refused("bad index", nbactor.Command{Path: "a.ipynb", ExpectedHash: cur, Op: nbactor.Move{Cell: "pcell", To: 9}}, nbfile.ErrBadCell)
	refused("no hash", nbactor.Command{Path: "a.ipynb", Op: nbactor.Delete{Cell: "pcell"}}, nbactor.ErrNoHash)
	refused("create over", nbactor.Command{Path: "a.ipynb", Op: nbactor.Create{KernelSpec: "python3"}}, nbactor.ErrExists)

	if err := os.WriteFile(filepath.Join(e.root, "bad.ipynb"), []byte("not json {"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("not JSON", nbactor.Command{Path: "bad.ipynb", ExpectedHash: "x", Op: nbactor.Insert{Source: "x"}}, nbfile.ErrFormat, "not JSON")
	if err := os.WriteFile(filepath.Join(e.root, "v3.ipynb"), []byte(`{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("nbformat 3", nbactor.Command{Path: "v3.ipynb", ExpectedHash: "x", Op: nbactor.Insert{Source: "x"}}, nbfile.ErrFormat, "nbformat 3")
	if _, err := e.m.Do(context.Background(), nbactor.Command{Path: "../out.ipynb", Op: nbactor.Create{KernelSpec: "python3"}}); !errors.Is(err, nbfile.ErrOutsideRoot) {
		t.Fatalf("outside root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(e.root), "out.ipynb")); err == nil {
		t.Fatal("a file was created outside the root")
	}
}

// TestHistoryReplays: a new manager on the same log recovers each
// notebook's state, so the outputs-only chain still accepts an agent's hash.
func TestHistoryReplays(t *testing.T) {
	e := newEnv(t)
	r := e.do(nbactor.Command{Path: "a.ipynb", Op: nbactor.Create{KernelSpec: "python3"}})
	r = e.do(nbactor.Command{Path: "a.ipynb", ExpectedHash: r.Hash, Op: nbactor.Insert{Source: "1+1"}})
	read, cell := r.Hash, r.CellID
	one := 1
	e.do(nbactor.Command{Path: "a.ipynb", By: nbactor.By, Op: nbactor.WriteOutputs{CellID: cell, ExecutionID: "x1", ExecutionCount: &one}})
	if err := e.m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r2, _ := nbfile.NewRoot(e.root)
	m2 := nbactor.NewManager(nbactor.Config{Root: r2, Log: e.log})
	defer m2.Close(context.Background())
	res, err := m2.Do(context.Background(), nbactor.Command{Path: "a.ipynb", ExpectedHash: read, Op: nbactor.Edit{Cell: cell, Source: "2+2"}})
	if err != nil {
		t.Fatalf("after a restart the agent's hash from before the outputs write must still be accepted: %v", err)
	}
	if c := res.Notebook.Cells[0]; c.Source != "2+2" || c.ExecutionCount == nil || *c.ExecutionCount != 1 {
		t.Fatalf("cell: %+v", c)
	}
}
