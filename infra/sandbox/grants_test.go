package sandbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// TestGrantsOpenSiblingsOfThePathToTheDataDir: without a mount namespace,
// every sibling on the way to the hidden directory is opened, the way
// itself only listed, the hidden directory not at all except what is kept.
func TestGrantsOpenSiblingsOfThePathToTheDataDir(t *testing.T) {
	tmp := t.TempDir()
	kept := filepath.Join(tmp, "kept")
	if err := os.Mkdir(kept, 0o700); err != nil {
		t.Fatal(err)
	}
	tree := fstest.MapFS{
		"usr/bin/python3":         {},
		"srv/app/notebook.ipynb":  {},
		"srv/app/.data/mcp-token": {},
		"srv/app/link":            {Mode: fs.ModeSymlink},
		"srv/other/x":             {},
		"etc/passwd":              {},
		"dev/null":                {Mode: fs.ModeDevice | fs.ModeCharDevice},
		"dev/loop0":               {Mode: fs.ModeDevice},
		"dev/shm/x":               {},
		"dev/fd":                  {Mode: fs.ModeSymlink},
	}
	readDir := func(dir string) ([]fs.DirEntry, error) {
		if dir == "/" {
			return fs.ReadDir(tree, ".")
		}
		return fs.ReadDir(tree, dir[1:])
	}
	// kept is outside /srv/app/.data in the real filesystem; the plan only
	// needs it to be a directory for the rights.
	plan := Plan{Hide: []string{"/srv/app/.data"}, Keep: []Keep{{Path: kept, Write: true}}}
	got, siblings, err := grants(plan, false, allFS, readDir)
	if err != nil {
		t.Fatal(err)
	}
	if !siblings {
		t.Error("siblings = false")
	}
	want := map[string]uint64{
		"/": ll.AccessFSReadDir, "/etc": allFS, "/srv": ll.AccessFSReadDir, "/srv/app": ll.AccessFSReadDir,
		"/srv/app/notebook.ipynb": fileRights, "/srv/other": allFS, "/usr": allFS, kept: allFS,
		"/dev": ll.AccessFSReadDir, "/dev/null": fileRights, "/dev/shm": allFS,
	}
	if len(got) != len(want) {
		t.Errorf("grants = %v, want %d of them", got, len(want))
	}
	for _, g := range got {
		w, ok := want[g.path]
		if !ok {
			t.Errorf("unexpected grant on %s (the hidden dir, a symlink?)", g.path)
			continue
		}
		if g.access != w {
			t.Errorf("grant on %s = %b, want %b", g.path, g.access, w)
		}
	}
}

// TestGrantsWithMountNamespaceOpenAllButBlockDevices: the mount cover hides
// the data dir, so everything is granted but /dev's block devices.
func TestGrantsWithMountNamespaceOpenAllButBlockDevices(t *testing.T) {
	tree := fstest.MapFS{
		"srv/.data/mcp-token": {},
		"dev/null":            {Mode: fs.ModeDevice | fs.ModeCharDevice},
		"dev/vda":             {Mode: fs.ModeDevice},
	}
	readDir := func(dir string) ([]fs.DirEntry, error) {
		if dir == "/" {
			return fs.ReadDir(tree, ".")
		}
		return fs.ReadDir(tree, dir[1:])
	}
	got, siblings, err := grants(Plan{Hide: []string{"/srv/.data"}}, true, allFS, readDir)
	if err != nil || siblings {
		t.Fatalf("grants: %v, siblings %v", err, siblings)
	}
	want := map[string]uint64{"/": ll.AccessFSReadDir, "/srv": allFS, "/dev": ll.AccessFSReadDir, "/dev/null": fileRights}
	if len(got) != len(want) {
		t.Fatalf("grants = %v, want %v", got, want)
	}
	for _, g := range got {
		if want[g.path] != g.access {
			t.Errorf("grant on %s = %b, want %b", g.path, g.access, want[g.path])
		}
	}
}

func TestPlanValidateRefusesWhatWouldWeakenIt(t *testing.T) {
	for _, p := range []Plan{
		{Mode: ModeAuto},
		{Mode: ModeAuto, Hide: []string{"data"}},
		{Mode: ModeAuto, Hide: []string{"/"}},
		{Mode: ModeAuto, Hide: []string{"/data/../etc"}},
		{Mode: ModeAuto, Hide: []string{"/data"}, Keep: []Keep{{Path: "/elsewhere"}}},
		{Mode: "bogus", Hide: []string{"/data"}},
	} {
		if err := p.validate(); err == nil {
			t.Errorf("validate(%+v) = nil", p)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "Required": ModeRequired, "off": ModeOff} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseMode("on"); err == nil {
		t.Error("ParseMode(on) = nil error")
	}
}
