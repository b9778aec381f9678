package notebook

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJupyterJSONJoinsLinesAsNbformatReads: sources, stream texts and
// non-JSON MIME data are joined; JSON MIME data stays a list.
func TestJupyterJSONJoinsLinesAsNbformatReads(t *testing.T) {
	in := `{"cells":[{"cell_type":"code","id":"a","source":["x = 1\n","x"],"metadata":{},"execution_count":1,
	 "outputs":[{"output_type":"stream","name":"stdout","text":["a\n","b\n"]},
	  {"output_type":"execute_result","execution_count":1,"metadata":{},"data":{"text/plain":["1\n","2"],"application/json":["k","v"],"application/vnd.x+json":[1,2]}}]},
	 {"cell_type":"markdown","id":"b","source":["# T\n","<b>&</b>"],"metadata":{},"attachments":{"i.png":{"image/png":["AA","BB"]}}}],
	 "metadata":{"n":1.50},"nbformat":4,"nbformat_minor":5}`
	out, err := JupyterJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Cells []struct {
			Source      string
			Outputs     []map[string]any
			Attachments map[string]map[string]any
		}
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(out, &nb); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data := nb.Cells[0].Outputs[1]["data"].(map[string]any)
	if nb.Cells[0].Source != "x = 1\nx" || nb.Cells[0].Outputs[0]["text"] != "a\nb\n" || data["text/plain"] != "1\n2" ||
		nb.Cells[1].Source != "# T\n<b>&</b>" || nb.Cells[1].Attachments["i.png"]["image/png"] != "AABB" {
		t.Fatalf("not joined: %s", out)
	}
	if _, ok := data["application/json"].([]any); !ok {
		t.Fatalf("JSON MIME data was joined: %s", out)
	}
	if string(nb.Metadata["n"]) != "1.50" {
		t.Fatalf("a number was rewritten: %s", nb.Metadata["n"])
	}
	if _, err := JupyterJSON([]byte("{")); !errors.Is(err, ErrFormat) {
		t.Fatalf("broken JSON: %v", err)
	}
}

// TestResolveEntry: the root, directories and files under it; hidden
// names, "..", and symlinks out refused.
func TestResolveEntry(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "/", "sub", "/sub/", "sub/new.txt"} {
		if _, _, err := r.ResolveEntry(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if abs, rel, _ := r.ResolveEntry("sub/x.txt"); rel != "sub/x.txt" || abs != filepath.Join(r.Dir(), "sub", "x.txt") {
		t.Errorf("sub/x.txt: %s %s", abs, rel)
	}
	for p, want := range map[string]error{"../x": ErrOutsideRoot, "sub/../../x": ErrOutsideRoot, "out/x": ErrOutsideRoot, "out": ErrOutsideRoot,
		".ipynb_checkpoints/a.ipynb": ErrHidden, "sub/.a.ipynb.lock": ErrHidden} {
		if _, _, err := r.ResolveEntry(p); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", p, err, want)
		}
	}
	if _, _, err := r.ResolveEntry("missing/x"); err == nil {
		t.Error("a path in a missing directory resolved")
	}
}

// TestCheckpointFiles: ids, order (newest last), files of similar names
// kept apart, the bound on replaced versions.
func TestCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	a, ab := filepath.Join(dir, "a.ipynb"), filepath.Join(dir, "a-b.ipynb")
	if err := WriteCheckpoint(a, "../x", nil); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("a bad id: %v", err)
	}
	if err := WriteCheckpoint(ab, CheckpointID, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	for i := range MaxReplacedKept + 2 {
		id := ReplacedID(fmt.Sprintf("%016x", i) + strings.Repeat("0", 48))
		if err := WriteCheckpoint(a, id, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(CheckpointPath(a, id), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteCheckpoint(a, CheckpointID, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	// Older than every replaced version, yet listed last.
	if err := os.Chtimes(CheckpointPath(a, CheckpointID), base.Add(-time.Hour), base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	cps, err := ListCheckpoints(a)
	if err != nil || len(cps) != MaxReplacedKept+3 || cps[len(cps)-1].ID != CheckpointID {
		t.Fatalf("list: %v %v", cps, err)
	}
	PruneReplaced(a)
	cps, _ = ListCheckpoints(a)
	if len(cps) != MaxReplacedKept+1 {
		t.Fatalf("after prune %d, want %d", len(cps), MaxReplacedKept+1)
	}
	if b, err := ReadCheckpoint(ab, CheckpointID); err != nil || string(b) != "ab" {
		t.Fatalf("a-b.ipynb's checkpoint: %q %v", b, err)
	}
	RemoveCheckpoints(a)
	if cps, _ := ListCheckpoints(ab); len(cps) != 1 {
		t.Fatalf("removing a.ipynb's checkpoints touched a-b.ipynb's: %v", cps)
	}
}

// TestResolveEntryKeepsTheLinkAndChecksItsTarget: a symlink resolves to
// its own path (the link is what is named, renamed and deleted), but only
// when its target is inside the root and not hidden.
func TestResolveEntryKeepsTheLinkAndChecksItsTarget(t *testing.T) {
	root := t.TempDir()
	r, err := NewRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"real", ".hidden", "real/.inner"} {
		if err := os.Mkdir(filepath.Join(r.Dir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"l": "real", "vis": ".hidden", "deep": "real/.inner", "out": t.TempDir()} {
		if err := os.Symlink(target, filepath.Join(r.Dir(), link)); err != nil {
			t.Fatal(err)
		}
	}
	abs, rel, err := r.ResolveEntry("l")
	if err != nil || rel != "l" || abs != filepath.Join(r.Dir(), "l") {
		t.Fatalf("ResolveEntry(l) = %s %s %v, want the link's own path", abs, rel, err)
	}
	if _, rel, err := r.ResolveEntry("l/x.ipynb"); err != nil || rel != "l/x.ipynb" {
		t.Fatalf("ResolveEntry(l/x.ipynb) = %s %v", rel, err)
	}
	for _, p := range []string{"vis", "vis/x.txt", "deep", "l/.inner"} {
		if _, _, err := r.ResolveEntry(p); !errors.Is(err, ErrHidden) {
			t.Errorf("ResolveEntry(%s): %v, want ErrHidden", p, err)
		}
	}
	if _, _, err := r.ResolveEntry("out/x.txt"); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("ResolveEntry(out/x.txt): %v, want ErrOutsideRoot", err)
	}
}

// TestRenameNoReplaceIntoItself: a directory moved into itself, directly or
// through a link to it, is ErrIntoItself and stays; a link may move into
// the directory it points to.
func TestRenameNoReplaceIntoItself(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.Mkdir(a, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{filepath.Join(a, "b"), filepath.Join(dir, "l", "b")} {
		if err := RenameNoReplace(a, to); !errors.Is(err, ErrIntoItself) {
			t.Fatalf("rename a to %s: %v, want ErrIntoItself", to, err)
		}
	}
	if fi, err := os.Stat(a); err != nil || !fi.IsDir() {
		t.Fatalf("a moved: %v", err)
	}
	if err := RenameNoReplace(filepath.Join(dir, "l"), filepath.Join(a, "l")); err != nil {
		t.Fatalf("a link moved into its target: %v", err)
	}
}
