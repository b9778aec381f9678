package testkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Browser is a real headless Chromium (Debian's /usr/bin/chromium) driven
// by playwright-core through testkit/outside/console/driver.mjs. Tests
// drive it step by step from Go, so an agent's action (an MCP call) can
// sit between two looks at the page. StartBrowser stops it at cleanup.
type Browser struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	replys *bufio.Scanner
	stderr *lockedBuffer

	mu     sync.Mutex // one request at a time
	nextID int
	dead   error // set when a request timed out: the driver was killed
	// Version is the browser's own version string.
	Version string
}

// Page is one tab of a Browser, in its own browser context (no shared
// storage with other pages).
type Page struct {
	b  *Browser
	id string
}

// ChromiumPath is the browser the tests drive (`make deps` installs it).
const ChromiumPath = "/usr/bin/chromium"

// consoleDir is testkit/outside/console, found from this file so that any
// package's test can use it.
func consoleDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testkit: cannot locate its own source file")
	}
	return filepath.Join(filepath.Dir(file), "outside", "console")
}

// StartBrowser starts Chromium and its driver. A machine without them
// fails the test with what to run: the browser tests are part of
// `make test`, which installs both.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	dir := consoleDir(t)
	node, err := browserPreflight(ChromiumPath, dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "driver.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+ChromiumPath)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the browser driver: %v", err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	b := &Browser{t: t, cmd: cmd, stdin: stdin, replys: sc, stderr: stderr}
	t.Cleanup(b.stop)
	var hello struct {
		Ready   bool   `json:"ready"`
		Version string `json:"version"`
	}
	if err := b.await(0, 60*time.Second, &hello); err != nil {
		t.Fatalf("the browser did not start: %v\ndriver stderr:\n%s", err, stderr.String())
	}
	b.Version = hello.Version
	return b
}

// browserPreflight checks that what the browser tests need is installed
// (Chromium at chromium, the driver's playwright-core under dir, node on
// PATH) and returns node's path, or what is missing and what to run.
func browserPreflight(chromium, dir string) (string, error) {
	if _, err := os.Stat(chromium); err != nil {
		return "", fmt.Errorf("%s is missing: run `make deps` (it installs Debian's chromium): %w", chromium, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		return "", fmt.Errorf("%s/node_modules has no playwright-core: run `make deps` (npm ci from its lock): %w", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node is not on PATH: run `make deps` (it installs Debian's nodejs): %w", err)
	}
	return node, nil
}

// stop ends the driver (which closes Chromium) and waits for it.
func (b *Browser) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = io.WriteString(b.stdin, `{"op":"quit"}`+"\n")
	_ = b.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

type driverReply struct {
	ID    int             `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// await reads replies until the one with id (the driver answers in order).
func (b *Browser) await(id int, timeout time.Duration, into any) error {
	got := make(chan error, 1)
	go func() {
		for b.replys.Scan() {
			var r driverReply
			if err := json.Unmarshal(b.replys.Bytes(), &r); err != nil {
				got <- fmt.Errorf("driver wrote %q: %w", b.replys.Text(), err)
				return
			}
			if r.ID != id {
				continue
			}
			if !r.OK {
				got <- fmt.Errorf("%s", r.Error)
				return
			}
			if into != nil && len(r.Value) > 0 {
				got <- json.Unmarshal(r.Value, into)
				return
			}
			got <- nil
			return
		}
		got <- fmt.Errorf("the driver ended (%v); stderr:\n%s", b.replys.Err(), b.stderr.String())
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(timeout):
		// NB: killing the driver ends the reader's Scan; no request is
		// sent after this one (dead), so no two readers share the scanner.
		_ = b.cmd.Process.Kill()
		<-got
		b.dead = fmt.Errorf("a request got no answer within %s (the driver was killed)", timeout)
		return b.dead
	}
}

// Do sends one request and decodes its value into into (nil: ignore it).
// It returns the driver's error (a selector that never appeared, a script
// that threw) instead of failing, for tests that expect one.
func (b *Browser) Do(req map[string]any, timeout time.Duration, into any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead != nil {
		return b.dead
	}
	b.nextID++
	id := b.nextID
	req["id"] = id
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := b.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write to the driver: %w", err)
	}
	return b.await(id, timeout, into)
}

func (b *Browser) must(req map[string]any, timeout time.Duration, into any) {
	b.t.Helper()
	if err := b.Do(req, timeout, into); err != nil {
		b.t.Fatalf("browser %s: %v", req["op"], err)
	}
}

// NewPage opens a tab of width x height CSS pixels (0, 0: 1280 x 800).
func (b *Browser) NewPage(width, height int) *Page {
	b.t.Helper()
	var id string
	b.must(map[string]any{"op": "newPage", "width": width, "height": height}, 30*time.Second, &id)
	return &Page{b: b, id: id}
}

func (p *Page) req(op string, kv ...any) map[string]any {
	m := map[string]any{"op": op, "page": p.id}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// Goto loads url and returns the HTTP status of the document.
func (p *Page) Goto(t testing.TB, url string) int {
	t.Helper()
	var r struct {
		Status int `json:"status"`
	}
	if err := p.b.Do(p.req("goto", "url", url), 60*time.Second, &r); err != nil {
		t.Fatalf("open %s: %v", redactToken(url), err)
	}
	return r.Status
}

// WaitFor waits until an element matching the CSS selector (and holding
// text, when not empty) is visible, failing the test after timeout with
// what the page shows.
func (p *Page) WaitFor(t testing.TB, selector, text string, timeout time.Duration) {
	t.Helper()
	err := p.b.Do(p.req("waitFor", "selector", selector, "text", text, "timeoutMs", timeout.Milliseconds()), timeout+30*time.Second, nil)
	if err != nil {
		t.Fatalf("wait for %s %q: %v\npage text:\n%s", selector, text, err, p.bodyText())
	}
}

// TryWaitFor is WaitFor returning the error (for what must NOT appear).
func (p *Page) TryWaitFor(selector, text string, timeout time.Duration) error {
	return p.b.Do(p.req("waitFor", "selector", selector, "text", text, "timeoutMs", timeout.Milliseconds()), timeout+30*time.Second, nil)
}

// Click clicks the first element matching selector and returns how long
// the driver's click took (Playwright waits for it to be actionable).
func (p *Page) Click(t testing.TB, selector string) time.Duration {
	t.Helper()
	var ms float64
	if err := p.b.Do(p.req("click", "selector", selector), 60*time.Second, &ms); err != nil {
		t.Fatalf("click %s: %v\npage text:\n%s", selector, err, p.bodyText())
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// Fill types value into the input matching selector.
func (p *Page) Fill(t testing.TB, selector, value string) {
	t.Helper()
	p.b.must(p.req("fill", "selector", selector, "value", value), 60*time.Second, nil)
}

// Press presses a key ("Enter", "Tab", "Escape") on selector, or on the
// focused element when selector is "".
func (p *Page) Press(t testing.TB, selector, key string) {
	t.Helper()
	req := p.req("press", "key", key)
	if selector != "" {
		req["selector"] = selector
	}
	p.b.must(req, 60*time.Second, nil)
}

// Hover moves the mouse over the first element matching selector.
func (p *Page) Hover(t testing.TB, selector string) {
	t.Helper()
	p.b.must(p.req("hover", "selector", selector), 60*time.Second, nil)
}

// Mouse performs a raw mouse action ("move", "down", "up", "wheel") at
// page coordinates (for wheel, x and y are the deltas).
func (p *Page) Mouse(t testing.TB, action string, x, y float64) {
	t.Helper()
	req := p.req("mouse", "action", action, "x", x, "y", y, "steps", 5)
	if action == "wheel" {
		req["dx"], req["dy"] = x, y
	}
	p.b.must(req, 60*time.Second, nil)
}

// Eval runs fn — a JavaScript function's source, "(arg) => ..." — in the
// page with arg, and decodes its (JSON) value into into.
func (p *Page) Eval(t testing.TB, fn string, arg, into any) {
	t.Helper()
	if err := p.b.Do(p.req("eval", "expr", fn, "arg", arg), 60*time.Second, into); err != nil {
		t.Fatalf("eval %s: %v", fn, err)
	}
}

// EvalFrame is Eval inside the frame of the first element matching
// selector (an iframe).
func (p *Page) EvalFrame(t testing.TB, selector, fn string, arg, into any) {
	t.Helper()
	if err := p.b.Do(p.req("evalFrame", "selector", selector, "expr", fn, "arg", arg), 60*time.Second, into); err != nil {
		t.Fatalf("eval in frame %s: %v", selector, err)
	}
}

// TryEvalFrameNamed is Eval in the first frame, at any depth, whose name
// is frame (or whose URL contains it), without eval: it works in frames
// whose CSP forbids it (an MCP Apps view and its nested frames). It returns
// the driver's error (no such frame yet, a script that threw), for polling.
func (p *Page) TryEvalFrameNamed(frame, fn string, arg, into any) error {
	return p.b.Do(p.req("evalFrame", "frame", frame, "noEval", true, "expr", fn, "arg", arg), 60*time.Second, into)
}

// Screenshot writes a PNG of the page (or of the element matching
// selector, when not empty) to path.
func (p *Page) Screenshot(t testing.TB, path, selector string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		t.Fatal(err)
	}
	req := p.req("screenshot", "path", abs)
	if selector != "" {
		req["selector"] = selector
	}
	p.b.must(req, 60*time.Second, nil)
}

// Metrics returns Chromium's performance figures of the page
// (JSHeapUsedSize, Nodes, LayoutCount, ...), after a garbage collection
// when gc is set.
func (p *Page) Metrics(t testing.TB, gc bool) map[string]float64 {
	t.Helper()
	var m map[string]float64
	p.b.must(p.req("metrics", "gc", gc), 60*time.Second, &m)
	return m
}

// ScriptError is one error the page's scripts raised or logged.
type ScriptError struct {
	Kind string `json:"kind"` // pageerror (uncaught) or console (console.error, failed loads)
	Text string `json:"text"`
}

// Errors returns every script error the page recorded since it opened.
func (p *Page) Errors(t testing.TB) []ScriptError {
	t.Helper()
	var errs []ScriptError
	p.b.must(p.req("errors"), 30*time.Second, &errs)
	return errs
}

// NoScriptErrors fails the test if the page recorded any script error.
func (p *Page) NoScriptErrors(t testing.TB) {
	t.Helper()
	if errs := p.Errors(t); len(errs) > 0 {
		var b strings.Builder
		for _, e := range errs {
			fmt.Fprintf(&b, "  %s: %s\n", e.Kind, e.Text)
		}
		t.Fatalf("the page recorded %d script errors:\n%s", len(errs), b.String())
	}
}

// WebSocket is one WebSocket connection the page opened (its handshake
// may have failed), in the order opened.
type WebSocket struct {
	URL string `json:"url"`
	At  int64  `json:"at"` // Unix milliseconds
}

// WebSockets returns the WebSockets the page opened since it opened (the
// newest 1000). NB: their URLs may carry a token: do not log them whole.
func (p *Page) WebSockets(t testing.TB) []WebSocket {
	t.Helper()
	var ws []WebSocket
	p.b.must(p.req("websockets"), 30*time.Second, &ws)
	return ws
}

// URL is the page's address now.
func (p *Page) URL(t testing.TB) string {
	t.Helper()
	var u string
	p.b.must(p.req("url"), 30*time.Second, &u)
	return u
}

// Reload reloads the page and returns its address.
func (p *Page) Reload(t testing.TB) string {
	t.Helper()
	var u string
	p.b.must(p.req("reload"), 60*time.Second, &u)
	return u
}

// Close closes the tab and its browser context.
func (p *Page) Close(t testing.TB) {
	t.Helper()
	p.b.must(p.req("closePage"), 30*time.Second, nil)
}

// bodyText is what the page shows, clipped, for failure messages.
func (p *Page) bodyText() string {
	var s string
	if err := p.b.Do(p.req("eval", "expr", "() => document.body ? document.body.innerText.slice(0, 4000) : ''"), 10*time.Second, &s); err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// redactToken hides a ?token= value in a URL for messages.
func redactToken(u string) string {
	i := strings.Index(u, "token=")
	if i < 0 {
		return u
	}
	j := strings.IndexAny(u[i:], "&#")
	if j < 0 {
		return u[:i] + "token=…"
	}
	return u[:i] + "token=…" + u[i+j:]
}

// lockedBuffer is an io.Writer safe for the process's stderr copier and
// the test reading it, bounded to its first MiB.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
