package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The web console's figures (issue 17, docs/console.md, "Figures"):
//
//   - BenchmarkConsoleIOPubToText: from a line a kernel prints to its text
//     on an open page, while 64 executions stream at once.
//   - BenchmarkConsole100kLines: a page following an execution that prints
//     100,000 lines still answers a click within 100 ms, and its memory and
//     DOM stay bounded (100,000 lines vs 10,000 in the same run).
//
// Both report figures only: a missed target is NOT MET in docs/benchmarks.md,
// never a failed run. Only a broken setup (a kernel that does not start, a
// page that never shows the execution) fails.

// consoleBench is a real server on an HTTP port (in-process core, as
// `mcp-jupyter serve` wires it) and a real Chromium looking at it.
type consoleBench struct {
	c       *core
	ts      *httptest.Server
	browser *testkit.Browser
}

func startConsoleBench(b *testing.B) *consoleBench {
	b.Helper()
	cfg := testConfig(b, testkit.TempDataDir(b))
	c, err := openCore(context.Background(), cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.close(context.Background()) })
	b.Cleanup(func() { testkit.KillKernels(b, cfg.DataDir) })
	mux := http.NewServeMux()
	mux.Handle("/", c.httpHandler())
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	return &consoleBench{c: c, ts: ts, browser: testkit.StartBrowser(b)}
}

// startKernels starts n kernels, at most atOnce starting at a time (each
// binds its own ports, so parallel starts cannot collide; a few at a time
// keep a 2-core machine from timing them out).
func (cb *consoleBench) startKernels(ctx context.Context, b *testing.B, n, atOnce int) []string {
	b.Helper()
	ids := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, atOnce)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := cb.c.sys.StartKernel(ctx, "python3", fmt.Sprintf("console-bench-%d", i), "", "admin")
			ids[i], errs[i] = st.ID, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("start kernel %d of %d: %v", i, n, err)
		}
	}
	return ids
}

// executionView opens the page that follows one execution's outputs, with
// the admin token, and waits until it shows that execution.
func (cb *consoleBench) executionView(b *testing.B, executionID string) *testkit.Page {
	b.Helper()
	p := cb.browser.NewPage(1280, 800)
	u := cb.ts.URL + "/ui/?token=" + url.QueryEscape(cb.c.token) + "#/execution/" + url.PathEscape(executionID)
	if st := p.Goto(b, u); st != http.StatusOK {
		b.Fatalf("GET %s: status %d", strings.Split(u, "?")[0], st)
	}
	p.WaitFor(b, `[data-testid="execution-view"]`, "", 60*time.Second)
	p.WaitFor(b, `[data-testid="live"][data-state="live"]`, "", 60*time.Second)
	return p
}

// gate holds executions until released: each connects to it from its
// kernel, says its number and blocks reading one byte. Nothing polls: the
// release is a write on every connection.
type gate struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	in    chan int
}

func openGate(b *testing.B) *gate {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := &gate{ln: ln, in: make(chan int, 1024)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, conn)
			g.mu.Unlock()
			go func() {
				line, err := bufio.NewReader(conn).ReadString('\n')
				if n, perr := strconv.Atoi(strings.TrimSpace(line)); err == nil && perr == nil {
					g.in <- n
				}
			}()
		}
	}()
	b.Cleanup(g.close)
	return g
}

func (g *gate) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// waitArrived waits until n executions are at the gate (so all n run at once).
func (g *gate) waitArrived(ctx context.Context, b *testing.B, n int) {
	b.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-g.in:
		case <-ctx.Done():
			b.Fatalf("only %d of %d executions reached the gate: %v", i, n, ctx.Err())
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		_, _ = c.Write([]byte("g"))
	}
}

func (g *gate) close() {
	_ = g.ln.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		_ = c.Close()
	}
}

// gatedCode is Python that waits at the gate, then runs body.
func gatedCode(port, x int, body string) string {
	return fmt.Sprintf("import socket, time\n_g = socket.create_connection(('127.0.0.1', %d))\n_g.sendall(b'%d\\n')\n_g.recv(1)\n%s", port, x, body)
}

// stampedLine matches the lines the streaming executions print: x<execution
// number> i<line number> t=<time.time_ns()//1000 when printed, µs since the epoch>.
var stampedLine = regexp.MustCompile(`x(\d+) i(\d+) t=(\d+)`)

// pageProbeJS installs, in the page, a MutationObserver that records for
// every stamped line the first time its text is in the DOM and the start of
// the next animation frame (the frame that paints it), both as wall-clock
// milliseconds (performance.timeOrigin + performance.now(): the same clock
// as Python's time.time_ns on this machine, at sub-millisecond precision).
// With arg.every = k only every k-th line (numbers k-1, 2k-1, ...) is
// recorded, so that the probe's own records stay small beside the page's
// heap. Every mutation's new text is scanned (added nodes, changed text nodes):
// the page's own way of rendering (a row per line, text appended to a
// node, recycled rows of a virtualised list) does not matter.
//
// With arg.feed (a pattern naming the followed executions' lines), it also
// records every such line the page's live feed receives, when it receives
// it: LiveFeed._receive (live.js, the one place /ws text enters the page)
// is wrapped on its prototype, which the running feed looks up on every
// message. These are the lines the page was given to show; a line given
// but never in the DOM (a virtualised view scrolled past it between two
// frames) is a line the page did not show, and counts as such.
const pageProbeJS = `async (arg) => {
  const re = new RegExp(arg.pattern, 'g');
  const every = arg.every || 1;
  const seen = new Map();
  const pending = [];
  const wall = () => performance.timeOrigin + performance.now();
  const scan = (text, at) => {
    if (!text) return;
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (Number(m[2]) % every !== every - 1) continue;
      const key = m[1] + ' ' + m[2];
      if (seen.has(key)) continue;
      const rec = [Number(m[3]) / 1000, at, 0];
      seen.set(key, rec);
      pending.push(rec);
    }
  };
  const obs = new MutationObserver((muts) => {
    const at = wall();
    for (const mu of muts) {
      if (mu.type === 'characterData') scan(mu.target.data, at);
      else for (const n of mu.addedNodes) scan(n.textContent, at);
    }
    if (pending.length) requestAnimationFrame(() => {
      const f = wall();
      for (const rec of pending.splice(0)) rec[2] = f;
    });
  });
  obs.observe(document.body, { childList: true, subtree: true, characterData: true });
  const fed = new Map();
  if (arg.feed) {
    const { LiveFeed } = await import(new URL('live.js', document.baseURI).href);
    const receive = LiveFeed.prototype._receive;
    const fre = new RegExp(arg.feed, 'g');
    LiveFeed.prototype._receive = function (data) {
      const at = wall();
      fre.lastIndex = 0;
      let m;
      while ((m = fre.exec(data)) !== null) {
        const key = m[1] + ' ' + m[2];
        if (!fed.has(key)) fed.set(key, [Number(m[3]) / 1000, at]);
      }
      return receive.call(this, data);
    };
  }
  window.__consoleBench = { seen, fed, obs, wall };
  return true;
}`

// fedLine is one line the page's feed received, and what the page did
// with it (page clock, wall-clock ms; 0 when it never happened).
type fedLine struct {
	Printed, Fed, InDOM, Painted float64
}

// fedSamples returns every followed line the page's feed received, and
// the page's clock now (the end of the run for lines it never showed).
func fedSamples(b *testing.B, p *testkit.Page) (lines []fedLine, end float64) {
	b.Helper()
	var r struct {
		Fed [][2]float64 `json:"fed"`
		DOM [][3]float64 `json:"dom"`
		End float64      `json:"end"`
	}
	p.Eval(b, `() => {
  const s = window.__consoleBench;
  const fed = [], dom = [];
  for (const [key, f] of s.fed) { fed.push(f); dom.push(s.seen.get(key) || [0, 0, 0]); }
  return { fed, dom, end: s.wall() };
}`, nil, &r)
	for i, f := range r.Fed {
		lines = append(lines, fedLine{Printed: f[0], Fed: f[1], InDOM: r.DOM[i][1], Painted: r.DOM[i][2]})
	}
	return lines, r.End
}

// fedCounts says, for a page following executions, how many of their lines
// its feed received and how many of those it painted.
func fedCounts(b *testing.B, p *testkit.Page) (fed, painted int) {
	b.Helper()
	var r [2]int
	p.Eval(b, `() => {
  const s = window.__consoleBench;
  let painted = 0;
  for (const key of s.fed.keys()) { const r = s.seen.get(key); if (r && r[2]) painted++; }
  return [s.fed.size, painted];
}`, nil, &r)
	return r[0], r[1]
}

// pollUntil polls cond until it holds or timeout passes, and says which:
// for waits whose running out is a figure (lines never painted), not a
// broken setup.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause) // NB: a poll interval, not an ordering: cond decides
		pause = min(2*pause, 20*time.Millisecond)
	}
	return true
}

// clockSkewMs is how far the page's clock (timeOrigin + now, monotonic
// since the page opened) is from Date.now() (the wall clock) at this
// moment: the error the latencies may carry from the page's side.
func clockSkewMs(b *testing.B, p *testkit.Page) float64 {
	b.Helper()
	var d float64
	p.Eval(b, `() => window.__consoleBench.wall() - Date.now()`, nil, &d)
	return d
}

// wsFollower is the baseline: a raw WebSocket client on /ws (no page, no
// DOM) reading every event and timing each stamped line at its arrival.
type wsFollower struct {
	mu  sync.Mutex
	lat []time.Duration // arrival − printed, every stamped line of every execution
	// logged − printed: the event's envelope time is stamped by the log
	// at append, so this splits the path into kernel → log and log → client.
	logged []time.Duration
	done   chan error
}

func followWS(ctx context.Context, b *testing.B, base, token string) *wsFollower {
	b.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws?token=" + url.QueryEscape(token)
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		b.Fatalf("dial /ws: %v", err)
	}
	conn.SetReadLimit(64 << 20)
	f := &wsFollower{done: make(chan error, 1)}
	go func() {
		defer conn.CloseNow()
		for {
			_, msg, err := conn.Read(ctx)
			if err != nil {
				f.done <- err
				return
			}
			at := time.Now()
			for _, line := range bytes.Split(msg, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				var ev struct {
					Time    time.Time `json:"time"`
					Type    string    `json:"type"`
					Payload struct {
						MsgType string `json:"msg_type"`
						Content struct {
							Text string `json:"text"`
						} `json:"content"`
					} `json:"payload"`
				}
				if json.Unmarshal(line, &ev) != nil || ev.Type != "IOPubMessageReceived" || ev.Payload.MsgType != "stream" {
					continue
				}
				for _, m := range stampedLine.FindAllStringSubmatch(ev.Payload.Content.Text, -1) {
					us, _ := strconv.ParseInt(m[3], 10, 64)
					f.mu.Lock()
					f.lat = append(f.lat, at.Sub(time.UnixMicro(us)))
					f.logged = append(f.logged, ev.Time.Sub(time.UnixMicro(us)))
					f.mu.Unlock()
				}
			}
		}
	}()
	return f
}

func (f *wsFollower) latencies() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lat)
}

func (f *wsFollower) loggedLatencies() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logged)
}

// waitAllDone waits until no execution is queued or running.
func waitAllDone(ctx context.Context, b *testing.B, c *core) {
	b.Helper()
	for {
		changed := c.queue.Changed()
		if c.unfinished() == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			b.Fatalf("executions still unfinished (%d): %v", c.unfinished(), ctx.Err())
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Streams of BenchmarkConsoleIOPubToText.
const (
	streamLines    = 100                   // per execution
	streamPeriod   = 50 * time.Millisecond // between two lines of one execution
	kernelsAtOnce  = 4                     // kernel starts in parallel
	streamDeadline = 15 * time.Minute
	// followPages console pages, each in its own tab of one Chromium, each
	// at the execution view of a different execution.
	followPages = 4
	// paintGrace is how long after its feed has every line a page may take
	// to paint them; a line still unpainted then is counted as not shown.
	paintGrace = 30 * time.Second
)

// BenchmarkConsoleIOPubToText: 64 real kernels each run an execution that
// prints a stamped line every 50 ms (flush=True: ipykernel would otherwise
// hold stdout up to its 200 ms flush interval; at every 10 or 25 ms, kernels
// missed their heartbeats on a shared 2-core machine at load 20 and were
// declared lost), all 64 at once (they wait at a gate until all run).
// followPages console pages (tabs of one Chromium) follow 4 of them, each
// in its execution view (#/execution/<id>: the view that shows an
// execution's text; each page's live feed carries all 64 streams, as the
// Now view needs). The sample is every line of a followed execution that
// its page's feed received: latency = the start of the animation frame
// after its text entered the DOM − the time printed in it (same machine,
// same wall clock). A line the page never painted (never in the DOM, or
// its frame not run by the end) counts with latency = the end of the run −
// its printed time, a lower bound: it is not dropped, so p99 cannot hide
// it; shown-fraction says how many were painted. Baseline in the same run:
// a raw WebSocket client on /ws reading all 64 streams (line → event
// arrival). Each round follows the next 4 executions. Figures p50 ≤ 50 ms
// and p99 ≤ 200 ms (reported, never failing).
// CONSOLE_BENCH_KERNELS=n runs n kernels instead (a quick check).
func BenchmarkConsoleIOPubToText(b *testing.B) {
	streamKernels := 64
	if v, err := strconv.Atoi(os.Getenv("CONSOLE_BENCH_KERNELS")); err == nil && v > 0 {
		streamKernels = v
	}
	pages := min(followPages, streamKernels)
	cb := startConsoleBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), streamDeadline)
	b.Cleanup(cancel)
	kernels := cb.startKernels(ctx, b, streamKernels, kernelsAtOnce)
	body := fmt.Sprintf("for i in range(%d):\n    print(f'x{X} i{i} t={time.time_ns()//1000}', flush=True)\n    time.sleep(%g)",
		streamLines, streamPeriod.Seconds())
	var page, dom, feed, ws, logged []time.Duration
	var fedLines, paintedLines, okFollowedLines int
	var skew float64
	var scriptErrors, lost int
	var wall time.Duration
	b.ResetTimer()
	for n := range b.N {
		g := openGate(b)
		xids := make([]string, streamKernels)
		for x := range xids {
			xids[x] = fmt.Sprintf("stream%d-%d", n, x)
			code := strings.Replace(gatedCode(g.port(), x, body), "{X}", strconv.Itoa(x), 1)
			if _, err := cb.c.sys.Submit(ctx, kernels[x], scheduler.Submit{ExecutionID: xids[x], Code: code, By: "admin"}); err != nil {
				b.Fatal(err)
			}
		}
		// Spread over the 64: pages k follows execution n + k*64/pages.
		followed := make([]int, pages)
		views := make([]*testkit.Page, pages)
		for k := range followed {
			followed[k] = (n + k*streamKernels/pages) % streamKernels
			views[k] = cb.executionView(b, xids[followed[k]])
			views[k].Eval(b, pageProbeJS, map[string]any{
				"pattern": `x(\d+) i(\d+) t=(\d+)`,
				"feed":    fmt.Sprintf(`x(%d) i(\d+) t=(\d+)`, followed[k]),
			}, nil)
		}
		f := followWS(ctx, b, cb.ts.URL, cb.c.token)
		g.waitArrived(ctx, b, streamKernels)
		start := time.Now()
		g.release()
		waitAllDone(ctx, b, cb.c)
		wall += time.Since(start)
		// NB: on an overloaded machine a kernel can miss its heartbeats
		// and be declared lost mid-stream: counted (lost), not a failure;
		// what it printed until then is measured.
		okLines := 0
		for _, id := range xids {
			if v, ok := cb.c.queue.Get(id); ok && v.Status == "ok" {
				okLines += streamLines
			} else {
				lost++
				b.Logf("execution %s: %s (%s)", id, v.Status, v.Reason)
			}
		}
		testkit.WaitUntil(b, 60*time.Second, "the raw /ws client reads every line", func() (bool, string) {
			got := len(f.latencies())
			return got >= okLines, fmt.Sprintf("%d of %d lines", got, okLines)
		})
		for k, p := range views {
			want := 0
			if v, _ := cb.c.queue.Get(xids[followed[k]]); v.Status == "ok" {
				want = streamLines
			}
			okFollowedLines += want
			// A feed that misses lines the raw client got is a broken page
			// (live.js resumes without gaps), not a figure.
			testkit.WaitUntil(b, 60*time.Second, fmt.Sprintf("page %d's feed receives execution %d's lines", k, followed[k]), func() (bool, string) {
				got, _ := fedCounts(b, p)
				return got >= want, fmt.Sprintf("%d of %d lines", got, want)
			})
			// Painting them is the figure: waiting ends without failing.
			pollUntil(paintGrace, func() bool {
				got, painted := fedCounts(b, p)
				return painted >= got
			})
			lines, end := fedSamples(b, p)
			for _, l := range lines {
				feed = append(feed, time.Duration((l.Fed-l.Printed)*float64(time.Millisecond)))
				painted, inDOM := l.Painted, l.InDOM
				if painted == 0 {
					painted = end // never painted: censored at the run's end
				} else {
					paintedLines++
				}
				if inDOM == 0 {
					inDOM = end
				}
				page = append(page, time.Duration((painted-l.Printed)*float64(time.Millisecond)))
				dom = append(dom, time.Duration((inDOM-l.Printed)*float64(time.Millisecond)))
			}
			fedLines += len(lines)
			skew = max(skew, abs(clockSkewMs(b, p)))
			scriptErrors += countScriptErrors(b, p)
			p.Close(b)
		}
		ws = append(ws, f.latencies()...)
		logged = append(logged, f.loggedLatencies()...)
		g.close()
	}
	b.StopTimer()
	if len(page) == 0 || len(ws) == 0 {
		b.Fatalf("no samples: page %d, ws %d", len(page), len(ws))
	}
	b.ReportMetric(ms(quantile(page, 0.5)), "p50-ms")
	b.ReportMetric(ms(quantile(page, 0.99)), "p99-ms")
	b.ReportMetric(ms(quantile(dom, 0.5)), "dom-p50-ms")
	b.ReportMetric(ms(quantile(dom, 0.99)), "dom-p99-ms")
	b.ReportMetric(ms(quantile(feed, 0.5)), "feed-p50-ms")
	b.ReportMetric(ms(quantile(feed, 0.99)), "feed-p99-ms")
	b.ReportMetric(ms(quantile(ws, 0.5)), "ws-p50-ms")
	b.ReportMetric(ms(quantile(ws, 0.99)), "ws-p99-ms")
	b.ReportMetric(ms(quantile(logged, 0.5)), "logged-p50-ms")
	b.ReportMetric(ms(quantile(logged, 0.99)), "logged-p99-ms")
	b.ReportMetric(float64(quantile(page, 0.5))/float64(max(quantile(ws, 0.5), 1)), "ratio-p50-vs-ws")
	b.ReportMetric(float64(quantile(page, 0.99))/float64(max(quantile(ws, 0.99), 1)), "ratio-p99-vs-ws")
	b.ReportMetric(float64(fedLines), "samples")
	b.ReportMetric(float64(paintedLines)/float64(fedLines), "shown-fraction")
	b.ReportMetric(float64(fedLines)/float64(max(okFollowedLines, 1)), "fed-fraction")
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(float64(len(ws)), "ws-samples")
	b.ReportMetric(float64(streamKernels), "kernels")
	b.ReportMetric(float64(streamKernels*streamLines*b.N)/wall.Seconds(), "lines/s")
	b.ReportMetric(skew, "clock-skew-ms")
	b.ReportMetric(float64(scriptErrors), "script-errors")
	b.ReportMetric(float64(lost), "lost-executions")
}

// countScriptErrors logs the page's script errors and counts them: a
// benchmark reports them (the browser tests fail on them), it does not fail.
func countScriptErrors(b *testing.B, p *testkit.Page) int {
	b.Helper()
	errs := p.Errors(b)
	for _, e := range errs {
		b.Logf("page script error (%s): %s", e.Kind, e.Text)
	}
	return len(errs)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// clickProbeJS arms, in the page, the timing of the next click: the input
// event's own time stamp (when the browser got it, so a busy main thread's
// delay counts), the moment arg.effect (a CSS selector) first matches, and
// the next animation frame after it (the frame that shows it). It returns
// false when the effect is already there (the measurement would be void).
const clickProbeJS = `(arg) => {
  const r = window.__consoleClick = { click: 0, dom: 0, frame: 0 };
  document.addEventListener('click', (e) => { r.click = e.timeStamp; }, { capture: true, once: true });
  const obs = new MutationObserver(() => {
    if (r.dom || !document.querySelector(arg.effect)) return;
    r.dom = performance.now();
    obs.disconnect();
    requestAnimationFrame(() => { r.frame = performance.now(); });
  });
  obs.observe(document.documentElement, { subtree: true, childList: true, attributes: true });
  return !document.querySelector(arg.effect);
}`

// clickStep is one click of a control and the DOM state that answers it.
type clickStep struct{ selector, effect string }

// clickTimes clicks each step in order, returning for each the in-page
// time from the click event to the frame showing its effect, and
// Playwright's time for the click call (actionability checks and the
// driver's round trip included).
func clickTimes(b *testing.B, p *testkit.Page, steps []clickStep) (inPage, driver []time.Duration) {
	b.Helper()
	for _, s := range steps {
		var armed bool
		p.Eval(b, clickProbeJS, map[string]any{"effect": s.effect}, &armed)
		if !armed {
			b.Fatalf("click %s: its effect %s is there before the click", s.selector, s.effect)
		}
		driver = append(driver, p.Click(b, s.selector))
		var r struct{ Click, Dom, Frame float64 }
		testkit.WaitUntil(b, 30*time.Second, "the click on "+s.selector+" shows "+s.effect, func() (bool, string) {
			p.Eval(b, `() => window.__consoleClick`, nil, &r)
			return r.Frame > 0 && r.Click > 0, fmt.Sprintf("%+v", r)
		})
		inPage = append(inPage, time.Duration((r.Frame-r.Click)*float64(time.Millisecond)))
	}
	return inPage, driver
}

// The 100,000-line execution of BenchmarkConsole100kLines.
const (
	bigFirstLines = 10_000
	bigLines      = 100_000
	clickRounds   = 5
)

// BenchmarkConsole100kLines: a console page follows an execution (its
// execution view) that prints 100,000 stamped lines in a plain loop
// (ipykernel batches them into a stream message per 200 ms, as any cell's
// prints). The execution stops at a gate after 10,000 lines: the page's JS
// heap after a GC (CDP JSHeapUsedSize) and DOM node count are taken once it
// shows line 9,999, and again after line 99,999 (heap-100k/10k: bounded
// means far below the 10x of the lines). Then clickRounds times a control
// is clicked and answered (see consoleClickSteps); click-ms is the slowest,
// from the click event to the frame showing its effect, measured in the
// page; playwright-click-ms the driver's slowest click call. Figure:
// click-ms ≤ 100 (reported, never failing).
func BenchmarkConsole100kLines(b *testing.B) {
	cb := startConsoleBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), streamDeadline)
	b.Cleanup(cancel)
	kernel := cb.startKernels(ctx, b, 1, 1)[0]
	var heap10k, heap100k, nodes10k, nodes100k float64
	var clicks, driverClicks []time.Duration
	var lastLine time.Duration
	var scriptErrors int
	b.ResetTimer()
	for n := range b.N {
		start, mid := openGate(b), openGate(b)
		body := fmt.Sprintf("for i in range(%d):\n    print(f'x0 i{i} t={time.time_ns()//1000} ' + 'x' * 40)\n"+
			"_m = socket.create_connection(('127.0.0.1', %d))\n_m.sendall(b'0\\n')\n_m.recv(1)\n"+
			"for i in range(%d, %d):\n    print(f'x0 i{i} t={time.time_ns()//1000} ' + 'x' * 40)\n",
			bigFirstLines, mid.port(), bigFirstLines, bigLines)
		id := fmt.Sprintf("big%d", n)
		if _, err := cb.c.sys.Submit(ctx, kernel, scheduler.Submit{ExecutionID: id, Code: gatedCode(start.port(), 0, body), By: "admin"}); err != nil {
			b.Fatal(err)
		}
		p := cb.executionView(b, id)
		p.Eval(b, pageProbeJS, map[string]any{"pattern": `x(\d+) i(\d+) t=(\d+)`, "every": 1000}, nil)
		start.waitArrived(ctx, b, 1)
		start.release()
		shown := func(line int) {
			testkit.WaitUntil(b, 5*time.Minute, fmt.Sprintf("the page shows line %d", line), func() (bool, string) {
				var ok bool
				p.Eval(b, `(key) => { const r = window.__consoleBench.seen.get(key); return !!(r && r[2]); }`, fmt.Sprintf("0 %d", line), &ok)
				return ok, "not painted yet"
			})
		}
		mid.waitArrived(ctx, b, 1)
		shown(bigFirstLines - 1)
		m := p.Metrics(b, true)
		heap10k, nodes10k = heap10k+m["JSHeapUsedSize"], nodes10k+m["Nodes"]
		mid.release()
		waitAllDone(ctx, b, cb.c)
		if v, _ := cb.c.queue.Get(id); v.Status != "ok" {
			b.Fatalf("execution %s: %s (%s)", id, v.Status, v.Reason)
		}
		shown(bigLines - 1)
		m = p.Metrics(b, true)
		heap100k, nodes100k = heap100k+m["JSHeapUsedSize"], nodes100k+m["Nodes"]
		var last [3]float64
		p.Eval(b, `(key) => window.__consoleBench.seen.get(key)`, fmt.Sprintf("0 %d", bigLines-1), &last)
		lastLine = max(lastLine, time.Duration((last[2]-last[0])*float64(time.Millisecond)))
		in, drv := clickTimes(b, p, cb.clickSteps(clickRounds))
		clicks, driverClicks = append(clicks, in...), append(driverClicks, drv...)
		scriptErrors += countScriptErrors(b, p)
		p.Close(b)
		start.close()
		mid.close()
	}
	b.StopTimer()
	const mib = 1 << 20
	nf := float64(b.N)
	b.ReportMetric(ms(slices.Max(clicks)), "click-ms")
	b.ReportMetric(ms(quantile(clicks, 0.5)), "click-p50-ms")
	b.ReportMetric(ms(slices.Max(driverClicks)), "playwright-click-ms")
	b.ReportMetric(heap100k/nf/mib, "heap-MiB")
	b.ReportMetric(heap10k/nf/mib, "heap-10k-MiB")
	b.ReportMetric(heap100k/heap10k, "heap-100k/10k")
	b.ReportMetric(nodes100k/nf, "dom-nodes")
	b.ReportMetric(nodes10k/nf, "dom-nodes-10k")
	b.ReportMetric(nodes100k/nodes10k, "dom-nodes-100k/10k")
	b.ReportMetric(ms(lastLine), "last-line-ms")
	b.ReportMetric(float64(scriptErrors), "script-errors")
}

// clickSteps are the clicks BenchmarkConsole100kLines times, rounds times
// over: each answered in the page alone (no server round trip), so the
// figure is the page's responsiveness.
func (cb *consoleBench) clickSteps(rounds int) []clickStep {
	var steps []clickStep
	for range rounds {
		// The stream output's expand/collapse toggle (outputs.js): showing
		// all kept lines and back, both rendered by the virtualised view.
		steps = append(steps,
			clickStep{`[data-testid="show-all"]`, `[data-testid="show-all"][aria-expanded="true"]`},
			clickStep{`[data-testid="show-all"]`, `[data-testid="show-all"][aria-expanded="false"]`})
	}
	return steps
}
