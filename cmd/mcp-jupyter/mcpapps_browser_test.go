package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The MCP Apps host of TestMCPAppsViewInAHost is a web page that is not
// ours: @modelcontextprotocol/ext-apps's AppBridge (npm, pinned in
// testkit/outside/console/package.json), loaded bundle-free through an
// import map onto the node_modules files this test serves. Around it, as
// the specification asks of web hosts, a sandbox proxy on another origin
// (localhost instead of 127.0.0.1) served with the CSP the specification
// builds from the view's _meta.ui.csp; the proxy loads the view in an inner
// frame and relays messages (a few lines, below: the package ships no proxy).

// appHostPage is the host: the bridge, the proxy frame, nothing else.
const appHostPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MCP Apps test host</title>
<script type="importmap">%s</script>
<style>body{font:14px sans-serif;margin:12px} iframe{width:780px;height:200px;border:1px solid #999;display:block}</style>
</head><body>
<p>Test host (ext-apps AppBridge): <span id="state" data-state="loading">loading</span></p>
<iframe id="sandbox" title="mcp-jupyter execution view" sandbox="allow-scripts allow-same-origin"></iframe>
<script type="module" src="/host.js"></script>
</body></html>`

const appHostScript = `import { AppBridge, PostMessageTransport } from '@modelcontextprotocol/ext-apps/app-bridge';
const state = document.getElementById('state');
const set = (s) => { state.dataset.state = s; state.textContent = s; };
const fx = await (await fetch('/fixture.json')).json();
const frame = document.getElementById('sandbox');
window.__host = { sizes: [], logs: [], toolCalls: [], attempts: [] };
// Every message reaching the host's window, to see an output's attempt arrive
// (and not be honoured: the bridge only listens to the proxy's window).
window.addEventListener('message', (e) => { if (e.source !== frame.contentWindow) window.__host.attempts.push(e.data); });
const bridge = new AppBridge(null, { name: 'ext-apps-test-host', version: '1' }, { logging: {} },
  { hostContext: { theme: 'light', displayMode: 'inline', availableDisplayModes: ['inline'], platform: 'web',
                   containerDimensions: { maxHeight: 4000 }, locale: 'en-US' } });
bridge.onsizechange = ({ width, height }) => { window.__host.sizes.push({ width, height }); if (height) frame.style.height = height + 'px'; };
bridge.onloggingmessage = (p) => window.__host.logs.push(p);
bridge.oncalltool = async (p) => { window.__host.toolCalls.push(p); return { content: [], isError: true }; };
bridge.onsandboxready = async () => {
  await bridge.sendSandboxResourceReady({ html: fx.html, csp: fx.csp });
  set('resource-sent');
};
bridge.oninitialized = async () => {
  set('initialized');
  await bridge.sendToolInput({ arguments: fx.toolInput });
  await bridge.sendToolResult(fx.toolResult);
  set('result-sent');
};
window.__host.bridge = bridge;
await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
frame.src = fx.sandboxURL;
`

// appSandboxPage is the proxy: forwards every message but its own
// (ui/notifications/sandbox-*) between the host and the view.
const appSandboxPage = `<!doctype html>
<html><head><meta charset="utf-8"><style>html,body{margin:0;height:100%%}iframe{border:0;width:100%%;height:100%%;display:block}</style></head>
<body><script>
const inner = document.createElement('iframe');
inner.name = 'mcp-app';
inner.title = 'view';
const own = (m) => m && typeof m.method === 'string' && m.method.startsWith('ui/notifications/sandbox-');
window.addEventListener('message', (e) => {
  const m = e.data;
  if (e.source === window.parent) {
    if (own(m)) {
      if (m.method === 'ui/notifications/sandbox-resource-ready') {
        inner.setAttribute('sandbox', (m.params && m.params.sandbox) || 'allow-scripts allow-same-origin');
        inner.srcdoc = m.params.html;
      }
      return;
    }
    inner.contentWindow.postMessage(m, '*');
  } else if (e.source === inner.contentWindow && !own(m)) {
    window.parent.postMessage(m, %q);
  }
});
document.body.append(inner);
window.parent.postMessage({ jsonrpc: '2.0', method: 'ui/notifications/sandbox-proxy-ready', params: {} }, %q);
</script></body></html>`

// appHostCSP is the specification's CSP for a view (its "CSP Construction
// from Metadata"), from the view's declared origins.
func appHostCSP(connect, resource, frame []string) string {
	or := func(list []string, dflt string) string {
		if len(list) == 0 {
			return dflt
		}
		return strings.Join(list, " ")
	}
	res := strings.Join(resource, " ")
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self' 'unsafe-inline' " + res,
		"style-src 'self' 'unsafe-inline' " + res,
		"connect-src 'self' " + strings.Join(connect, " "),
		"img-src 'self' data: " + res,
		"font-src 'self' " + res,
		"media-src 'self' data: " + res,
		"frame-src " + or(frame, "'none'"),
		"object-src 'none'",
		"base-uri 'self'",
	}, "; ")
}

// nodeModulesDir is testkit/outside/console/node_modules.
func nodeModulesDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testkit", "outside", "console", "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "@modelcontextprotocol", "ext-apps", "package.json")); err != nil {
		t.Fatalf("@modelcontextprotocol/ext-apps is not installed: run `npm ci --prefix testkit/outside/console` (make deps does): %v", err)
	}
	return dir
}

// resolveBrowserModule finds the file a bare specifier names, as a browser
// bundler would: the package's "exports" with the browser, import and
// default conditions, else its module or main field.
func resolveBrowserModule(t testing.TB, nm, spec string) string {
	t.Helper()
	parts := strings.Split(spec, "/")
	n := 1
	if strings.HasPrefix(spec, "@") {
		n = 2
	}
	pkg, sub := strings.Join(parts[:n], "/"), "."+strings.TrimPrefix(spec, strings.Join(parts[:n], "/"))
	b, err := os.ReadFile(filepath.Join(nm, pkg, "package.json"))
	if err != nil {
		t.Fatalf("resolve %s: %v", spec, err)
	}
	var pj struct {
		Exports any    `json:"exports"`
		Module  string `json:"module"`
		Main    string `json:"main"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		t.Fatalf("resolve %s: %v", spec, err)
	}
	var pick func(v any) string
	pick = func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case map[string]any:
			for _, cond := range []string{"browser", "import", "default"} {
				if c, ok := v[cond]; ok {
					if s := pick(c); s != "" {
						return s
					}
				}
			}
		}
		return ""
	}
	target := ""
	switch e := pj.Exports.(type) {
	case string:
		if sub == "." {
			target = e
		}
	case map[string]any:
		if c, ok := e[sub]; ok {
			target = pick(c)
		} else if sub == "." {
			target = pick(e)
		}
	}
	if target == "" && sub == "." {
		target = pj.Module
		if target == "" {
			target = pj.Main
		}
	}
	if target == "" {
		t.Fatalf("resolve %s: no browser entry in %s/package.json", spec, pkg)
	}
	return path.Join("/nm", pkg, target)
}

// appBridgeImports are the bare specifiers app-bridge.js reaches (its
// module graph in ext-apps 2.0.4 with its peers).
var appBridgeImports = []string{
	"@modelcontextprotocol/ext-apps/app-bridge",
	"@modelcontextprotocol/client", "@modelcontextprotocol/client/_shims",
	"@modelcontextprotocol/core", "@modelcontextprotocol/core/internal",
	"zod", "zod/v4", "zod/compile",
	"pkce-challenge", "eventsource", "eventsource-parser", "eventsource-parser/stream", "jose",
}

// appHost serves the host page, the proxy, the bridge's modules and the
// fixture, and records every request it answers.
type appHost struct {
	ts       *httptest.Server
	mu       sync.Mutex
	requests []string // "host path"
}

func (h *appHost) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

func startAppHost(t testing.TB, fixture map[string]any, csp string) *appHost {
	t.Helper()
	nm := nodeModulesDir(t)
	imports := map[string]string{}
	for _, spec := range appBridgeImports {
		imports[spec] = resolveBrowserModule(t, nm, spec)
	}
	importMap, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		t.Fatal(err)
	}
	h := &appHost{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /host.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, appHostPage, importMap)
	})
	mux.HandleFunc("GET /host.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		fmt.Fprint(w, appHostScript)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /fixture.json", func(w http.ResponseWriter, r *http.Request) {
		// NB: the proxy on another origin, as the specification requires:
		// localhost instead of 127.0.0.1, same port.
		_, port, _ := strings.Cut(r.Host, ":")
		out := map[string]any{"sandboxURL": "http://localhost:" + port + "/sandbox.html"}
		for k, v := range fixture {
			out[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /sandbox.html", func(w http.ResponseWriter, r *http.Request) {
		hostOrigin := "http://127.0.0.1:" + r.URL.Port()
		if u, err := url.Parse(h.ts.URL); err == nil {
			hostOrigin = u.Scheme + "://" + u.Host
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", csp)
		fmt.Fprintf(w, appSandboxPage, hostOrigin, hostOrigin)
	})
	mux.HandleFunc("GET /nm/", func(w http.ResponseWriter, r *http.Request) {
		rel := path.Clean(strings.TrimPrefix(r.URL.Path, "/nm/"))
		if strings.HasPrefix(rel, "..") || !strings.HasSuffix(rel, "js") {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(nm, filepath.FromSlash(rel)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(b)
	})
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests = append(h.requests, r.Host+" "+r.URL.Path)
		h.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(h.ts.Close)
	return h
}

// point is a position in the page's CSS pixels.
type point struct{ X, Y float64 }

// frameOrigin is where the content of the first iframe matching selector
// starts, in the coordinates of the document evaluated in.
const frameOrigin = `(sel) => { const f = document.querySelector(sel); const r = f.getBoundingClientRect();
  return { X: r.left + f.clientLeft, Y: r.top + f.clientTop }; }`

// TestMCPAppsViewInAHost: a host that is not ours (ext-apps's AppBridge, in
// a real Chromium) renders the execution view in a sandboxed frame under the
// specification's CSP, speaks the protocol with it (ui/initialize, the
// initialized notification, tool-input, tool-result, size-changed) and hands
// it the real result of an execute that drew a Plotly figure, a matplotlib
// plot and an HTML output whose script tries to make the host call a tool:
// the view shows the image and an interactive figure (hovering a point shows
// its label; dragging zooms the axis), the HTML output's attempt reaches the
// host's window but no tool is called, no script error, nothing fetched.
func TestMCPAppsViewInAHost(t *testing.T) {
	c, connect := inProcess(t)
	apps, _ := appsInProcess(t, c)
	kernel := startKernelTool(t, connect())
	args := map[string]any{"kernel": kernel, "code": appFigureCode, "timeout_s": 90}
	res := appsCall(t, apps, "execute", args)
	if _, ok := appDataOf(t, res); !ok {
		t.Fatalf("execute: no view data in the result")
	}
	view, meta, _ := readAppView(t, apps)
	var toolResult map[string]any
	roundTrip(t, res, &toolResult)
	var csp struct{ connect, resource, frame []string }
	if meta.UI.CSP != nil {
		csp.connect, csp.resource, csp.frame = meta.UI.CSP.ConnectDomains, meta.UI.CSP.ResourceDomains, meta.UI.CSP.FrameDomains
	}
	fixture := map[string]any{"html": view.Text, "toolInput": args, "toolResult": toolResult,
		"csp": map[string]any{"connectDomains": csp.connect, "resourceDomains": csp.resource}}
	host := startAppHost(t, fixture, appHostCSP(csp.connect, csp.resource, csp.frame))

	b := testkit.StartBrowser(t)
	page := b.NewPage(900, 1400)
	defer page.Close(t)
	if st := page.Goto(t, host.ts.URL+"/host.html"); st != 200 {
		t.Fatalf("GET /host.html: %d", st)
	}
	if err := page.TryWaitFor(`#state[data-state="result-sent"]`, "", 60*time.Second); err != nil {
		t.Fatalf("the host and the view did not complete the handshake: %v\nscript errors: %+v", err, page.Errors(t))
	}

	// The view: its status, the code from tool-input, the image, the figure.
	type viewState struct {
		Status, Code   string
		Images, Frames int
		ImageWidth     int
		Drawn          string
	}
	var vs viewState
	testkit.WaitUntil(t, 60*time.Second, "the view shows the execution's image and its drawn Plotly figure", func() (bool, string) {
		err := page.TryEvalFrameNamed("mcp-app", `() => {
			const q = (s) => document.querySelector(s);
			const img = q('[data-testid="outputs"] [data-testid="output-image"]');
			const fig = q('iframe[data-testid="output-plotly"]');
			return { Status: q('[data-testid="app-status"]').dataset.status, Code: q('[data-testid="app-code"]').textContent,
				Images: document.querySelectorAll('[data-testid="output-image"]').length,
				Frames: document.querySelectorAll('iframe[data-testid="output-plotly"]').length,
				ImageWidth: img ? img.naturalWidth : 0, Drawn: fig ? (fig.dataset.drawn || '') : '' };
		}`, nil, &vs)
		return err == nil && vs.Status == "ok" && vs.ImageWidth > 0 && vs.Drawn == "true", fmt.Sprintf("%+v %v", vs, err)
	})
	if vs.Images != 1 || vs.Frames != 1 || !strings.Contains(vs.Code, "go.Scatter") {
		t.Fatalf("the view shows %d images and %d figures (want 1 and 1), code %q", vs.Images, vs.Frames, vs.Code)
	}

	// The view as the host shows it (docs/console/mcp-app.png).
	shot := filepath.Join(t.TempDir(), "mcp-app.png")
	if os.Getenv("CONSOLE_SCREENSHOTS") == "1" {
		shot = filepath.Join("..", "..", "docs", "console", "mcp-app.png")
	}
	page.Screenshot(t, shot, "#sandbox")
	if fi, err := os.Stat(shot); err != nil || fi.Size() > 300<<10 {
		t.Errorf("screenshot %s: %v, %d bytes (want < 300 KB)", shot, err, sizeOf(fi))
	}

	// Interactive: hover the point (2, 11), then drag across the x axis.
	var proxyAt, appAt, figAt point
	page.Eval(t, frameOrigin, "#sandbox", &proxyAt)
	if err := page.TryEvalFrameNamed("mcp-app", frameOrigin, `iframe[name="plotly-1"]`, &figAt); err != nil {
		t.Fatal(err)
	}
	// The proxy's inner frame fills it, at its origin.
	appAt = point{}
	type axes struct {
		PX, PY, X1, X3, YMid float64
		XRange               []float64
		Hover                string
	}
	plot := func() axes {
		var a axes
		if err := page.TryEvalFrameNamed("plotly-1", `() => {
			const gd = document.getElementById('plot'); const fl = gd._fullLayout; const s = fl._size;
			const hover = [...document.querySelectorAll('.hoverlayer .hovertext')].map((e) => e.textContent).join('|');
			return { PX: s.l + fl.xaxis.l2p(2), PY: s.t + fl.yaxis.l2p(11), X1: s.l + fl.xaxis.l2p(1.5), X3: s.l + fl.xaxis.l2p(3.5),
				YMid: s.t + s.h / 2, XRange: fl.xaxis.range.map(Number), Hover: hover };
		}`, nil, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := plot()
	at := func(x, y float64) (float64, float64) {
		return proxyAt.X + appAt.X + figAt.X + x, proxyAt.Y + appAt.Y + figAt.Y + y
	}
	hx, hy := at(before.PX, before.PY)
	page.Mouse(t, "move", hx-3, hy-3)
	page.Mouse(t, "move", hx, hy)
	testkit.WaitUntil(t, 10*time.Second, "a hover label on the figure's point (2, 11)", func() (bool, string) {
		a := plot()
		return strings.Contains(a.Hover, "11"), a.Hover
	})
	x1, y := at(before.X1, before.YMid)
	x3, _ := at(before.X3, before.YMid)
	page.Mouse(t, "move", x1, y)
	page.Mouse(t, "down", 0, 0)
	for i := 1; i <= 8; i++ {
		page.Mouse(t, "move", x1+(x3-x1)*float64(i)/8, y)
	}
	page.Mouse(t, "up", 0, 0)
	testkit.WaitUntil(t, 10*time.Second, "the drag zooms the x axis", func() (bool, string) {
		a := plot()
		return len(a.XRange) == 2 && a.XRange[0] > before.XRange[0]+0.2 && a.XRange[1] < before.XRange[1]-0.2,
			fmt.Sprintf("range %v, before %v", a.XRange, before.XRange)
	})

	// The agent's HTML output ran in its own frame, tried to make the host
	// call a tool and resize the view, and reached nothing: the host saw the
	// attempt arrive from a window that is not the view's, and the bridge
	// never called a tool.
	var htmlFrames int
	if err := page.TryEvalFrameNamed("mcp-app", `() => document.querySelectorAll('[data-testid="outputs"] iframe[data-testid="output-html"]').length`, nil, &htmlFrames); err != nil || htmlFrames != 1 {
		t.Fatalf("the view shows %d HTML output frames (%v), want 1", htmlFrames, err)
	}
	var html struct {
		Attempts []map[string]any
		Calls    []any
	}
	testkit.WaitUntil(t, 20*time.Second, "the HTML output's script ran (its attempt reached the host's window)", func() (bool, string) {
		page.Eval(t, `() => ({ Attempts: window.__host.attempts, Calls: window.__host.toolCalls })`, nil, &html)
		return len(html.Attempts) > 0, fmt.Sprintf("%+v", html)
	})
	if len(html.Calls) != 0 {
		t.Fatalf("an agent's HTML output made the host call a tool: %v", html.Calls)
	}
	for _, a := range html.Attempts {
		if a["method"] != "tools/call" && a["method"] != "ui/notifications/size-changed" {
			t.Errorf("an unexpected message reached the host from outside the view: %v", a)
		}
	}

	// The host heard the view's size; the view fetched nothing.
	var sizes []struct{ Height float64 }
	page.Eval(t, `() => window.__host.sizes`, nil, &sizes)
	if len(sizes) == 0 || sizes[len(sizes)-1].Height < 500 {
		// NB: a size-changed of 1x1 (the output's forgery) never reaches the
		// bridge: the last size is the view's own.
		t.Errorf("the host got no usable ui/notifications/size-changed: %v", sizes)
	}
	for _, r := range host.seen() {
		hostPart, p, _ := strings.Cut(r, " ")
		switch {
		case strings.HasPrefix(hostPart, "localhost:") && p == "/sandbox.html":
		case strings.HasPrefix(hostPart, "127.0.0.1:") && (p == "/host.html" || p == "/host.js" || p == "/fixture.json" || p == "/favicon.ico" || strings.HasPrefix(p, "/nm/")):
		default:
			t.Errorf("a request the host did not make: %s (the view must fetch nothing)", r)
		}
	}

	// Teardown: the host asks, the view answers and lets its outputs go.
	var left int
	page.Eval(t, `async () => { await window.__host.bridge.teardownResource({}); return 0; }`, nil, &left)
	if err := page.TryEvalFrameNamed("mcp-app", `() => document.querySelectorAll('[data-testid="outputs"] *').length`, nil, &left); err != nil || left != 0 {
		t.Errorf("after ui/resource-teardown the view still holds %d output elements (%v)", left, err)
	}
	page.NoScriptErrors(t)
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}
