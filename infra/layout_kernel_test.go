package infra_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// importsUnder calls fn for every import of every non-test Go file under
// dir (relative to the module root).
func importsUnder(t *testing.T, dir string, fn func(file, imp string)) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join("..", dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			fn(path, strings.Trim(imp.Path.Value, `"`))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

const module = "github.com/mcp-jupyter/mcp-jupyter/"

// TestInfraNeverImportsActors: the wire-level types both sides need live in
// events (events/kernel_wire.go); infra implements the actors' interfaces
// without importing them.
func TestInfraNeverImportsActors(t *testing.T) {
	importsUnder(t, "infra", func(file, imp string) {
		if strings.HasPrefix(imp, module+"actors") {
			t.Errorf("%s imports %s: infra implements the actors' interfaces, it never imports them", file, imp)
		}
	})
}

// TestKernelAndSchedulerReachNoInfraNorReadModel: the kernel and scheduler
// actors reach infra only through interfaces, and their state is their own
// fold, not a read model.
func TestKernelAndSchedulerReachNoInfraNorReadModel(t *testing.T) {
	for _, dir := range []string{"actors/kernel", "actors/scheduler"} {
		importsUnder(t, dir, func(file, imp string) {
			if strings.HasPrefix(imp, module+"infra") || strings.HasPrefix(imp, module+"projections") {
				t.Errorf("%s imports %s: an actor declares the interface it needs and folds its own state", file, imp)
			}
		})
	}
}
