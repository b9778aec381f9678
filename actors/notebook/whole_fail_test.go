package notebook_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestFailedRenameAndRemoveAreNotRecorded: a rename or a removal the file
// system refuses (here: the notebook's directory made immutable, which
// stops even root) answers an error and records nothing — the history
// does not say the notebook moved or went — and the notebook stays usable
// where it is.
func TestFailedRenameAndRemoveAreNotRecorded(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(filepath.Join(e.root, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := e.do(nbactor.Command{Path: "src/a.ipynb", By: "agent", Op: nbactor.Create{KernelSpec: "python3", Language: "python"}})
	dir := filepath.Join(e.root, "src")
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s: %v %s (this test needs root on ext4)", dir, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })

	if _, err := e.m.Do(context.Background(), nbactor.Command{Path: "src/a.ipynb", By: "person", Op: nbactor.Rename{To: "b.ipynb"}}); err == nil {
		t.Fatal("a rename out of an immutable directory succeeded")
	}
	if _, err := e.m.Do(context.Background(), nbactor.Command{Path: "src/a.ipynb", By: "person", Op: nbactor.Remove{}}); err == nil {
		t.Fatal("a removal from an immutable directory succeeded")
	}
	var got []string
	err := e.log.ReadStream(context.Background(), events.NotebookStream(nbactor.StreamID("src/a.ipynb")), 0, func(ev events.Event) error {
		got = append(got, ev.Type)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "NotebookCreated" {
		t.Fatalf("history after a failed rename and removal: %v, want only NotebookCreated", got)
	}
	if _, err := os.Stat(filepath.Join(e.root, "b.ipynb")); !os.IsNotExist(err) {
		t.Fatalf("the failed rename left a file at the target: %v", err)
	}
	if err := exec.Command("chattr", "-i", dir).Run(); err != nil {
		t.Fatal(err)
	}
	e.do(nbactor.Command{Path: "src/a.ipynb", ExpectedHash: r.Hash, By: "agent", Op: nbactor.Insert{Index: 0, Source: "x = 1"}})
	if des, _ := os.ReadDir(dir); len(des) != 2 { // a.ipynb and its lock
		t.Fatalf("the failed removal left files beside the notebook: %v", des)
	}
}
