package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The web console's output renderer (infra/console/static/outputs.js) in a
// real Chromium, fed the raw IOPub outputs a real kernel produced for an
// agent (the same {seq, msg_type, content} the console's API and /ws carry).

// runExecution runs code as an agent, to its end, and returns its id.
func runExecution(t testing.TB, cl *client.Client, kernel, code string) string {
	t.Helper()
	sc, text := executeToEnd(t, cl, map[string]any{"kernel": kernel, "code": code, "timeout_s": 120})
	if sc == nil {
		t.Fatalf("execute %q: %s", code, text)
	}
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute %q gave no execution id: %v", code, sc)
	}
	return id
}

// mountJS mounts an OutputArea on a test element of the console page (one
// per id, with the page's outputs.css) and feeds it an execution's outputs
// read from the console's API, page by page, as the views do. It returns
// how many outputs it applied.
const mountJS = `async (arg) => {
  const api = await import('/ui/api.js');
  const { OutputArea } = await import('/ui/outputs.js');
  if (!document.querySelector('link[href$="outputs.css"]')) {
    const l = document.createElement('link');
    l.rel = 'stylesheet'; l.href = '/ui/outputs.css';
    const loaded = new Promise((ok) => { l.onload = ok; l.onerror = ok; });
    document.head.append(l);
    await loaded;
  }
  window.__areas = window.__areas || {};
  let host = document.getElementById(arg.id);
  if (!host) {
    host = document.createElement('section');
    host.id = arg.id;
    host.dataset.testid = 'outputs';
    document.body.append(host);
    const opts = Object.assign({}, arg.opts || {});
    if (arg.plotlyText) opts.plotlySource = () => arg.plotlyText;
    if (arg.fullText) {
      opts.fullText = (seq) => api.api('executions/' + encodeURIComponent(arg.execution) + '/fulltext', { method: 'POST', body: { seq } });
    }
    window.__areas[arg.id] = new OutputArea(host, opts);
  }
  const area = window.__areas[arg.id];
  if (!arg.execution) return 0;
  let since = 0, n = 0;
  for (;;) {
    const r = await api.api('executions/' + encodeURIComponent(arg.execution) + '?since=' + since);
    area.appendMany(r.outputs);
    n += r.outputs.length;
    if (!r.more) return n;
    since = r.cursor;
  }
}`

// mountExecution shows execution's outputs in the OutputArea id.
func mountExecution(t testing.TB, p *testkit.Page, id, execution string, opts map[string]any, fullText bool) int {
	t.Helper()
	return mountExecutionWith(t, p, id, execution, opts, fullText, "")
}

// mountExecutionWith is mountExecution with plotly.js given as text (the
// plotlySource option), when plotlyText is not empty.
func mountExecutionWith(t testing.TB, p *testkit.Page, id, execution string, opts map[string]any, fullText bool, plotlyText string) int {
	t.Helper()
	var n int
	p.Eval(t, mountJS, map[string]any{"id": id, "execution": execution, "opts": opts, "fullText": fullText, "plotlyText": plotlyText}, &n)
	return n
}

// openOutputsPage opens the console with the admin's token in the tab, as
// the page keeps it (sessionStorage), and returns the token.
func openOutputsPage(t testing.TB, site *consoleSite, w, h int) (*testkit.Page, string) {
	t.Helper()
	p := site.open(t, w, h, "")
	p.WaitFor(t, `[data-testid="kernels"]`, "", 20*time.Second) // app.js adopted ?token= and shows the Now view
	var token string
	p.Eval(t, `async () => (await import('/ui/api.js')).token()`, nil, &token)
	if token == "" {
		t.Fatal("the console kept no token")
	}
	return p, token
}

// executionOutputs is the OutputArea of the console's execution view.
const executionOutputs = `[data-testid="execution-view"] [data-testid="outputs"]`

// consoleShot is where a test's screenshot goes: docs/console/ when
// CONSOLE_SCREENSHOTS=1 (the committed images), else the test's temp dir.
func consoleShot(t testing.TB, name string) string {
	t.Helper()
	if os.Getenv("CONSOLE_SCREENSHOTS") == "1" {
		return filepath.Join("..", "..", "docs", "console", name)
	}
	return filepath.Join(t.TempDir(), name)
}

func checkShotSize(t testing.TB, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= 300<<10 {
		t.Fatalf("screenshot %s is %d bytes: keep it under 300 KB", path, st.Size())
	}
}

// TestConsoleOutputs: what a kernel shows, the console shows — a
// matplotlib plot as an image, ANSI colours and tracebacks as coloured
// text, HTML in a frame that cannot reach the console.
func TestConsoleOutputs(t *testing.T) {
	site := startConsoleSite(t)
	cl := site.connect()
	kernel := startKernelTool(t, cl)

	t.Run("matplotlib_plot_is_an_image", func(t *testing.T) {
		x := runExecution(t, cl, kernel,
			"import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('a plot')\nplt.show()")
		// The console's own execution view, as a person opens it.
		p := site.open(t, 900, 900, "/execution/"+x)
		defer p.Close(t)
		p.WaitFor(t, executionOutputs+` [data-testid="output"][data-msg-type="display_data"] img[data-testid="output-image"]`, "", 20*time.Second)
		var img struct {
			Width   float64 `json:"width"`
			Decoded bool    `json:"decoded"`
			Alt     string  `json:"alt"`
		}
		p.Eval(t, `async () => {
  const img = document.querySelector('[data-testid="execution-view"] [data-testid="outputs"] [data-testid="output-image"]');
  let decoded = true;
  try { await img.decode(); } catch (e) { decoded = false; }
  return { width: img.naturalWidth, decoded, alt: img.alt };
}`, nil, &img)
		if !img.Decoded || img.Width <= 0 {
			t.Fatalf("the plot's image did not decode: %+v", img)
		}
		if !strings.Contains(img.Alt, "Figure") {
			t.Fatalf("the image's alt text is not the output's text/plain: %q", img.Alt)
		}
		shot := consoleShot(t, "outputs-plot.png")
		p.Screenshot(t, shot, `[data-testid="execution-view"]`)
		checkShotSize(t, shot)
		p.NoScriptErrors(t)
	})

	t.Run("plotly_figure_is_interactive", func(t *testing.T) {
		// Debian's plotly 5.4 in ipykernel uses its default renderer,
		// "plotly_mimetype+notebook", as JupyterLab users get it: first a
		// script-only HTML output carrying plotly.js (9 MB), then the
		// figure as application/vnd.plotly.v1+json (+ text/html).
		x := runExecution(t, cl, kernel, `import plotly.graph_objects as go
import plotly.io as pio
assert pio.renderers.default == "plotly_mimetype+notebook", pio.renderers.default
fig = go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[10, 15, 13, 17], mode="lines+markers", name="series"))
fig.update_layout(width=640, height=420, title="a Plotly figure")
fig.show()`)
		// The console's own execution view, as a person opens it.
		p := site.open(t, 900, 1000, "/execution/"+x)
		defer p.Close(t)
		p.WaitFor(t, executionOutputs+` [data-testid="output"][data-mime="text/html"] .ov-note`, "only runs scripts", 20*time.Second)
		frame := executionOutputs + ` iframe[data-testid="output-plotly"]`
		p.WaitFor(t, frame+`[data-drawn="true"]`, "", 60*time.Second)
		// Where the second point (2, 15) is, in the frame and on the page.
		var pt struct {
			X     float64  `json:"x"`
			Y     float64  `json:"y"`
			Range []any    `json:"range"`
			Plots int      `json:"plots"`
			Names []string `json:"names"`
		}
		p.EvalFrame(t, frame, `() => {
  const gd = document.getElementById('ov-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return { x: xa._offset + xa.d2p(2), y: ya._offset + ya.d2p(15), range: xa.range.slice(),
           plots: document.querySelectorAll('.js-plotly-plot .main-svg').length,
           names: [...document.querySelectorAll('.legendtext')].map((e) => e.textContent) };
}`, nil, &pt)
		if pt.Plots == 0 {
			t.Fatal("no Plotly plot was drawn in the frame")
		}
		var rect struct{ Left, Top float64 }
		p.Eval(t, `(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return { Left: r.left, Top: r.top }; }`, frame, &rect)
		p.Mouse(t, "move", rect.Left+pt.X, rect.Top+pt.Y)
		var hover string
		p.EvalFrame(t, frame, `async () => {
  for (let i = 0; i < 50; i++) {
    const h = document.querySelector('.hoverlayer .hovertext');
    if (h) return h.textContent;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return '';
}`, nil, &hover)
		if !strings.Contains(hover, "15") {
			t.Fatalf("hovering the point (2, 15) shows no hover label with its value: %q", hover)
		}
		shot := consoleShot(t, "outputs-plotly.png")
		p.Screenshot(t, shot, executionOutputs)
		checkShotSize(t, shot)
		// Drag a box over the middle of the plot: Plotly zooms (a relayout).
		p.Mouse(t, "move", rect.Left+pt.X-20, rect.Top+pt.Y-60)
		p.Mouse(t, "down", 0, 0)
		p.Mouse(t, "move", rect.Left+pt.X+60, rect.Top+pt.Y+60)
		p.Mouse(t, "up", 0, 0)
		var after []any
		p.EvalFrame(t, frame, `async (before) => {
  const gd = document.getElementById('ov-plot');
  for (let i = 0; i < 50; i++) {
    const r = gd._fullLayout.xaxis.range;
    if (r[0] !== before[0] || r[1] !== before[1]) return r.slice();
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return gd._fullLayout.xaxis.range.slice();
}`, pt.Range, &after)
		if len(after) != 2 || after[0] == pt.Range[0] && after[1] == pt.Range[1] {
			t.Fatalf("dragging over the plot did not zoom: x range %v before, %v after", pt.Range, after)
		}
		p.NoScriptErrors(t)
	})

	t.Run("plotly_from_plotlySource", func(t *testing.T) {
		// A page that holds plotly.js itself (the MCP Apps view inlines it)
		// gives it as text; the figure is drawn with it, no fetch.
		js, err := os.ReadFile("/usr/share/python3-plotly/plotly.js")
		if err != nil {
			t.Fatalf("Debian's plotly.js (python3-plotly, make deps): %v", err)
		}
		x := runExecution(t, cl, kernel, `import plotly.graph_objects as go
go.Figure(go.Bar(x=["a", "b", "c"], y=[3, 1, 2])).show()`)
		p, _ := openOutputsPage(t, site, 900, 800)
		defer p.Close(t)
		mountExecutionWith(t, p, "source", x, map[string]any{"plotlyURL": "/ui/vendor/never-fetched.js"}, false, string(js))
		p.WaitFor(t, `#source iframe[data-testid="output-plotly"][data-drawn="true"]`, "", 60*time.Second)
		var bars int
		p.EvalFrame(t, `#source iframe[data-testid="output-plotly"]`, `() => document.querySelectorAll('.js-plotly-plot .bars .point').length`, nil, &bars)
		if bars != 3 {
			t.Fatalf("the figure drew %d bars, want 3", bars)
		}
		p.NoScriptErrors(t)
	})

	t.Run("plotly_without_plotly_js_says_why", func(t *testing.T) {
		x := runExecution(t, cl, kernel, `import plotly.graph_objects as go
go.Figure(go.Bar(x=["a", "b"], y=[1, 2])).show()`)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "noplotly", x, map[string]any{"plotlyURL": "/ui/vendor/missing-plotly.js"}, false)
		p.WaitFor(t, `#noplotly [data-msg-type="display_data"] .ov-note`, "not available at /ui/vendor/missing-plotly.js (HTTP 404)", 20*time.Second)
		var frames int
		p.Eval(t, `() => document.querySelectorAll('#noplotly iframe[data-testid="output-plotly"]').length`, nil, &frames)
		if frames != 0 {
			t.Fatalf("%d Plotly frames without plotly.js", frames)
		}
		// The one error: the 404 of plotly.js, which the note explains.
		noScriptErrorsBut(t, p, "404")
	})

	t.Run("ansi_colours_and_traceback", func(t *testing.T) {
		x := runExecution(t, cl, kernel, strings.Join([]string{
			`print("\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m")`,
			`print("\x1b[38;5;208morange-256\x1b[0m \x1b[38;2;10;200;250mtruecolor\x1b[0m \x1b[4munder\x1b[24m")`,
			`print("\x1b[34mblue carried", end="\n")`,
			`print("still blue\x1b[0m")`,
			`def f(x):`,
			`    return 1 / x`,
			`f(0)`,
		}, "\n"))
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "ansi", x, nil, false)
		p.WaitFor(t, `#ansi [data-testid="output-error"]`, "ZeroDivisionError", 10*time.Second)
		p.WaitFor(t, `#ansi [data-testid="stream-line"]`, "still blue", 10*time.Second)
		var got struct {
			Text       string            `json:"text"`
			Colours    map[string]string `json:"colours"`
			ErrSpans   int               `json:"errSpans"`
			Underlined bool              `json:"underlined"`
			Bold       bool              `json:"bold"`
		}
		p.Eval(t, `() => {
  const area = document.getElementById('ansi');
  const colourOf = (word) => {
    for (const s of area.querySelectorAll('span')) if (s.textContent.includes(word)) return getComputedStyle(s).color;
    return '';
  };
  const colours = {};
  for (const w of ['red', 'bold green', 'orange-256', 'truecolor', 'still blue', 'plain']) colours[w] = colourOf(w);
  const under = [...area.querySelectorAll('span')].find((s) => s.textContent === 'under');
  const bold = [...area.querySelectorAll('span')].find((s) => s.textContent === 'bold green');
  return {
    text: area.innerText,
    colours,
    errSpans: area.querySelectorAll('[data-testid="output-error"] span').length,
    underlined: !!under && getComputedStyle(under).textDecorationLine.includes('underline'),
    bold: !!bold && Number(getComputedStyle(bold).fontWeight) >= 600,
  };
}`, nil, &got)
		if strings.ContainsAny(got.Text, "\x1b") || strings.Contains(got.Text, "[0;31m") || strings.Contains(got.Text, "[31m") {
			t.Fatalf("raw escape codes on the page:\n%s", got.Text)
		}
		for _, w := range []string{"red", "bold green", "orange-256", "truecolor", "still blue"} {
			c := got.Colours[w]
			if c == "" || c == "rgb(31, 35, 40)" {
				t.Errorf("%q is not coloured: %q", w, c)
			}
		}
		if got.Colours["plain"] != "" {
			t.Errorf("text after a reset is still styled: %q", got.Colours["plain"])
		}
		if got.Colours["red"] == got.Colours["bold green"] || got.Colours["red"] == got.Colours["still blue"] {
			t.Errorf("different ANSI colours look the same: %v", got.Colours)
		}
		if !got.Underlined || !got.Bold {
			t.Errorf("underline %v, bold %v: want both", got.Underlined, got.Bold)
		}
		if got.ErrSpans < 5 {
			t.Errorf("the traceback has %d coloured spans, want its colours", got.ErrSpans)
		}
		if !strings.Contains(got.Text, "ZeroDivisionError") || !strings.Contains(got.Text, "return 1 / x") {
			t.Errorf("the traceback's text is missing:\n%s", got.Text)
		}
		shot := consoleShot(t, "outputs-ansi.png")
		p.Screenshot(t, shot, "#ansi")
		checkShotSize(t, shot)
		p.NoScriptErrors(t)
	})

	t.Run("clear_update_and_carriage_return", func(t *testing.T) {
		// Jupyter's display semantics, applied by the page to the raw
		// messages: clear_output(wait=True) clears at the next output,
		// update_display_data replaces its display in place, \r rewrites a
		// progress line.
		x := runExecution(t, cl, kernel, `from IPython.display import display, clear_output
for i in range(3):
    clear_output(wait=True)
    print(f"progress {i}")
h = display("first version", display_id=True)
h.update("updated version")
import sys
for pct in (10, 50, 100):
    sys.stdout.write(f"\rdownload {pct}%")
    sys.stdout.flush()
print()
print("count 12\b3 ok\x07")
print("a long line " + "x" * 400)
print("a huge line " + "y" * 50000)`)
		// At phone width: a long line scrolls inside its output, not the page.
		p, _ := openOutputsPage(t, site, 390, 844)
		defer p.Close(t)
		mountExecution(t, p, "semantics", x, nil, false)
		p.WaitFor(t, `#semantics [data-testid="stream-line"]`, "download 100%", 10*time.Second)
		var text string
		p.Eval(t, `() => document.getElementById('semantics').innerText`, nil, &text)
		for _, want := range []string{"progress 2", "updated version", "download 100%", "count 13 ok", "40,012 more characters on this line"} {
			if !strings.Contains(text, want) {
				t.Errorf("the page does not show %q:\n%s", want, text)
			}
		}
		for _, gone := range []string{"progress 0", "progress 1", "first version", "download 10%", "download 50%", "count 12", "\a"} {
			if strings.Contains(text, gone) {
				t.Errorf("the page still shows %q:\n%s", gone, text)
			}
		}
		var widths struct{ Page, View float64 }
		p.Eval(t, `() => ({ Page: document.documentElement.scrollWidth, View: window.innerWidth })`, nil, &widths)
		if widths.Page > widths.View {
			t.Errorf("at 390 px the page scrolls sideways: %v px wide in a %v px window", widths.Page, widths.View)
		}
		p.NoScriptErrors(t)
	})

	t.Run("outputs_beyond_maxOutputs_are_dropped_and_said", func(t *testing.T) {
		// stdout and stderr alternating make one output per chunk: the
		// area keeps the last maxOutputs of them.
		x := runExecution(t, cl, kernel, `import sys, time
for i in range(30):
    print(f"chunk {i}", file=sys.stdout if i % 2 == 0 else sys.stderr, flush=True)
    time.sleep(0.01)`)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "many", x, map[string]any{"maxOutputs": 10}, false)
		p.WaitFor(t, `#many [data-testid="stream-line"]`, "chunk 29", 10*time.Second)
		var got struct {
			Outputs int    `json:"outputs"`
			Notice  string `json:"notice"`
			Text    string `json:"text"`
		}
		p.Eval(t, `() => ({ outputs: document.querySelectorAll('#many [data-testid="output"]').length,
  notice: document.querySelector('#many [data-testid="outputs-dropped"]').innerText,
  text: document.getElementById('many').innerText })`, nil, &got)
		if got.Outputs != 10 {
			t.Errorf("%d outputs in the DOM, want the last 10", got.Outputs)
		}
		if !strings.Contains(got.Notice, "earlier outputs not kept") || strings.Contains(got.Text, "chunk 0\n") {
			t.Errorf("dropped outputs not said (%q) or still shown:\n%s", got.Notice, got.Text)
		}
		p.NoScriptErrors(t)
	})

	t.Run("svg_is_an_image_whose_scripts_never_run", func(t *testing.T) {
		x := runExecution(t, cl, kernel, `from IPython.display import SVG, display
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><script>parent.document.title = "svg ran"</script><circle cx="40" cy="40" r="30" fill="teal"/><text x="75" y="45">é</text></svg>'))`)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "svg", x, nil, false)
		p.WaitFor(t, `#svg img[data-testid="output-image"]`, "", 10*time.Second)
		var img struct {
			Src   string  `json:"src"`
			Width float64 `json:"width"`
			Title string  `json:"title"`
		}
		p.Eval(t, `async () => {
  const img = document.querySelector('#svg img[data-testid="output-image"]');
  await img.decode();
  return { src: img.getAttribute('src').slice(0, 40), width: img.naturalWidth, title: document.title };
}`, nil, &img)
		if !strings.HasPrefix(img.Src, "data:image/svg+xml") || img.Width != 120 {
			t.Fatalf("the SVG is not a decoded data: image: %+v", img)
		}
		if img.Title == "svg ran" {
			t.Fatal("the SVG's script ran")
		}
		p.NoScriptErrors(t)
	})

	t.Run("html_script_cannot_reach_the_console", func(t *testing.T) {
		// The output's script tries to read the console's token (its
		// sessionStorage, its parent's) and to navigate the console away,
		// then shows what it got, in the frame.
		code := `from IPython.display import HTML, display
display(HTML("""<p id="hello">hello from html</p><script>
var got = {};
try { got.own = String(window.sessionStorage.getItem('mcp-jupyter-token')); } catch (e) { got.own = 'exception: ' + e.name; }
try { got.parent = String(window.parent.sessionStorage.getItem('mcp-jupyter-token')); } catch (e) { got.parent = 'exception: ' + e.name; }
try { got.cookie = String(document.cookie); } catch (e) { got.cookie = 'exception: ' + e.name; }
try { window.top.location.href = 'https://example.invalid/stolen'; got.nav = 'no exception'; } catch (e) { got.nav = 'exception: ' + e.name; }
document.getElementById('hello').dataset.got = JSON.stringify(got);
</script>"""))`
		x := runExecution(t, cl, kernel, code)
		p, token := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "html", x, nil, false)
		p.WaitFor(t, `#html iframe[data-testid="output-html"]`, "", 10*time.Second)
		var sandbox string
		p.Eval(t, `() => document.querySelector('#html iframe[data-testid="output-html"]').getAttribute('sandbox')`, nil, &sandbox)
		if sandbox != "allow-scripts" {
			t.Fatalf("the HTML frame's sandbox is %q, want exactly allow-scripts", sandbox)
		}
		var got struct {
			Own    string `json:"own"`
			Parent string `json:"parent"`
			Cookie string `json:"cookie"`
			Nav    string `json:"nav"`
		}
		var raw string
		p.EvalFrame(t, `#html iframe[data-testid="output-html"]`, `async () => {
  for (let i = 0; i < 150; i++) {
    const e = document.getElementById('hello');
    if (e && e.dataset.got) return e.dataset.got;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return '';
}`, nil, &raw)
		if raw == "" {
			t.Fatalf("the HTML output's script did not run in its frame (page errors: %v)", p.Errors(t))
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatalf("the frame's script wrote %q: %v", raw, err)
		}
		if strings.Contains(raw, token) {
			t.Fatalf("the HTML output's script read the console's token: %s", raw)
		}
		if !strings.HasPrefix(got.Own, "exception") || !strings.HasPrefix(got.Parent, "exception") {
			t.Fatalf("the frame's script reached sessionStorage (want exceptions): %+v", got)
		}
		if u := p.URL(t); !strings.HasPrefix(u, site.ts.URL+"/ui/") {
			t.Fatalf("the HTML output navigated the console away: %s (script saw %+v)", u, got)
		}
		t.Logf("the frame's script got: %+v", got)
		// The frame's own height was reported: the page sized it to its content.
		var height float64
		p.Eval(t, `() => document.querySelector('#html iframe[data-testid="output-html"]').getBoundingClientRect().height`, nil, &height)
		if height < 16 || height > 400 {
			t.Errorf("the HTML frame is %v px high: want its content's height", height)
		}
		// NB: Chromium logs the navigation it refused as a console error:
		// that one is the block this test wants; any other fails.
		noScriptErrorsBut(t, p, "The frame attempting navigation of the top-level window is sandboxed")
	})
}

// noScriptErrorsBut is NoScriptErrors for a page that provokes one known
// error on purpose (substring expected): it must be there, and no other.
func noScriptErrorsBut(t testing.TB, p *testkit.Page, expected string) {
	t.Helper()
	seen := false
	for _, e := range p.Errors(t) {
		if strings.Contains(e.Text, expected) {
			seen = true
			continue
		}
		t.Errorf("script error: %s: %s", e.Kind, e.Text)
	}
	if !seen {
		t.Errorf("the page did not report %q", expected)
	}
}

// TestConsoleOutputs100kLines: a kernel prints 100,000 lines; the page
// keeps at most maxLines (50,000) of them and only the rows in view in the
// DOM, answers a click at once, and its memory does not grow with the
// output: the JS heap after 100,000 lines is far from 10x that after
// 10,000. The lines it did not keep come back from the full text.
func TestConsoleOutputs100kLines(t *testing.T) {
	site := startConsoleSite(t)
	cl := site.connect()
	kernel := startKernelTool(t, cl)
	small := runExecution(t, cl, kernel, "for i in range(10):\n    print(f'line {i} of the output')")
	ten := runExecution(t, cl, kernel, "for i in range(10_000):\n    print(f'line {i} of the output')")
	hundred := runExecution(t, cl, kernel, "for i in range(100_000):\n    print(f'line {i} of the output')")

	p, _ := openOutputsPage(t, site, 1000, 800)
	defer p.Close(t)
	heap := func() float64 { return p.Metrics(t, true)["JSHeapUsedSize"] }
	// The baseline: modules loaded, an output fetched and shown, so that
	// what follows grows only with the lines kept.
	mountExecution(t, p, "small", small, nil, false)
	p.WaitFor(t, `#small [data-testid="stream-line"]`, "line 9 of", 20*time.Second)
	h0 := heap()
	mountExecution(t, p, "ten", ten, nil, false)
	p.WaitFor(t, `#ten [data-testid="stream-line"]`, "line 9999 of", 20*time.Second)
	h10 := heap()
	p.Eval(t, `() => { window.__areas.ten.dispose(); document.getElementById('ten').remove(); delete window.__areas.ten; return true; }`, nil, nil)
	mountExecution(t, p, "hundred", hundred, nil, true)
	p.WaitFor(t, `#hundred [data-testid="stream-line"]`, "line 99999 of", 30*time.Second)
	h100 := heap()
	inc10, inc100 := h10-h0, h100-h0
	t.Logf("JS heap: %.1f MiB at the baseline, +%.2f MiB with 10,000 lines, +%.2f MiB with 100,000 lines (%.1fx)",
		h0/(1<<20), inc10/(1<<20), inc100/(1<<20), inc100/inc10)
	// NB: 50,000 lines kept of 100,000 cost 5x what 10,000 do; all of them
	// would cost 10x.
	if inc10 <= 0 || inc100 > 7.5*inc10 {
		t.Errorf("the page's memory grows with the output: +%.0f bytes for 10,000 lines, +%.0f for 100,000 (want far less than 10x)", inc10, inc100)
	}

	// Bounded: maxLines kept, the rest said, few rows in the DOM.
	p.WaitFor(t, `#hundred [data-testid="fulltext"]`, "50,000 earlier lines not kept — open the full text", 10*time.Second)
	var dom struct {
		Rows  int `json:"rows"`
		Nodes int `json:"nodes"`
	}
	p.Eval(t, `() => ({ rows: document.querySelectorAll('#hundred [data-testid="stream-line"]').length,
                      nodes: document.querySelectorAll('#hundred *').length })`, nil, &dom)
	t.Logf("100,000 lines: %d line elements, %d elements in the output area", dom.Rows, dom.Nodes)
	if dom.Rows >= 500 || dom.Nodes >= 1000 {
		t.Fatalf("100,000 lines put %d line elements (%d elements) in the DOM: want a bounded window", dom.Rows, dom.Nodes)
	}

	// Long outputs start collapsed; "show all" answers within 100 ms,
	// measured in the page from the pointer going down to the rows changed
	// and painted.
	p.WaitFor(t, `#hundred [data-testid="show-all"]`, "Show all 50,000 lines", 10*time.Second)
	p.Eval(t, `() => {
  const scroller = document.querySelector('#hundred .ov-scroller');
  const spacer = scroller.querySelector('.ov-spacer');
  window.__click = { down: 0, done: 0 };
  document.addEventListener('pointerdown', () => { window.__click.down = performance.now(); }, { capture: true, once: true });
  new MutationObserver((_, obs) => {
    obs.disconnect();
    requestAnimationFrame(() => setTimeout(() => { window.__click.done = performance.now(); }, 0));
  }).observe(spacer, { attributes: true });
  return true;
}`, nil, nil)
	p.Click(t, `#hundred [data-testid="show-all"]`)
	var clickMS float64
	testkit.WaitUntil(t, 10*time.Second, "the click's effect", func() (bool, string) {
		var c struct{ Down, Done float64 }
		p.Eval(t, `() => ({ Down: window.__click.down, Done: window.__click.done })`, nil, &c)
		clickMS = c.Done - c.Down
		return c.Down > 0 && c.Done > 0, fmt.Sprintf("%+v", c)
	})
	t.Logf("click on show-all → rows changed and painted: %.1f ms", clickMS)
	if clickMS > 100 {
		t.Errorf("a click took %.1f ms to answer with 100,000 lines streamed: want within 100 ms", clickMS)
	}
	// Scrolled to the end, the last line; to the top, the first kept one.
	scrollTo := func(where string, want string) {
		t.Helper()
		p.Eval(t, `(where) => { const s = document.querySelector('#hundred .ov-scroller'); s.scrollTop = where === 'end' ? s.scrollHeight : 0; return true; }`, where, nil)
		p.WaitFor(t, `#hundred [data-testid="stream-line"]`, want, 10*time.Second)
	}
	scrollTo("end", "line 99999 of")
	scrollTo("top", "line 50000 of")
	p.Eval(t, `() => document.querySelectorAll('#hundred [data-testid="stream-line"]').length`, nil, &dom.Rows)
	if dom.Rows >= 500 {
		t.Fatalf("expanded, %d line elements in the DOM", dom.Rows)
	}

	// The full text: fetched from the asset the server stores, shown in the
	// same view: the first line, dropped from the page, is back.
	p.Click(t, `#hundred [data-testid="fulltext"]`)
	p.WaitFor(t, `#hundred [data-testid="fulltext-shown"]`, "Showing the full text: 100,000 lines", 30*time.Second)
	scrollTo("top", "line 0 of")
	scrollTo("end", "line 99999 of")
	p.Eval(t, `() => document.querySelectorAll('#hundred [data-testid="stream-line"]').length`, nil, &dom.Rows)
	if dom.Rows >= 500 {
		t.Fatalf("with the full text, %d line elements in the DOM", dom.Rows)
	}
	p.NoScriptErrors(t)
}
