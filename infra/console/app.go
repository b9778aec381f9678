package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sync"
)

// MaxAppPlotlyBytes bounds the plotly.js AppHTML inlines (Debian's is
// 8.6 MB); a larger file is left out and the view draws Plotly figures by
// their static fallback.
const MaxAppPlotlyBytes = 16 << 20

// AppHTML is the MCP Apps execution view (ui://mcp-jupyter/execution): one
// self-contained HTML document made of static/mcp-app.html with the
// console's own renderer (outputs.css, outputs.js) and static/mcp-app.js
// inlined — a host shows it in its own sandboxed frame, where nothing can be
// fetched — and, when plotlyJS names a readable file of at most
// MaxAppPlotlyBytes, plotly.js inlined as text the view draws figures with.
// An empty or missing plotlyJS is not an error: figures fall back to their
// image. The scripts are ES modules joined into one module script: their
// `export` keywords and their imports of each other are dropped, and the
// view's own script sits in a block, so its names are its own.
func AppHTML(plotlyJS string) ([]byte, error) {
	page, err := fs.ReadFile(staticFiles, "static/mcp-app.html")
	if err != nil {
		return nil, fmt.Errorf("read the execution view's template: %w", err)
	}
	css, err := fs.ReadFile(staticFiles, "static/outputs.css")
	if err != nil {
		return nil, fmt.Errorf("read outputs.css: %w", err)
	}
	var script bytes.Buffer
	for _, name := range []string{"outputs.js", "mcp-app.js"} {
		src, err := fs.ReadFile(staticFiles, "static/"+name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		flat, err := flattenModule(name, src)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&script, "// --- %s\n", name)
		if name == "mcp-app.js" {
			// NB: the entry module in a block of its own: its top-level
			// names cannot clash with the renderer's (one shared scope).
			script.WriteString("{\n")
			script.Write(flat)
			script.WriteString("\n}\n")
			continue
		}
		script.Write(flat)
		script.WriteString("\n")
	}
	plotly, err := readPlotly(plotlyJS)
	if err != nil {
		return nil, err
	}
	out := page
	for _, r := range []struct {
		mark string
		with []byte
	}{
		{"/*@outputs.css*/", css},
		{"/*@scripts*/", script.Bytes()},
		{"/*@plotly.js*/", plotly},
	} {
		if bytes.Count(out, []byte(r.mark)) != 1 {
			return nil, fmt.Errorf("mcp-app.html must hold %s exactly once", r.mark)
		}
		out = bytes.Replace(out, []byte(r.mark), scriptSafe(r.with), 1)
	}
	return out, nil
}

var (
	// importLine: an import of another console module (all inlined).
	importLine = regexp.MustCompile(`(?m)^import\s[^;]*from\s+['"]\./[a-z-]+\.js['"];?[ \t]*$`)
	// exportKeyword: `export` before a declaration.
	exportKeyword = regexp.MustCompile(`(?m)^export\s+(default\s+)?((async\s+)?function|class|const|let|var)\b`)
	// otherExport: export lists and re-exports, which flattening cannot keep.
	otherExport = regexp.MustCompile(`(?m)^export\s*[{*]`)
	otherImport = regexp.MustCompile(`(?m)^import\s`)
)

// flattenModule turns one of our ES modules into statements that can share
// one module script with the others.
func flattenModule(name string, src []byte) ([]byte, error) {
	src = importLine.ReplaceAll(src, nil)
	if loc := otherImport.FindIndex(src); loc != nil {
		return nil, fmt.Errorf("%s: an import the execution view cannot inline (only `import {...} from './x.js'` of the inlined modules): %q",
			name, firstLine(src[loc[0]:]))
	}
	if loc := otherExport.FindIndex(src); loc != nil {
		return nil, fmt.Errorf("%s: an export list the execution view cannot inline (export each declaration instead): %q",
			name, firstLine(src[loc[0]:]))
	}
	return exportKeyword.ReplaceAll(src, []byte("$2")), nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// scriptSafe keeps text inside a <script> or <style> element: the HTML
// parser ends the element at the first "</script" or "</style" whatever the
// JavaScript around it means. "<\/" is the same string in a JS string or
// regular expression literal, and CSS never needs "</". NB: HTML matches
// the tag name in any case ("</ScRiPt" ends the element too).
func scriptSafe(b []byte) []byte {
	return endTag.ReplaceAll(b, []byte(`<\/$1`))
}

// endTag is the start of an end tag that would close a <script> or <style>.
var endTag = regexp.MustCompile(`(?i)</(script|style)`)

// readPlotly reads plotly.js, bounded; nothing when path is empty or absent.
func readPlotly(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open plotly.js for the execution view: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxAppPlotlyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s for the execution view: %w", path, err)
	}
	if len(b) > MaxAppPlotlyBytes {
		return nil, nil
	}
	return b, nil
}

// AppDocument builds the execution view once and keeps it while plotlyJS
// is unchanged (same size and modification time, or still absent): hosts
// read the view once per session, and each build copies 8.7 MB. It keeps
// one document. Safe for concurrent use.
type AppDocument struct {
	PlotlyJS string

	mu   sync.Mutex
	key  string
	html []byte
}

// HTML returns the view (see AppHTML). The bytes are shared: do not modify them.
func (d *AppDocument) HTML() ([]byte, error) {
	key := "absent"
	if d.PlotlyJS == "" {
		key = "none"
	} else if fi, err := os.Stat(d.PlotlyJS); err == nil {
		key = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.html != nil && d.key == key {
		return d.html, nil
	}
	html, err := AppHTML(d.PlotlyJS)
	if err != nil {
		return nil, err
	}
	d.key, d.html = key, html
	return html, nil
}
