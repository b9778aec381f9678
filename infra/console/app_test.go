package console

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestAppHTMLIsSelfContained: the execution view inlines the console's
// renderer and its own script; nothing in it names a file to fetch.
func TestAppHTMLIsSelfContained(t *testing.T) {
	plotly := filepath.Join(t.TempDir(), "plotly.js")
	// A stand-in plotly.js holding what would end its <script> element.
	src := "/* plotly */ var Plotly = {s: '</script><img src=x>'};" + strings.Repeat(" ", 2000)
	if err := os.WriteFile(plotly, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	page, err := AppHTML(plotly)
	if err != nil {
		t.Fatal(err)
	}
	if refs := testkit.HTMLExternalRefs(page); len(refs) > 0 {
		t.Fatalf("the view names things to fetch: %v", refs)
	}
	for _, name := range []string{"outputs.js", "mcp-app.js"} {
		if !bytes.Contains(page, []byte("// --- "+name)) {
			t.Errorf("%s is not inlined", name)
		}
	}
	if bytes.Contains(page, []byte("/*@")) {
		t.Errorf("a template mark is left in the view")
	}
	if bytes.Contains(page, []byte("</script><img")) || !bytes.Contains(page, []byte(`<\/script><img src=x>`)) {
		t.Errorf("plotly.js's own </script> was not kept inside its element")
	}
	if bytes.Contains(page, []byte("\nexport ")) {
		t.Errorf("an export keyword is left in the joined module script")
	}
}

// TestAppHTMLWithoutPlotly: no plotly.js (or one past the bound) is no
// error: the view is built without it and figures fall back to images.
func TestAppHTMLWithoutPlotly(t *testing.T) {
	missing, err := AppHTML(filepath.Join(t.TempDir(), "absent.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(missing, []byte(`<script type="text/plain" id="plotly-src"></script>`)) {
		t.Fatalf("a missing plotly.js left something in #plotly-src")
	}
	big := filepath.Join(t.TempDir(), "big.js")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxAppPlotlyBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	over, err := AppHTML(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(over) != len(missing) {
		t.Fatalf("a plotly.js over MaxAppPlotlyBytes was inlined: view %d bytes, without it %d", len(over), len(missing))
	}
}

// TestFlattenModuleRefusesWhatItCannotInline: a module importing something
// not inlined, or exporting a list, is refused with what to change.
func TestFlattenModuleRefusesWhatItCannotInline(t *testing.T) {
	if _, err := flattenModule("x.js", []byte("import { a } from 'https://cdn.example/x.js';\n")); err == nil || !strings.Contains(err.Error(), "cannot inline") {
		t.Fatalf("an external import was accepted: %v", err)
	}
	if _, err := flattenModule("x.js", []byte("const a = 1;\nexport { a };\n")); err == nil || !strings.Contains(err.Error(), "export list") {
		t.Fatalf("an export list was accepted: %v", err)
	}
	out, err := flattenModule("x.js", []byte("import { api } from './api.js';\nexport class A {}\nexport async function f() {}\nexport const c = 1;\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nclass A {}\nasync function f() {}\nconst c = 1;\n"; string(out) != want {
		t.Fatalf("flattened = %q, want %q", out, want)
	}
}

// TestAppDocumentRebuildsOnlyWhenPlotlyChanges: the view is built once and
// served from memory until plotly.js changes (or appears).
func TestAppDocumentRebuildsOnlyWhenPlotlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plotly.js")
	d := &AppDocument{PlotlyJS: path}
	absent, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("var Plotly = {};"+strings.Repeat(" ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) == len(absent) {
		t.Fatalf("plotly.js appeared but the view was not rebuilt")
	}
	again, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if &again[0] != &first[0] {
		t.Fatalf("an unchanged plotly.js rebuilt the view")
	}
	if err := os.WriteFile(path, []byte("var Plotly = {};"+strings.Repeat(" ", 3000)), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != len(first)+1000 {
		t.Fatalf("a changed plotly.js was not picked up: %d bytes, want %d", len(changed), len(first)+1000)
	}
}

// TestScriptSafeInAnyCase: an end tag in any letter case ends a <script>
// or <style> element in HTML, so each is escaped, whatever its case, and
// nothing else changes.
func TestScriptSafeInAnyCase(t *testing.T) {
	for in, want := range map[string]string{
		`a="</script>"`:              `a="<\/script>"`,
		`a="</SCRIPT>"`:              `a="<\/SCRIPT>"`,
		`a="</ScRiPt >"; b=1`:        `a="<\/ScRiPt >"; b=1`,
		`x = "</sTyLe>" + "</Style"`: `x = "<\/sTyLe>" + "<\/Style"`,
		`if (a </scripts/ b) {}`:     `if (a <\/scripts/ b) {}`,
		`1 < 2 && "</div>"`:          `1 < 2 && "</div>"`,
	} {
		got := string(scriptSafe([]byte(in)))
		if got != want {
			t.Errorf("scriptSafe(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(strings.ToLower(got), "</script") || strings.Contains(strings.ToLower(got), "</style") {
			t.Errorf("scriptSafe(%q) = %q still ends the element", in, got)
		}
	}
}
