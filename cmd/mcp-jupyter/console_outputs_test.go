package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The web console's output renderer (infra/console/static/outputs.js) in a
// real Chromium, fed the raw IOPub outputs a real kernel produced for an
// agent (the same {seq, msg_type, content} the console's API and /ws carry).

// executionOutputs runs code as an agent and returns the execution's raw
// outputs as the server keeps them, every page of them.
func executionOutputs(t testing.TB, c *core, cl *client.Client, kernel, code string) (string, []queue.Output) {
	t.Helper()
	sc, text := executeToEnd(t, cl, map[string]any{"kernel": kernel, "code": code, "timeout_s": 120})
	if sc == nil {
		t.Fatalf("execute %q: %s", code, text)
	}
	id, _ := sc["execution_id"].(string)
	var all []queue.Output
	var since uint64
	for {
		ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 30*time.Second)
		v, err := c.back.Execution(ctx, id, since)
		cancel()
		if err != nil {
			t.Fatalf("read the outputs of %s: %v", id, err)
		}
		all = append(all, v.Outputs...)
		if !v.More {
			return id, all
		}
		since = v.Cursor
	}
}

// mountJS mounts an OutputArea on a test element (made once per id) of
// the console page, with the page's own outputs.css, and feeds it.
const mountJS = `async (arg) => {
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
    window.__areas[arg.id] = new OutputArea(host, arg.opts || {});
  }
  window.__areas[arg.id].appendMany(arg.outputs || []);
  return window.__areas[arg.id].lastSeq;
}`

func mountOutputs(t testing.TB, p *testkit.Page, id string, outputs []queue.Output, opts map[string]any) {
	t.Helper()
	if outputs == nil {
		outputs = []queue.Output{}
	}
	var last float64
	p.Eval(t, mountJS, map[string]any{"id": id, "outputs": outputs, "opts": opts}, &last)
}

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
		_, outs := executionOutputs(t, site.c, cl, kernel,
			"import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('a plot')\nplt.show()")
		p := site.open(t, 900, 700, "")
		defer p.Close(t)
		p.NoScriptErrors(t)
		mountOutputs(t, p, "plot", outs, nil)
		p.WaitFor(t, `#plot [data-testid="output"][data-msg-type="display_data"] img[data-testid="output-image"]`, "", 10*time.Second)
		var img struct {
			Width   float64 `json:"width"`
			Decoded bool    `json:"decoded"`
			Alt     string  `json:"alt"`
		}
		p.Eval(t, `async () => {
  const img = document.querySelector('#plot [data-testid="output-image"]');
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
		p.Screenshot(t, shot, "#plot")
		checkShotSize(t, shot)
		p.NoScriptErrors(t)
	})

	t.Run("ansi_colours_and_traceback", func(t *testing.T) {
		_, outs := executionOutputs(t, site.c, cl, kernel, strings.Join([]string{
			`print("\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m")`,
			`print("\x1b[38;5;208morange-256\x1b[0m \x1b[38;2;10;200;250mtruecolor\x1b[0m \x1b[4munder\x1b[24m")`,
			`print("\x1b[34mblue carried", end="\n")`,
			`print("still blue\x1b[0m")`,
			`def f(x):`,
			`    return 1 / x`,
			`f(0)`,
		}, "\n"))
		p := site.open(t, 900, 700, "")
		defer p.Close(t)
		mountOutputs(t, p, "ansi", outs, nil)
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
document.getElementById('hello').dataset.got = JSON.stringify(got);
</script>"""))`
		_, outs := executionOutputs(t, site.c, cl, kernel, code)
		p := site.open(t, 900, 700, "")
		defer p.Close(t)
		var token string
		// The page (app.js) adopts ?token= into the tab's sessionStorage.
		p.Eval(t, `async (tok) => {
  const api = await import('/ui/api.js');
  if (!api.token()) sessionStorage.setItem('mcp-jupyter-token', tok); // until app.js adopts it
  return api.token();
}`, site.c.token, &token)
		if token == "" {
			t.Fatal("the console kept no token: the test proves nothing")
		}
		mountOutputs(t, p, "html", outs, nil)
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
			var dbg any
			p.EvalFrame(t, `#html iframe[data-testid="output-html"]`, `async () => { const s = document.createElement('script'); s.src = 'frame.js'; const p = new Promise((ok) => { s.onload = () => ok('loaded'); s.onerror = (e) => ok('error'); }); document.head.append(s); return await p; }`, nil, &dbg)
			var dbg2 any
			p.Eval(t, `() => [...window.__areas.html._frames].map((r) => ({sent: r.sent, kind: r.kind, cw: !!r.iframe.contentWindow}))`, nil, &dbg2)
			t.Logf("frame: %v\nerrors: %v\nrecs %v", dbg, p.Errors(t), dbg2)
			t.Fatal("the HTML output's script did not run in its frame")
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
		// The frame's own height was reported: the page sized it to its content.
		var height float64
		p.Eval(t, `() => document.querySelector('#html iframe[data-testid="output-html"]').getBoundingClientRect().height`, nil, &height)
		if height < 16 || height > 400 {
			t.Errorf("the HTML frame is %v px high: want its content's height", height)
		}
		p.NoScriptErrors(t)
	})
}
