package infra_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/mcp-jupyter/mcp-jupyter/"

// goFile is one non-test Go file of the module, parsed.
type goFile struct {
	path    string // relative to the module root, slash-separated
	imports []string
	ast     *ast.File
}

// moduleFiles parses every non-test Go file under the given top-level
// directories.
func moduleFiles(t *testing.T, dirs ...string) []goFile {
	t.Helper()
	var out []goFile
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join("..", dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel := filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
			g := goFile{path: rel, ast: f}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				g.imports = append(g.imports, p)
			}
			out = append(out, g)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no Go files found under %v: the test runs from infra/", dirs)
	}
	return out
}

// ours returns the module-relative path of an import of this module, or "".
func ours(imp string) string {
	if rel, ok := strings.CutPrefix(imp, module); ok {
		return rel
	}
	return ""
}

// TestImportsPointInward enforces the dependency rules of docs/ARCHITECTURE.md:
// events import nothing of ours; actors reach infra only through interfaces
// they declare and keep their own state (no read models); projections fold
// events and know no actor or technology; infra never imports actors; edges
// answer from read models and never read the log package.
func TestImportsPointInward(t *testing.T) {
	type rule struct {
		from, to, why string
		// except lists importers allowed anyway, each with its reason.
		except map[string]string
	}
	rules := []rule{
		{from: "events", to: "", why: "events import nothing of ours"},
		{from: "actors", to: "infra/", why: "actors reach infra only through interfaces they declare (cmd wires the implementation)",
			except: map[string]string{
				// NB: the nbformat document model (cells, outputs, diff) is a
				// pure value type that lives with its parser; the notebook
				// actor decides on it. File I/O still goes through the actor's
				// shell only. Moving the model out is tracked in docs/ARCHITECTURE.md.
				"actors/notebook": "infra/notebook",
			}},
		{from: "actors", to: "projections", why: "an actor's state is its own fold of its own stream, not a read model"},
		{from: "projections", to: "actors", why: "read models fold events; they know no actor"},
		{from: "projections", to: "infra/", why: "read models fold events; they know no technology"},
		{from: "infra/", to: "actors", why: "infra implements the interfaces actors declare; it never imports them"},
		{from: "infra/mcpserver", to: "infra/eventlog", why: "edges answer from read models, never from the log"},
		{from: "infra/ws", to: "infra/eventlog", why: "edges answer from read models, never from the log"},
		{from: "cmd/mcp-jupyter/backend.go", to: "infra/eventlog", why: "the MCP edge's adapter answers from read models, never from the log"},
		{from: "infra/console", to: "infra/eventlog", why: "the console's handlers read through Source/Steerer/Replayer, never the log"},
		{from: "cmd/mcp-jupyter/console_steer.go", to: "infra/eventlog", why: "the console's steering is the MCP backend's commands, never the log"},
	}
	files := moduleFiles(t, "events", "actors", "projections", "infra", "cmd")
	checked := map[string]int{}
	for _, f := range files {
		for _, r := range rules {
			if !strings.HasPrefix(f.path, r.from) {
				continue
			}
			checked[r.from+" -> "+r.to]++
			for _, imp := range f.imports {
				rel := ours(imp)
				if rel == "" || !strings.HasPrefix(rel, r.to) {
					continue
				}
				if ok := allowed(f.path, rel, r.except); ok {
					continue
				}
				t.Errorf("%s imports %s: %s", f.path, imp, r.why)
			}
		}
	}
	for _, r := range rules {
		if checked[r.from+" -> "+r.to] == 0 {
			t.Errorf("rule %s -> %s matched no file: the layout moved, update the rule", r.from, r.to)
		}
	}
}

func allowed(path, imp string, except map[string]string) bool {
	for from, to := range except {
		if strings.HasPrefix(path, from+"/") && strings.HasPrefix(imp, to) {
			return true
		}
	}
	return false
}

// TestDecisionsArePure enforces that an actor's state.go and decide.go hold
// no clock, randomness or I/O: replaying the log twice must give the same
// state, and Decide takes `now` and ids as inputs.
func TestDecisionsArePure(t *testing.T) {
	bannedImports := map[string]string{
		"math/rand": "randomness", "math/rand/v2": "randomness", "crypto/rand": "randomness",
		"os": "I/O", "io/fs": "I/O", "net": "I/O", "net/http": "I/O", "log": "I/O", "log/slog": "I/O",
	}
	bannedCalls := map[string]bool{"time.Now": true, "time.Since": true, "time.Until": true, "time.Sleep": true,
		"time.After": true, "time.NewTimer": true, "time.Tick": true, "time.AfterFunc": true}
	n := 0
	for _, f := range moduleFiles(t, "actors") {
		base := filepath.Base(f.path)
		if base != "decide.go" && base != "state.go" {
			continue
		}
		n++
		for _, imp := range f.imports {
			if why, bad := bannedImports[imp]; bad {
				t.Errorf("%s imports %s (%s): decisions and folds are pure; pass it in from actor.go", f.path, imp, why)
			}
		}
		ast.Inspect(f.ast, func(node ast.Node) bool {
			switch x := node.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && bannedCalls[id.Name+"."+x.Sel.Name] {
					t.Errorf("%s uses %s.%s: time comes from the event envelope or a `now` argument", f.path, id.Name, x.Sel.Name)
				}
			case *ast.GoStmt:
				t.Errorf("%s starts a goroutine: decisions and folds run on the caller's goroutine", f.path)
			case *ast.SendStmt:
				t.Errorf("%s sends on a channel: effects are returned as values, performed by actor.go", f.path)
			}
			return true
		})
	}
	if n < 6 {
		t.Errorf("found %d decide.go/state.go files under actors/, want at least 6 (kernel, scheduler, lease, checkpoint, notebook...)", n)
	}
}
