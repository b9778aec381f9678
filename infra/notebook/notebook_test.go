package notebook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

func msgs(pairs ...string) []notebook.Message {
	var out []notebook.Message
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, notebook.Message{MsgType: pairs[i], Content: json.RawMessage(pairs[i+1])})
	}
	return out
}

const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestOutputsAsJupyterWritesThem(t *testing.T) {
	outs := notebook.Outputs(msgs(
		"status", `{"execution_state":"busy"}`,
		"execute_input", `{"code":"x","execution_count":3}`,
		"stream", `{"name":"stdout","text":"a\n"}`,
		"stream", `{"name":"stdout","text":"b\nc"}`,
		"stream", `{"name":"stderr","text":"warn\n"}`,
		"stream", `{"name":"stdout","text":"d\n"}`,
		"display_data", `{"data":{"image/png":"`+tinyPNG+`","text/plain":"<Figure size 640x480 with 1 Axes>"},"metadata":{"image/png":{"width":1}},"transient":{"display_id":"d1"}}`,
		"update_display_data", `{"data":{"text/plain":"updated"},"metadata":{},"transient":{"display_id":"d1"}}`,
		"execute_result", `{"data":{"text/plain":"2\nlines","text/html":"<b>2</b>"},"metadata":{},"execution_count":3}`,
		"error", `{"ename":"ValueError","evalue":"bad","traceback":["\u001b[0;31mValueError\u001b[0m: bad"]}`,
		"comm_msg", `{}`,
	))
	var got []map[string]any
	for _, o := range outs {
		var m map[string]any
		if err := json.Unmarshal(o, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 6 {
		t.Fatalf("want 6 outputs (stdout, stderr, stdout, display, result, error), got %d: %s", len(got), outs)
	}
	if got[0]["output_type"] != "stream" || got[0]["name"] != "stdout" || strings.Join(strs(got[0]["text"]), "") != "a\nb\nc" {
		t.Fatalf("merged stream: %v", got[0])
	}
	if l := strs(got[0]["text"]); len(l) != 3 || l[0] != "a\n" {
		t.Fatalf("stream text must be split into lines as nbformat stores it: %q", l)
	}
	if got[2]["name"] != "stdout" || got[1]["name"] != "stderr" {
		t.Fatalf("streams of another name must not merge across: %v", got)
	}
	d := got[3]["data"].(map[string]any)
	if got[3]["output_type"] != "display_data" || d["text/plain"] == nil || strings.Join(strs(d["text/plain"]), "") != "updated" {
		t.Fatalf("update_display_data must replace the display: %v", got[3])
	}
	if _, ok := got[3]["transient"]; ok {
		t.Fatal("transient is not stored in notebooks")
	}
	if got[4]["output_type"] != "execute_result" || got[4]["execution_count"] != float64(3) {
		t.Fatalf("execute_result: %v", got[4])
	}
	if got[5]["output_type"] != "error" || got[5]["ename"] != "ValueError" || len(strs(got[5]["traceback"])) != 1 {
		t.Fatalf("error: %v", got[5])
	}

	cleared := notebook.Outputs(msgs(
		"stream", `{"name":"stdout","text":"gone\n"}`,
		"clear_output", `{"wait":false}`,
		"stream", `{"name":"stdout","text":"kept\n"}`,
		"clear_output", `{"wait":true}`,
		"stream", `{"name":"stdout","text":"last\n"}`,
	))
	if len(cleared) != 1 || !bytes.Contains(cleared[0], []byte("last")) || bytes.Contains(cleared[0], []byte("kept")) {
		t.Fatalf("clear_output: %s", cleared)
	}
	pending := notebook.Outputs(msgs("stream", `{"name":"stdout","text":"stays\n"}`, "clear_output", `{"wait":true}`))
	if len(pending) != 1 {
		t.Fatalf("clear_output(wait=True) with nothing after keeps the output: %s", pending)
	}
}

func strs(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// TestWrittenNotebooksValidate writes every kind of cell and output and
// checks the file with nbformat's own validator.
func TestWrittenNotebooksValidate(t *testing.T) {
	nb := notebook.New("python3", "Python 3", "python")
	one := 1
	outs := notebook.Outputs(msgs(
		"stream", `{"name":"stdout","text":"hi\n"}`,
		"display_data", `{"data":{"image/png":"`+tinyPNG+`","text/plain":"<Figure>","image/svg+xml":"<svg>\n</svg>"},"metadata":{}}`,
		"execute_result", `{"data":{"text/plain":"2","application/json":{"a":[1,2]}},"metadata":{},"execution_count":1}`,
		"error", `{"ename":"E","evalue":"v","traceback":["t1","t2"]}`,
	))
	mustInsert(t, nb, 0, notebook.Cell{Type: notebook.TypeCode, Source: "print('hi')\n1+1", ExecutionCount: &one, Outputs: outs})
	mustInsert(t, nb, 0, notebook.Cell{Type: notebook.TypeMarkdown, Source: "# Title <&>\n\nText é"})
	mustInsert(t, nb, 2, notebook.Cell{Type: notebook.TypeRaw, Source: ""})
	mustInsert(t, nb, 3, notebook.Cell{Source: "unrun"})
	b, err := nb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := writeTemp(t, "all.ipynb", b)
	validate(t, path)
	if !bytes.Contains(b, []byte("<&>")) || !bytes.Contains(b, []byte("é")) {
		t.Fatal("text must be written as Jupyter writes it (no \\u003c escapes, UTF-8 kept)")
	}
	back, err := notebook.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Cells) != 4 || back.Cells[1].Source != "print('hi')\n1+1" || len(back.Cells[1].Outputs) != 4 || *back.Cells[1].ExecutionCount != 1 {
		t.Fatalf("round trip: %+v", back.Cells)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, b) {
		t.Fatal("parse then marshal must give the same bytes")
	}
}

func mustInsert(t testing.TB, nb *notebook.Notebook, i int, c notebook.Cell) string {
	t.Helper()
	id, err := nb.Insert(i, c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSameBytesAsNbformat: a notebook written by Python's nbformat comes
// back byte for byte from Parse+Marshal, so an agent's write shows in git
// only as the cells it changed. An nbformat 4.4 file gets cell ids.
func TestSameBytesAsNbformat(t *testing.T) {
	dir := t.TempDir()
	script := `
import nbformat, sys
from nbformat.v4 import new_notebook, new_code_cell, new_markdown_cell, new_output
nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, "language_info": {"name": "python", "version": "3.11"}})
nb.cells = [new_markdown_cell("# T\n\nsome <b>html</b> é"), new_code_cell("print(1)\nx = 2\nx", execution_count=4, outputs=[
  new_output("stream", name="stdout", text="1\n"),
  new_output("execute_result", data={"text/plain": "2", "text/html": "<i>2</i>\n<p/>"}, execution_count=4),
  new_output("error", ename="E", evalue="v", traceback=["a", "b"])]), new_code_cell("")]
nbformat.write(nb, sys.argv[1] + "/v45.ipynb")
nb.nbformat_minor = 4
for c in nb.cells: del c["id"]
with open(sys.argv[1] + "/v44.ipynb", "w") as f: f.write(nbformat.writes(nb, version=4).replace('"nbformat_minor": 5', '"nbformat_minor": 4'))
`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("python nbformat: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "v45.ipynb"))
	f, err := notebook.ReadFile(filepath.Join(dir, "v45.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.Notebook.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal differs from nbformat.write:\n--- ours\n%s\n--- nbformat\n%s", got, want)
	}
	old, err := notebook.ReadFile(filepath.Join(dir, "v44.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range old.Notebook.Cells {
		if !notebook.ValidCellID(c.ID) {
			t.Fatalf("4.4 cell without a valid id after parse: %q", c.ID)
		}
	}
	b, _ := old.Notebook.Marshal()
	validate(t, writeTemp(t, "upgraded.ipynb", b))
}

func TestBadFilesAreRefusedClearly(t *testing.T) {
	cases := map[string]string{
		"not json":         `{"cells": [`,
		"garbage":          "\x00\x01binary",
		"not an object":    `[1,2,3]`,
		"no nbformat":      `{"cells": [], "metadata": {}}`,
		"nbformat 3":       `{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}`,
		"bad cell type":    `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a", "cell_type": "python", "source": "", "metadata": {}}]}`,
		"duplicate ids":    `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a", "cell_type": "raw", "source": "", "metadata": {}}, {"id": "a", "cell_type": "raw", "source": "", "metadata": {}}]}`,
		"invalid id":       `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a b", "cell_type": "raw", "source": "", "metadata": {}}]}`,
		"source not text":  `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"id": "a", "cell_type": "raw", "source": 7, "metadata": {}}]}`,
		"trailing garbage": `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []} x`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeTemp(t, "bad.ipynb", []byte(body))
			_, err := notebook.ReadFile(path)
			var fe *notebook.FormatError
			if !errors.Is(err, notebook.ErrFormat) || !errors.As(err, &fe) {
				t.Fatalf("want a FormatError, got %v", err)
			}
			if !strings.Contains(err.Error(), path) || fe.Hint == "" {
				t.Fatalf("the error must name the file and say what to do: %v", err)
			}
			if b, _ := os.ReadFile(path); string(b) != body {
				t.Fatal("reading a bad file must not change it")
			}
		})
	}
}

func TestCellOpsAndFind(t *testing.T) {
	nb := notebook.New("python3", "", "")
	a := mustInsert(t, nb, 0, notebook.Cell{Source: "a"})
	b := mustInsert(t, nb, 1, notebook.Cell{Source: "b", ID: "my-id"})
	c := mustInsert(t, nb, 2, notebook.Cell{Source: "c", Type: notebook.TypeMarkdown})
	if b != "my-id" {
		t.Fatalf("a given id is kept: %q", b)
	}
	if _, err := nb.Insert(0, notebook.Cell{ID: "my-id"}); !errors.Is(err, notebook.ErrBadCell) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := nb.Insert(9, notebook.Cell{}); !errors.Is(err, notebook.ErrBadCell) {
		t.Fatalf("index out of range: %v", err)
	}
	if _, err := nb.Insert(0, notebook.Cell{Type: "sql"}); !errors.Is(err, notebook.ErrBadCell) {
		t.Fatalf("bad type: %v", err)
	}
	if i, err := nb.Find(c); err != nil || i != 2 {
		t.Fatalf("find by id: %d %v", i, err)
	}
	if i, err := nb.Find("1"); err != nil || i != 1 {
		t.Fatalf("find by index: %d %v", i, err)
	}
	if _, err := nb.Find("nope"); !errors.Is(err, notebook.ErrUnknownCell) || !strings.Contains(err.Error(), "read_notebook") {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := nb.Find("7"); !errors.Is(err, notebook.ErrUnknownCell) {
		t.Fatalf("index out of range: %v", err)
	}
	before := nb.Clone()
	if err := nb.Move(0, 2); err != nil {
		t.Fatal(err)
	}
	if ids(nb) != b+","+c+","+a {
		t.Fatalf("move: %s", ids(nb))
	}
	if err := nb.Edit(1, "changed", notebook.TypeCode); err != nil {
		t.Fatal(err)
	}
	nb.Delete(0)
	d := notebook.Compare(before, nb)
	if len(d.Removed) != 1 || d.Removed[0] != b || len(d.SourceChanged) != 1 || d.SourceChanged[0] != c || !d.Reordered {
		t.Fatalf("diff: %+v", d)
	}
	if !strings.Contains(d.String(), "cells removed: my-id") {
		t.Fatalf("diff text: %s", d)
	}
	if len(before.Cells) != 3 || ids(before) != a+","+b+","+c {
		t.Fatal("Clone must not share the cell list")
	}
}

func ids(nb *notebook.Notebook) string {
	var s []string
	for _, c := range nb.Cells {
		s = append(s, c.ID)
	}
	return strings.Join(s, ",")
}
