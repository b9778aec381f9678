package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The web console's Now views, live feed and steering, in a real Chromium
// against a real core and real kernels, while an agent works over MCP.

// uiShot is where a screenshot of the console goes: docs/console/<name>
// when CONSOLE_SCREENSHOTS=1 (the committed pictures), else a temp dir so
// that tests never dirty the tree.
func uiShot(t *testing.T, name string) string {
	t.Helper()
	if os.Getenv("CONSOLE_SCREENSHOTS") == "1" {
		return filepath.Join("..", "..", "docs", "console", name)
	}
	return filepath.Join(t.TempDir(), name)
}

// uiShotSize keeps committed screenshots small.
func uiShotSize(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 300<<10 {
		t.Errorf("%s is %d KB: keep screenshots under 300 KB", path, st.Size()>>10)
	}
}

// uiStreamLines is the text of the outputs of the open execution view, one
// stream line per entry.
func uiStreamLines(t *testing.T, p *testkit.Page) []string {
	t.Helper()
	var lines []string
	p.Eval(t, `() => [...document.querySelectorAll('[data-testid="execution-view"] [data-testid="stream-line"]')].map((e) => e.textContent)`, nil, &lines)
	return lines
}

// uiContrastJS lists the page's visible text whose colour has less than
// WCAG AA contrast (4.5:1, 3:1 for large text) with the background it is
// drawn on (the first opaque background among its ancestors).
const uiContrastJS = `() => {
  const rgb = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const v = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return { r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0.9) return c; } return { r: 255, g: 255, b: 255 }; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('[data-testid="outputs"], iframe, dialog:not([open])')) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (!text || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || Number(st.opacity) < 0.9) continue;
    const fg = rgb(st.color), bg = bgOf(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(text.slice(0, 40) + ': ' + ratio.toFixed(2) + ' (' + st.color + ' on ' + JSON.stringify(bg) + ')');
  }
  return bad;
}`

// uiForceDarkJS applies the page's prefers-color-scheme: dark rules
// unconditionally (the driver's pages are light), so the dark colours can
// be checked too.
const uiForceDarkJS = `() => {
  const css = [];
  for (const sheet of document.styleSheets) {
    let rules; try { rules = sheet.cssRules; } catch { continue; }
    for (const r of rules) if (r.media && /prefers-color-scheme:\s*dark/.test(r.media.mediaText)) for (const x of r.cssRules) css.push(x.cssText);
  }
  const st = document.createElement('style'); st.textContent = css.join('\n'); document.head.append(st);
  return css.length;
}`

// uiCheckContrast fails the test if any visible text misses WCAG AA.
func uiCheckContrast(t *testing.T, p *testkit.Page, where string) {
	t.Helper()
	var bad []string
	p.Eval(t, uiContrastJS, nil, &bad)
	if len(bad) > 0 {
		t.Errorf("%s: text below WCAG AA contrast:\n  %s", where, strings.Join(bad, "\n  "))
	}
}

// TestConsolePageAgentOutputAppearsLive: a person follows an agent's work on an
// open page: the kernel appears in the table, the execution in the
// kernel's list, and its output in the execution view as the kernel prints
// it — all without a reload.
func TestConsolePageAgentOutputAppearsLive(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)

	p := site.open(t, 0, 0, "/")
	p.WaitFor(t, `[data-testid="kernel-row"][data-kernel-id="`+k+`"]`, "running", 30*time.Second)
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	// NB: a marker a reload would wipe out.
	p.Eval(t, `() => { window.__noReload = 'still here'; return true }`, nil, nil)

	// A second kernel started now appears in the table live.
	k2 := startKernelTool(t, agent)
	p.WaitFor(t, `[data-testid="kernel-row"][data-kernel-id="`+k2+`"]`, "running", 30*time.Second)
	uiCheckContrast(t, p, "kernels table")
	shot := uiShot(t, "now-kernels.png")
	p.Screenshot(t, shot, "")
	uiShotSize(t, shot)

	p.Click(t, `[data-testid="kernel-row"][data-kernel-id="`+k+`"] a`)
	p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 10*time.Second)

	code := "import time\nprint('first line from the agent', flush=True)\ntime.sleep(3)\nprint('second line from the agent', flush=True)\nprint('\\x1b[1;32mdone\\x1b[0m after 3 s')\n{'answer': 6 * 7}"
	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 1})
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute: no execution id: %s", text)
	}
	row := `[data-testid="execution-row"][data-execution-id="` + id + `"]`
	p.WaitFor(t, row, "import time", 30*time.Second)
	p.WaitFor(t, row+` [data-testid="cancel"], `+row+`[data-status="running"]`, "", 30*time.Second)
	p.WaitFor(t, row, "agent", 10*time.Second) // the submitter: an agent
	p.Click(t, row+` a`)
	view := `[data-testid="execution-view"][data-execution-id="` + id + `"]`
	p.WaitFor(t, view+` [data-testid="outputs"]`, "first line from the agent", 30*time.Second)
	p.WaitFor(t, view+` [data-testid="outputs"]`, "second line from the agent", 30*time.Second)
	p.WaitFor(t, view+`[data-status="ok"]`, "", 30*time.Second)
	uiCheckContrast(t, p, "execution view")
	shot = uiShot(t, "now-execution.png")
	p.Screenshot(t, shot, "")
	uiShotSize(t, shot)

	var marker string
	p.Eval(t, `() => window.__noReload || ''`, nil, &marker)
	if marker != "still here" {
		t.Fatalf("the page was reloaded on the way (marker %q)", marker)
	}
	// The execution's moment in the timeline (then.js, mounted by the
	// shell at #/then/<kernel>?seq=N), and back.
	p.Click(t, view+` a:has-text("In the timeline")`)
	p.WaitFor(t, `[data-testid="timeline"]`, "", 30*time.Second)
	p.WaitFor(t, `[data-testid="then-state"]`, "", 30*time.Second)
	p.Eval(t, `() => { history.back(); return true }`, nil, nil)
	p.WaitFor(t, view+`[data-status="ok"]`, "", 10*time.Second)
	// Back to the kernel: the row says ok, with a duration.
	p.Eval(t, `() => { history.back(); return true }`, nil, nil)
	p.WaitFor(t, row+`[data-status="ok"]`, "s", 10*time.Second)
	// The dark scheme meets AA too.
	var darkRules int
	p.Eval(t, uiForceDarkJS, nil, &darkRules)
	if darkRules == 0 {
		t.Fatal("style.css has no prefers-color-scheme: dark rules")
	}
	uiCheckContrast(t, p, "kernel view, dark")
	p.NoScriptErrors(t)
}

// TestConsolePageResumeNeverMissesOrRepeats: the live feed is cut (as a
// network failure would) while an execution prints numbered lines; the
// page resumes from the last seq it applied (each reconnect's since= is
// exactly the feed's last seq at the cut, and the server sends nothing at
// or below it) and shows every line exactly once, in order.
func TestConsolePageResumeNeverMissesOrRepeats(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	const n = 24
	code := fmt.Sprintf("import time\nfor i in range(%d):\n    print(f'numbered {i:03d}', flush=True)\n    time.sleep(0.15)", n)
	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 1})
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute: no execution id: %s", text)
	}
	p := site.open(t, 0, 0, "/execution/"+id)
	view := `[data-testid="execution-view"][data-execution-id="` + id + `"]`
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	for cut := 1; cut <= 3; cut++ {
		var connects float64
		p.Eval(t, `() => window.__consoleLive.connects`, nil, &connects)
		opened := len(p.WebSockets(t))
		// NB: one step in the page: a socket closed by close() delivers no
		// more messages, so lastSeq read here is where the feed must resume.
		var before float64
		p.Eval(t, `() => { const s = window.__consoleLive.lastSeq; window.__consoleLive.drop(); return s }`, nil, &before)
		var got float64
		testkit.WaitUntil(t, 30*time.Second, fmt.Sprintf("reconnect %d", cut), func() (bool, string) {
			p.Eval(t, `() => window.__consoleLive.connects`, nil, &got)
			return got > connects, fmt.Sprintf("%v connections", got)
		})
		sockets := p.WebSockets(t)
		if len(sockets) <= opened {
			t.Fatalf("cut %d: the page reconnected but the browser recorded no new WebSocket (%d before, %d now)", cut, opened, len(sockets))
		}
		for i, ws := range sockets[opened:] {
			u, err := url.Parse(ws.URL)
			if err != nil {
				t.Fatalf("cut %d: WebSocket %d: %v", cut, i, err)
			}
			if since := u.Query().Get("since"); since != strconv.FormatUint(uint64(before), 10) {
				t.Errorf("cut %d: reconnect %d asked since=%q, want the feed's last seq %v at the cut", cut, i, since, before)
			}
		}
	}
	p.WaitFor(t, view+`[data-status="ok"]`, "", 60*time.Second)
	p.WaitFor(t, view+` [data-testid="outputs"]`, fmt.Sprintf("numbered %03d", n-1), 30*time.Second)
	lines := uiStreamLines(t, p)
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("numbered %03d", i))
	}
	var got []string
	for _, l := range lines {
		if strings.HasPrefix(l, "numbered") {
			got = append(got, strings.TrimSpace(l))
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after 3 cuts of the live feed the page shows\n%q\nwant each line once, in order:\n%q", got, want)
	}
	var repeats float64
	p.Eval(t, `() => window.__consoleLive.repeats`, nil, &repeats)
	if repeats != 0 {
		t.Errorf("the server sent %v events at or below the since= the page resumed from", repeats)
	}
	p.NoScriptErrors(t)
}

// TestConsolePageSteering: a person interrupts a running execution from the
// page (with the mouse, then with the keyboard alone), a restart asked by
// mistake is dismissed with Escape and changes nothing, and at phone width
// the page does not scroll sideways and the steering is in reach.
func TestConsolePageSteering(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "kept = 'the variables survive'"})

	sleeper := func() string {
		t.Helper()
		sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "import time\nprint('asleep', flush=True)\ntime.sleep(60)", "timeout_s": 1})
		id, _ := sc["execution_id"].(string)
		if id == "" || sc["status"] != "running" {
			t.Fatalf("execute: want a running execution: %v %s", sc, text)
		}
		return id
	}
	interrupted := func(id string) {
		t.Helper()
		sc, text := callTool(t, agent, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
		if sc["status"] != "interrupted" {
			t.Fatalf("get_execution after the page's interrupt: %v %s", sc, text)
		}
	}

	t.Run("interrupt with the mouse", func(t *testing.T) {
		id := sleeper()
		p := site.open(t, 0, 0, "/execution/"+id)
		defer p.Close(t)
		view := `[data-testid="execution-view"][data-execution-id="` + id + `"]`
		p.WaitFor(t, view+`[data-status="running"]`, "", 30*time.Second)
		p.WaitFor(t, view+` [data-testid="outputs"]`, "asleep", 30*time.Second)
		// The duration ticks while it runs.
		var first, now string
		p.Eval(t, `() => document.querySelector('[data-testid="execution-view"] .duration').textContent`, nil, &first)
		testkit.WaitUntil(t, 10*time.Second, "the running execution's duration ticks", func() (bool, string) {
			p.Eval(t, `() => document.querySelector('[data-testid="execution-view"] .duration').textContent`, nil, &now)
			return now != first && strings.HasSuffix(now, " s"), now
		})
		p.Click(t, view+` [data-testid="interrupt"]`)
		p.WaitFor(t, `[data-testid="toast"]`, "Interrupt sent", 10*time.Second)
		p.WaitFor(t, view+`[data-status="interrupted"]`, "", 30*time.Second)
		interrupted(id)
		p.NoScriptErrors(t)
	})

	t.Run("interrupt and restart with the keyboard", func(t *testing.T) {
		id := sleeper()
		p := site.open(t, 0, 0, "/kernel/"+k)
		defer p.Close(t)
		row := `[data-testid="execution-row"][data-execution-id="` + id + `"]`
		p.WaitFor(t, row+`[data-status="running"]`, "", 30*time.Second)
		// Tab from the top of the page until the kernel's interrupt has
		// the focus: it must be reachable without a mouse.
		p.Eval(t, `() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true }`, nil, nil)
		tabTo := func(testid string) {
			t.Helper()
			for i := 0; i < 60; i++ {
				p.Press(t, "", "Tab")
				var focused string
				p.Eval(t, `() => document.activeElement && document.activeElement.dataset.testid || ''`, nil, &focused)
				if focused == testid {
					return
				}
			}
			t.Fatalf("60 presses of Tab never reached %s", testid)
		}
		tabTo("restart")
		p.Press(t, "", "Enter")
		p.WaitFor(t, `dialog[data-testid="confirm"][open]`, "variables", 10*time.Second)
		p.Press(t, "", "Escape")
		var open bool
		testkit.WaitUntil(t, 10*time.Second, "the dialog closes on Escape", func() (bool, string) {
			p.Eval(t, `() => document.querySelector('[data-testid="confirm"]').open`, nil, &open)
			return !open, "open"
		})
		p.Eval(t, `() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true }`, nil, nil)
		tabTo("interrupt")
		p.Press(t, "", "Enter")
		p.WaitFor(t, row+`[data-status="interrupted"]`, "", 30*time.Second)
		interrupted(id)
		// The focus stayed in the kernel view (a keyboard user carries on
		// from there, not from the top of the page).
		var inView bool
		p.Eval(t, `() => !!document.activeElement.closest('[data-testid="kernel-view"]')`, nil, &inView)
		if !inView {
			var at string
			p.Eval(t, `() => document.activeElement.outerHTML.slice(0, 200)`, nil, &at)
			t.Fatalf("after the interrupt the focus is on %s", at)
		}
		// The dismissed restart did nothing: the kernel kept its variables.
		_, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print(kept)"})
		if !strings.Contains(text, "the variables survive") {
			t.Fatalf("after a restart dismissed with Escape, the kernel lost its variables: %s", text)
		}
		p.NoScriptErrors(t)
	})

	t.Run("checkpoint save, then load after a confirmation", func(t *testing.T) {
		callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "saved_value = 'from the checkpoint'"})
		p := site.open(t, 0, 0, "/kernel/"+k)
		defer p.Close(t)
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "running", 30*time.Second)
		p.Fill(t, `#cp-name`, "before-change")
		p.Click(t, `[data-testid="checkpoint-save"]`)
		p.WaitFor(t, `[data-testid="toast"]`, "before-change saved", 60*time.Second)
		callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "saved_value = 'changed since'"})
		load := `[data-testid="checkpoint-load"][aria-label="Load checkpoint before-change"]`
		p.WaitFor(t, load, "", 10*time.Second)
		// No first: nothing is loaded.
		p.Click(t, load)
		p.WaitFor(t, `dialog[data-testid="confirm"][open]`, "before-change", 10*time.Second)
		p.Click(t, `[data-testid="confirm-no"]`)
		_, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print(saved_value)"})
		if !strings.Contains(text, "changed since") {
			t.Fatalf("a load answered No changed the kernel: %s", text)
		}
		p.Click(t, load)
		p.WaitFor(t, `dialog[data-testid="confirm"][open]`, "before-change", 10*time.Second)
		p.Click(t, `[data-testid="confirm-yes"]`)
		p.WaitFor(t, `[data-testid="toast"]`, "before-change loaded", 60*time.Second)
		_, text = callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print(saved_value)"})
		if !strings.Contains(text, "from the checkpoint") {
			t.Fatalf("after the page loaded the checkpoint: %s", text)
		}
		p.NoScriptErrors(t)
	})

	t.Run("phone width", func(t *testing.T) {
		id := sleeper()
		p := site.open(t, 390, 844, "/kernel/"+k)
		defer p.Close(t)
		row := `[data-testid="execution-row"][data-execution-id="` + id + `"]`
		p.WaitFor(t, row+`[data-status="running"]`, "", 30*time.Second)
		var fits struct {
			Scroll, Inner float64
			Interrupt     bool
		}
		const measure = `() => { const b = document.querySelector('[data-testid="kernel-view"] [data-testid="interrupt"]').getBoundingClientRect();
			return { Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth, Interrupt: b.left >= 0 && b.right <= window.innerWidth && b.width > 0 } }`
		p.Eval(t, measure, nil, &fits)
		if fits.Scroll > fits.Inner || !fits.Interrupt {
			t.Fatalf("at 390 px: page %v px wide in a %v px window, interrupt within it: %v", fits.Scroll, fits.Inner, fits.Interrupt)
		}
		uiCheckContrast(t, p, "kernel view at phone width")
		shot := uiShot(t, "now-phone.png")
		p.Screenshot(t, shot, "")
		uiShotSize(t, shot)
		p.Click(t, row+` [data-testid="interrupt"]`)
		p.WaitFor(t, row+`[data-status="interrupted"]`, "", 30*time.Second)
		interrupted(id)
		// The execution view fits too.
		p.Click(t, row+` a`)
		p.WaitFor(t, `[data-testid="execution-view"]`, "asleep", 30*time.Second)
		p.Eval(t, `() => ({ Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth, Interrupt: true })`, nil, &fits)
		if fits.Scroll > fits.Inner {
			t.Fatalf("execution view at 390 px: page %v px wide in a %v px window", fits.Scroll, fits.Inner)
		}
		// And the kernels table, as cards.
		p.Click(t, `.crumbs a[href="#/"]`)
		p.WaitFor(t, `[data-testid="kernel-row"][data-kernel-id="`+k+`"]`, "python3", 30*time.Second)
		p.Eval(t, `() => ({ Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth, Interrupt: true })`, nil, &fits)
		if fits.Scroll > fits.Inner {
			t.Fatalf("kernels table at 390 px: page %v px wide in a %v px window", fits.Scroll, fits.Inner)
		}
		p.NoScriptErrors(t)
	})

	t.Run("restart after Yes", func(t *testing.T) {
		p := site.open(t, 0, 0, "/kernel/"+k)
		defer p.Close(t)
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "running", 30*time.Second)
		p.Click(t, `[data-testid="kernel-view"] [data-testid="restart"]`)
		p.WaitFor(t, `dialog[data-testid="confirm"][open]`, "variables", 10*time.Second)
		p.Click(t, `[data-testid="confirm-yes"]`)
		p.WaitFor(t, `[data-testid="toast"]`, "Kernel restarted", 60*time.Second)
		p.WaitFor(t, `[data-testid="kernel-view"][data-state="running"]`, "", 30*time.Second)
		_, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('kept' in globals())"})
		if !strings.Contains(text, "False") {
			t.Fatalf("after the page restarted the kernel, its variables are still there: %s", text)
		}
		p.NoScriptErrors(t)
	})
}

// TestConsolePageToken: without a token the page shows how to log in and asks
// the server nothing; a wrong token gets the server's refusal; a good one
// leaves the address bar at once and survives a reload (kept in the tab).
func TestConsolePageToken(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)

	t.Run("no token", func(t *testing.T) {
		p := site.browser.NewPage(0, 0)
		defer p.Close(t)
		if st := p.Goto(t, site.consoleURL("", "/kernel/"+k)); st != 200 {
			t.Fatalf("GET /ui/: %d", st)
		}
		p.WaitFor(t, `[data-testid="login"]`, "?token=", 10*time.Second)
		p.WaitFor(t, `[data-testid="login"] label[for="login-token"]`, "Token", 10*time.Second)
		var asked []string
		p.Eval(t, `() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/ui/api/') || n.includes('/ws') || n.includes('/assets/'))`, nil, &asked)
		if len(asked) > 0 {
			t.Fatalf("without a token the page asked the server for %v", asked)
		}
		// NB: the id is in the address (the fragment asked for it), never
		// in what the page shows.
		var body string
		p.Eval(t, `() => document.body.outerHTML`, nil, &body)
		if strings.Contains(body, k) {
			t.Fatalf("without a token the page's body holds kernel id %s", k)
		}
		uiCheckContrast(t, p, "login")
		shot := uiShot(t, "login.png")
		p.Screenshot(t, shot, "")
		uiShotSize(t, shot)

		// Pasting the token in the form opens the console.
		p.Fill(t, `#login-token`, site.c.token)
		p.Press(t, `#login-token`, "Enter")
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 30*time.Second)
		p.NoScriptErrors(t)
	})

	t.Run("wrong token", func(t *testing.T) {
		p := site.browser.NewPage(0, 0)
		defer p.Close(t)
		p.Goto(t, site.consoleURL("not-the-token", "/"))
		p.WaitFor(t, `[data-testid="login"]`, "wrong, revoked or rotated", 10*time.Second)
		var asked []string
		p.Eval(t, `() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/ui/api/now') || n.includes('/ws'))`, nil, &asked)
		if len(asked) > 0 {
			t.Fatalf("with a refused token the page still asked for %v", asked)
		}
		var kept string
		p.Eval(t, `() => sessionStorage.getItem('mcp-jupyter-token') || ''`, nil, &kept)
		if kept != "" {
			t.Fatalf("the refused token stays in the tab: %q", kept)
		}
		uiNoScriptErrorsBut(t, p, "status of 401")
	})

	t.Run("token leaves the address bar and survives a reload", func(t *testing.T) {
		p := site.open(t, 0, 0, "/kernel/"+k)
		defer p.Close(t)
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 30*time.Second)
		if u := p.URL(t); strings.Contains(u, "token") || strings.Contains(u, site.c.token) {
			t.Fatalf("the token is still in the address bar: %s", u)
		}
		if !strings.HasSuffix(p.URL(t), "#/kernel/"+k) {
			t.Fatalf("the view's address was lost with the token: %s", p.URL(t))
		}
		p.Reload(t)
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 30*time.Second)
		p.WaitFor(t, `[data-testid="whoami"]`, "", 10*time.Second)
		p.NoScriptErrors(t)
	})

	t.Run("read only, then revoked", func(t *testing.T) {
		store := auth.Store{Dir: site.c.cfg.DataDir}
		readerToken, err := store.Add("reader", auth.ScopeRead, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := site.c.principals.Reload(); err != nil {
			t.Fatal(err)
		}
		callTool(t, agent, "share_kernel", map[string]any{"kernel": k, "principal": "reader", "access": "read"})
		p := site.browser.NewPage(0, 0)
		defer p.Close(t)
		p.Goto(t, site.consoleURL(readerToken, "/kernel/"+k))
		p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "running", 30*time.Second)
		p.WaitFor(t, `[data-testid="whoami"]`, "reader", 10*time.Second)
		p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
		var steering int
		p.Eval(t, `() => document.querySelectorAll('[data-testid="interrupt"], [data-testid="restart"], [data-testid="checkpoint-save"], [data-testid="checkpoint-load"], [data-testid="cancel"]').length`, nil, &steering)
		if steering != 0 {
			t.Fatalf("a read-only principal is offered %d steering controls", steering)
		}
		// Revoking the token closes the live feed (4001): the page shows
		// the login and forgets the token.
		if err := store.Revoke("reader"); err != nil {
			t.Fatal(err)
		}
		if err := site.c.principals.Reload(); err != nil {
			t.Fatal(err)
		}
		p.WaitFor(t, `[data-testid="login"]`, "revoked", 30*time.Second)
		var kept string
		p.Eval(t, `() => sessionStorage.getItem('mcp-jupyter-token') || ''`, nil, &kept)
		if kept != "" {
			t.Fatal("the revoked token stays in the tab")
		}
		p.NoScriptErrors(t)
	})
}

// uiNoScriptErrorsBut is NoScriptErrors for a page expected to log the
// browser's own note of a refused request (Chromium logs every 4xx
// answer as "Failed to load resource"); any other error fails.
func uiNoScriptErrorsBut(t *testing.T, p *testkit.Page, expected string) {
	t.Helper()
	for _, e := range p.Errors(t) {
		if e.Kind == "console" && strings.Contains(e.Text, "Failed to load resource") && strings.Contains(e.Text, expected) {
			continue
		}
		t.Errorf("script error: %s: %s", e.Kind, e.Text)
	}
}

// TestConsolePageKeepsBoundedExecutions: a kernel view left open while an
// agent runs more executions than the page keeps (EXECUTIONS_MAX, 500)
// holds the newest 500 and shows older ones when asked.
func TestConsolePageKeepsBoundedExecutions(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	p := site.open(t, 0, 0, "/kernel/"+k)
	p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "running", 30*time.Second)
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	const n = 530
	var last string
	for i := 0; i < n; i++ {
		sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": fmt.Sprintf("n = %d", i)})
		if sc["status"] != "ok" {
			t.Fatalf("execute %d: %v %s", i, sc, text)
		}
		last, _ = sc["execution_id"].(string)
	}
	p.WaitFor(t, `[data-testid="execution-row"][data-execution-id="`+last+`"][data-status="ok"]`, "", 60*time.Second)
	var rows int
	p.Eval(t, `() => document.querySelectorAll('[data-testid="execution-row"]').length`, nil, &rows)
	if rows != 500 {
		t.Fatalf("after %d executions the kernel view holds %d rows, want the newest 500", n, rows)
	}
	p.WaitFor(t, `button`, "Show older executions", 10*time.Second)
	var codes []string
	p.Eval(t, `() => [...document.querySelectorAll('[data-testid="execution-row"] code')].map((c) => c.textContent)`, nil, &codes)
	if codes[0] != fmt.Sprintf("n = %d", n-1) || codes[len(codes)-1] != fmt.Sprintf("n = %d", n-500) {
		t.Fatalf("the kernel view shows %q … %q, want the newest first down to n = %d", codes[0], codes[len(codes)-1], n-500)
	}
	// Asking for older ones shows them (the person asked: the bound grows
	// by a page, up to a hard bound).
	p.Click(t, `button:has-text("Show older executions")`)
	p.WaitFor(t, `[data-testid="execution-row"]`, fmt.Sprintf("n = %d", 0), 30*time.Second)
	p.Eval(t, `() => document.querySelectorAll('[data-testid="execution-row"]').length`, nil, &rows)
	if rows != n {
		t.Fatalf("after Show older: %d rows, want %d", rows, n)
	}
	p.NoScriptErrors(t)
}

// TestConsolePageResumesAcrossServerRestart: the server stops (its /ws
// clients get 1001) and starts again on the same address and data dir;
// the open page shows it is offline, reconnects by itself with since=<last
// seq applied> and shows what happened after the restart, without a
// reload.
func TestConsolePageResumesAcrossServerRestart(t *testing.T) {
	dataDir := testkit.TempDataDir(t)
	cfg := testConfig(t, dataDir)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*core, func()) {
		t.Helper()
		c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: c.httpHandler()}
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(ln) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx) // NB: hijacked /ws connections are the core's to close (1001)
				_ = c.close(ctx)
				<-served
			})
		}
		t.Cleanup(stop)
		return c, stop
	}
	agentOf := func(c *core) *client.Client {
		t.Helper()
		inproc, err := client.NewInProcessClient(c.mcp.MCP())
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, inproc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}

	c1, stop1 := serve(ln)
	k1 := startKernelTool(t, agentOf(c1))
	b := testkit.StartBrowser(t)
	p := b.NewPage(0, 0)
	p.Goto(t, "http://"+addr+"/ui/?token="+url.QueryEscape(c1.token)+"#/")
	p.WaitFor(t, `[data-testid="kernel-row"][data-kernel-id="`+k1+`"]`, "", 30*time.Second)
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	p.Eval(t, `() => { window.__noReload = 'still here'; return true }`, nil, nil)
	var before float64
	p.Eval(t, `() => window.__consoleLive.lastSeq`, nil, &before)

	stop1()
	p.WaitFor(t, `[data-testid="live"][data-state="offline"]`, "", 30*time.Second)

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	c2, _ := serve(ln2)
	k2 := startKernelTool(t, agentOf(c2))
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 60*time.Second)
	p.WaitFor(t, `[data-testid="kernel-row"][data-kernel-id="`+k2+`"]`, "running", 60*time.Second)
	var marker string
	var after, connects float64
	p.Eval(t, `() => window.__noReload || ''`, nil, &marker)
	p.Eval(t, `() => window.__consoleLive.lastSeq`, nil, &after)
	p.Eval(t, `() => window.__consoleLive.connects`, nil, &connects)
	if marker != "still here" || after <= before || connects < 2 {
		t.Fatalf("after the restart: marker %q, last seq %v (was %v), %v connections", marker, after, before, connects)
	}
	p.NoScriptErrors(t)
}
