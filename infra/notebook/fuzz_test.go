package notebook_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// FuzzParse: Parse never panics; whatever it accepts marshals to a file it
// accepts again with the same cells (ids, types, sources).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a", "cell_type": "code", "source": ["x\n", "y"], "metadata": {}, "execution_count": 1, "outputs": [{"output_type": "stream", "name": "stdout", "text": "q\\"\n"}]}]}`))
	f.Add([]byte(`{"nbformat": 4, "nbformat_minor": 2, "metadata": {"kernelspec": {"name": "python3"}}, "cells": [{"cell_type": "markdown", "source": "# t", "metadata": {}, "attachments": {}}]}`))
	f.Add([]byte(`{"cells": [`))
	f.Add([]byte(`{"nbformat": 4, "cells": [{"cell_type": "raw", "source": "\"\\\\\"", "metadata": {}, "id": "x"}], "metadata": {}, "nbformat_minor": 5}`))
	f.Add([]byte(`{"nbformat": 4.0, "nbformat_minor": 5, "metadata": {}, "cells": []}`))
	f.Add([]byte(`{"n\u0062format": 4, "metadata": {}, "cells": []}`))
	if b, err := os.ReadFile(filepath.Join("testdata", "jupyter.ipynb")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		nb, err := notebook.Parse(b)
		if err != nil {
			return
		}
		out, err := nb.Marshal()
		if err != nil {
			return // an output that is not valid JSON inside: refused at write
		}
		if !json.Valid(out) {
			t.Fatalf("Marshal wrote invalid JSON:\n%s", out)
		}
		back, err := notebook.Parse(out)
		if err != nil {
			t.Fatalf("Marshal wrote what Parse refuses: %v\n%s", err, out)
		}
		if len(back.Cells) != len(nb.Cells) {
			t.Fatalf("cells: %d then %d", len(nb.Cells), len(back.Cells))
		}
		for i := range nb.Cells {
			x, y := nb.Cells[i], back.Cells[i]
			if x.ID != y.ID || x.Type != y.Type || x.Source != y.Source || len(x.Outputs) != len(y.Outputs) {
				t.Fatalf("cell %d changed: %+v then %+v", i, x, y)
			}
		}
	})
}

// FuzzJupyterJSON: JupyterJSON never panics, what it returns is JSON, and
// a notebook Parse accepts still parses after it (joined lines are the
// same text).
func FuzzJupyterJSON(f *testing.F) {
	f.Add([]byte(`{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a", "cell_type": "code", "source": ["x\n", "y"], "metadata": {}, "execution_count": 1, "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["a", "b"], "application/json": [1]}}]}]}`))
	f.Add([]byte(`{"cells": [1, {"cell_type": "code", "outputs": [2, {"text": [3]}]}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := notebook.JupyterJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
		nb, err := notebook.Parse(b)
		if err != nil {
			return
		}
		back, err := notebook.Parse(out)
		if err != nil {
			t.Fatalf("parsed before, not after: %v\n%s", err, out)
		}
		for i := range nb.Cells {
			if back.Cells[i].Source != nb.Cells[i].Source {
				t.Fatalf("cell %d source %q, was %q", i, back.Cells[i].Source, nb.Cells[i].Source)
			}
		}
	})
}
