package notebook_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestNotebookEventsCarryThePrincipal: alice's edits carry alice; the
// outputs of bob's execution of a cell, written into the file by the
// server, carry bob (the submitter), read back from the log.
func TestNotebookEventsCarryThePrincipal(t *testing.T) {
	st := testkit.StartStack(t, "")
	root := t.TempDir()
	r, _ := nbfile.NewRoot(root)
	m := nbactor.NewManager(nbactor.Config{Root: r, Log: st.Log})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	w := &nbactor.OutputWriter{Log: st.Log, Manager: m}
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	res, err := m.Do(ctx, nbactor.Command{Path: "p.ipynb", Principal: "alice", Op: nbactor.Create{KernelSpec: "python3", Language: "python"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = m.Do(ctx, nbactor.Command{Path: "p.ipynb", ExpectedHash: res.Hash, Principal: "alice", Op: nbactor.Insert{Index: 0, Source: "print('hi')"}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.System.StartKernel(ctx, "python3", "", "p.ipynb", "alice")
	if err != nil {
		t.Fatal(err)
	}
	x, err := st.System.Submit(ctx, k.ID, scheduler.Submit{Code: "print('hi')", Notebook: "p.ipynb", CellID: res.CellID, By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitOutputsWritten(t, st.Log, filepath.Join(root, "p.ipynb"), x.ID)
	var got []string
	err = st.Log.ReadStreams(ctx, "notebook/", 0, func(e events.Event) error {
		got = append(got, e.Type+"@"+e.Principal)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NotebookCreated@alice NotebookCellInserted@alice NotebookOutputsWritten@bob"; strings.Join(got, " ") != want {
		t.Fatalf("notebook events:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
