package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestConsoleOutputsHostile: outputs made to hurt the person looking at
// them — a tab frozen by a line of backspaces, exhausted by hundreds of
// frames, or a frame turned into a page of someone else's — driven from a
// real kernel, shown by the console's OutputArea in a real Chromium.
func TestConsoleOutputsHostile(t *testing.T) {
	site := startConsoleSite(t)
	cl := site.connect()
	kernel := startKernelTool(t, cl)

	t.Run("backspace_run_is_linear", func(t *testing.T) {
		// 2 MB: a 1,000,000-character line, then 500,000 "\bx" (each
		// rewrites the last character). Re-slicing the line per \b costs
		// O(line) each: minutes, the tab frozen.
		x := runExecution(t, cl, kernel, `print('x'*1_000_000 + '\bx'*500_000, end='')`)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		start := time.Now()
		mountExecution(t, p, "bs", x, nil, false)
		p.WaitFor(t, `#bs [data-testid="stream-line"]`, "990,000 more characters on this line", 10*time.Second)
		took := time.Since(start)
		t.Logf("2 MB of x and \\bx fetched and shown in %s", took)
		if took > 8*time.Second {
			t.Errorf("the line took %s to show: want a few seconds at most", took)
		}
		var row string
		p.Eval(t, `() => { const r = [...document.querySelectorAll('#bs [data-testid="stream-line"]')].filter((e) => !e.hidden); return r.length === 1 ? r[0].textContent : 'rows: ' + r.length; }`, nil, &row)
		want := strings.Repeat("x", 10_000) + " … 990,000 more characters on this line"
		if row != want {
			t.Fatalf("the line shows %.80q… (%d chars), want 10,000 x then %q", row, len(row), want[10_000:])
		}
		if ms := clickLatency(t, p); ms > 100 {
			t.Errorf("a click took %.1f ms to answer after the line: want within 100 ms", ms)
		}
		p.NoScriptErrors(t)
	})

	t.Run("frame_budget", func(t *testing.T) {
		// 50 Plotly figures (25 with a static PNG beside them) and 200
		// HTML outputs in one execution: each would be a frame, each
		// figure's frame a copy of plotly.js.
		x := runExecution(t, cl, kernel, `import plotly.graph_objects as go
from IPython.display import HTML, display
png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=='
for i in range(25):
    go.Figure(go.Bar(y=[i, 1, 2])).show()
for i in range(25):
    fig = go.Figure(go.Bar(y=[i, 2, 1]))
    display({'application/vnd.plotly.v1+json': fig.to_plotly_json(), 'image/png': png, 'text/plain': 'figure'}, raw=True)
for i in range(200):
    display(HTML(f'<p>html output {i}</p>'))`)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		if n := mountExecution(t, p, "budget", x, nil, false); n < 250 {
			t.Fatalf("mounted %d outputs, want 250", n)
		}
		p.WaitFor(t, `#budget iframe[data-testid="output-plotly"][data-drawn="true"]`, "", 60*time.Second)
		var got struct {
			Plotly, HTML, PlotlyButtons, HTMLButtons, Images, HTMLOutputs int
		}
		count := func() {
			p.Eval(t, `() => {
  const n = (s) => document.querySelectorAll('#budget ' + s).length;
  return { Plotly: n('iframe[data-testid="output-plotly"]'), HTML: n('iframe[data-testid="output-html"]'),
           PlotlyButtons: n('[data-testid="render-plotly"]'), HTMLButtons: n('[data-testid="render-html"]'),
           Images: n('[data-budget="over"] [data-testid="output-image"]'), HTMLOutputs: n('[data-mime="text/html"]') };
}`, nil, &got)
		}
		count()
		t.Logf("250 outputs: %+v", got)
		if got.Plotly != 8 || got.HTML != 64 {
			t.Fatalf("%d Plotly frames and %d HTML frames exist: want the budget, 8 and 64", got.Plotly, got.HTML)
		}
		// NB: plotly's first fig.show() in a kernel also sends an HTML
		// output of its own (its notebook renderer's setup).
		if got.PlotlyButtons != 42 || got.HTMLOutputs < 200 || got.HTMLButtons != got.HTMLOutputs-64 || got.Images != 25 {
			t.Fatalf("past the budget: %d Plotly and %d HTML buttons (of %d HTML outputs), %d static images: want 42, all but 64, and 25",
				got.PlotlyButtons, got.HTMLButtons, got.HTMLOutputs, got.Images)
		}
		if ms := clickLatency(t, p); ms > 100 {
			t.Errorf("a click took %.1f ms to answer with 250 frame outputs: want within 100 ms", ms)
		}
		// Asked for, a figure past the budget is started (the person's
		// choice) and drawn.
		p.Eval(t, `() => { const b = document.querySelectorAll('#budget [data-testid="render-plotly"]'); b[b.length - 1].scrollIntoView(); return true; }`, nil, nil)
		var last string
		p.Eval(t, `() => { const b = document.querySelectorAll('#budget [data-testid="render-plotly"]'); const o = b[b.length - 1].closest('[data-testid="output"]'); o.id = 'asked'; b[b.length - 1].click(); return o.id; }`, nil, &last)
		p.WaitFor(t, `#asked iframe[data-testid="output-plotly"][data-drawn="true"]`, "", 60*time.Second)
		count()
		if got.Plotly != 9 || got.PlotlyButtons != 41 {
			t.Fatalf("after asking for one: %+v, want 9 Plotly frames and 41 buttons", got)
		}
		p.NoScriptErrors(t)
	})

	t.Run("frame_cannot_navigate_itself", func(t *testing.T) {
		// A frame that turns itself into a remote page (a fake "paste your
		// token" box): the console's frame-src refuses the navigation, so
		// the remote page is never even requested.
		var mu sync.Mutex
		var hits []string
		beacon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, r.Method+" "+r.URL.Path)
			mu.Unlock()
			_, _ = w.Write([]byte(`<!doctype html><p id="phish">Your session expired: paste your token here</p>`))
		}))
		defer beacon.Close()
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(beacon.URL, "http://"))
		code := fmt.Sprintf(`from IPython.display import HTML, display
display(HTML("<p id='a'>one</p><script>setTimeout(function () { location.href = 'http://127.0.0.1:%[1]s/x'; }, 10)</script>"))
display(HTML("<meta http-equiv='refresh' content='0;url=http://127.0.0.1:%[1]s/y'><p id='b'>two</p>"))`, port)
		x := runExecution(t, cl, kernel, code)
		p, _ := openOutputsPage(t, site, 900, 700)
		defer p.Close(t)
		mountExecution(t, p, "nav", x, nil, false)
		// Both attempts happen and are refused: Chromium reports each
		// refusal (frame-src; it names the origin, not the path) on the
		// page's console.
		beaconHost := "127.0.0.1:" + port
		testkit.WaitUntil(t, 20*time.Second, "both navigations refused", func() (bool, string) {
			var refused []string
			for _, e := range p.Errors(t) {
				if strings.Contains(e.Text, beaconHost) {
					refused = append(refused, e.Text)
				}
			}
			mu.Lock()
			n := len(hits)
			mu.Unlock()
			return len(refused) >= 2 || n > 0, fmt.Sprintf("refusals %q, beacon hits %d", refused, n)
		})
		mu.Lock()
		got := append([]string(nil), hits...)
		mu.Unlock()
		if len(got) > 0 {
			t.Fatalf("an output frame navigated itself to a remote page: the beacon got %q", got)
		}
		for _, e := range p.Errors(t) {
			if !strings.Contains(e.Text, beaconHost) || !strings.Contains(e.Text, "frame-src") {
				t.Errorf("script error: %s: %s", e.Kind, e.Text)
			}
		}
	})
}

// clickLatency clicks a button added to the page and returns the time
// from the pointer going down to its effect painted, measured in the page.
func clickLatency(t *testing.T, p *testkit.Page) float64 {
	t.Helper()
	p.Eval(t, `() => {
  let b = document.getElementById('latency-probe');
  if (!b) {
    b = document.createElement('button');
    b.id = 'latency-probe'; b.type = 'button'; b.textContent = 'probe';
    b.style.position = 'fixed'; b.style.top = '0'; b.style.right = '0'; b.style.zIndex = '9';
    b.addEventListener('click', () => { b.textContent = b.textContent === 'probe' ? 'probed' : 'probe'; });
    document.body.append(b);
  }
  window.__probe = { down: 0, done: 0 };
  document.addEventListener('pointerdown', () => { window.__probe.down = performance.now(); }, { capture: true, once: true });
  new MutationObserver((_, obs) => {
    obs.disconnect();
    requestAnimationFrame(() => setTimeout(() => { window.__probe.done = performance.now(); }, 0));
  }).observe(b, { childList: true, characterData: true, subtree: true });
  return true;
}`, nil, nil)
	p.Click(t, `#latency-probe`)
	var ms float64
	testkit.WaitUntil(t, 10*time.Second, "the click's effect", func() (bool, string) {
		var c struct{ Down, Done float64 }
		p.Eval(t, `() => ({ Down: window.__probe.down, Done: window.__probe.done })`, nil, &c)
		ms = c.Done - c.Down
		return c.Down > 0 && c.Done > 0, fmt.Sprintf("%+v", c)
	})
	t.Logf("click → effect painted: %.1f ms", ms)
	return ms
}
