// Package infra_test enforces the house rule that the technologies stay at
// the edge: only infra/ (and the cmd that wires it, and tests) import
// pebble, zmq4, nats or mcp-go.
package infra_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestTechnologyImportsStayInInfra(t *testing.T) {
	banned := []string{"github.com/cockroachdb/pebble", "github.com/go-zeromq/zmq4", "github.com/nats-io/", "github.com/mark3labs/mcp-go"}
	root := ".."
	for _, dir := range []string{"actors", "events", "projections"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				for _, b := range banned {
					if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), b) {
						t.Errorf("%s imports %s: technologies belong in infra/", path, imp.Path.Value)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
