package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestConsolePageRecoversWhenItsSeqIsGone: a page is offline (its feed
// held, as a sleeping laptop's) while an agent prints more than the /ws
// backlog holds and retention deletes the log past the page's last seq.
// /ws now answers its resume 410, which a browser sees only as a failed
// connection: the page must not retry forever but ask the server, re-read
// everything, say which events it lost, and follow the live feed again.
func TestConsolePageRecoversWhenItsSeqIsGone(t *testing.T) {
	site := startConsoleSite(t)
	c := site.c
	agent := site.connect()
	k := startKernelTool(t, agent)
	callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('before the page slept')"})

	p := site.open(t, 0, 0, "/kernel/"+k)
	p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 30*time.Second)
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	var held float64
	p.Eval(t, `() => { window.__consoleLive.hold(); return window.__consoleLive.lastSeq }`, nil, &held)
	p.WaitFor(t, `[data-testid="live"][data-state="offline"]`, "", 10*time.Second)
	lastSeq := uint64(held)

	// More events than the backlog's ring holds, then retention.
	flood := fmt.Sprintf("import time\nfor i in range(%d):\n    print(f'flood {i}', flush=True)\n    time.sleep(0.0005)", backlog.DefaultMaxMessages*2)
	if sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": flood, "timeout_s": 120}); sc["status"] != "ok" {
		t.Fatalf("the flood: %v %s", sc, text)
	}
	keep := func(e events.Event) bool { return c.kernels.Keep(e) || c.queue.Keep(e) }
	if _, err := c.log.TruncateBefore(c.log.Last(), keep); err != nil {
		t.Fatal(err)
	}
	if err := c.log.CheckAfter(lastSeq); err == nil {
		t.Fatalf("setup: the log still holds the events after %d (first %d)", lastSeq, c.log.First())
	}
	if c.live.backlog.Covers(backlog.All, lastSeq) {
		t.Fatalf("setup: the backlog still covers since=%d: /ws would resume it", lastSeq)
	}
	first := c.log.First()

	p.Eval(t, `() => { window.__consoleLive.resume(); return true }`, nil, nil)
	p.WaitFor(t, `[data-testid="live-notice"]`, "removed by retention", 30*time.Second)
	var notice string
	p.Eval(t, `() => document.querySelector('[data-testid="live-notice"]').textContent`, nil, &notice)
	if want := fmt.Sprintf("Events from %d to ", lastSeq+1); !strings.Contains(notice, want) {
		t.Errorf("the notice %q does not name the first lost event (%q)", notice, want)
	}
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)
	var resumed float64
	p.Eval(t, `() => window.__consoleLive.lastSeq`, nil, &resumed)
	if uint64(resumed) < first-1 {
		t.Errorf("the page follows from seq %v, before the log's first %d", resumed, first)
	}

	// Live again: a new agent execution appears, and its output.
	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('after the page woke up')"})
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute: no execution id: %s", text)
	}
	row := `[data-testid="execution-row"][data-execution-id="` + id + `"]`
	p.WaitFor(t, row, "after the page woke up", 30*time.Second)
	p.Click(t, row+` a`)
	p.WaitFor(t, `[data-testid="execution-view"][data-execution-id="`+id+`"] [data-testid="outputs"]`, "after the page woke up", 30*time.Second)

	// NB: Chromium logs each refused WebSocket handshake as a console
	// error; that one is expected here, nothing else is.
	for _, e := range p.Errors(t) {
		if !strings.Contains(e.Text, "WebSocket connection to") {
			t.Errorf("script error: %s: %s", e.Kind, e.Text)
		}
	}
	testkit.WaitUntil(t, time.Second, "the feed is live", func() (bool, string) {
		var st string
		p.Eval(t, `() => window.__consoleLive.state`, nil, &st)
		return st == "live", st
	})
}

// TestConsolePageExecutionViewOpenedMidRunHasNoGap: the execution view is
// opened while an execution streams, and the read model lags the live feed
// by longer than the view used to wait (6 s, made so by answering the
// page's execution reads as a lagging model would: only what it had
// applied then). The view must wait ("Catching up…") rather than append
// the live outputs past the ones it could not read yet: every line once,
// in order.
func TestConsolePageExecutionViewOpenedMidRunHasNoGap(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	p := site.open(t, 0, 0, "/kernel/"+k)
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)

	const n = 24
	code := fmt.Sprintf("import time\nfor i in range(%d):\n    print(f'numbered {i:03d}', flush=True)\n    time.sleep(0.3)", n)
	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 1})
	id, _ := sc["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute: no execution id: %s", text)
	}
	// The feed has delivered a few lines before the view opens.
	testkit.WaitUntil(t, 30*time.Second, "a few lines recorded", func() (bool, string) {
		_, text := callTool(t, agent, "get_execution", map[string]any{"execution_id": id})
		return strings.Contains(text, "numbered 003"), text
	})
	// NB: a read model 6 s behind: the execution reads answer only the
	// first output the page asks for, and nothing newer, until then.
	p.Eval(t, `() => {
  const orig = window.fetch;
  const until = Date.now() + 6000;
  let lagAt = 0;
  window.fetch = async (input, init) => {
    const res = await orig(input, init);
    const u = String((input && input.url) || input);
    if (Date.now() > until || !/\/ui\/api\/executions\/[^/?]+\?since=/.test(u)) return res;
    const body = await res.clone().json();
    const since = Number(new URL(u, location.href).searchParams.get('since')) || 0;
    if (!lagAt && body.outputs && body.outputs.length) lagAt = body.outputs[0].seq;
    const outputs = (body.outputs || []).filter((o) => o.seq <= lagAt);
    return new Response(JSON.stringify({ ...body, outputs, cursor: Math.max(since, lagAt), more: false }),
      { status: res.status, headers: { 'content-type': 'application/json' } });
  };
  return true;
}`, nil, nil)
	p.Eval(t, `(id) => { location.hash = '#/execution/' + encodeURIComponent(id); return true }`, id, nil)
	view := `[data-testid="execution-view"][data-execution-id="` + id + `"]`
	p.WaitFor(t, view+` [data-testid="catching-up"]`, "Catching up", 10*time.Second)
	p.WaitFor(t, view+`[data-status="ok"]`, "", 60*time.Second)
	p.WaitFor(t, view+` [data-testid="outputs"]`, fmt.Sprintf("numbered %03d", n-1), 30*time.Second)
	testkit.WaitUntil(t, 10*time.Second, "the view stops catching up once the read model has caught up", func() (bool, string) {
		var hidden bool
		p.Eval(t, `() => document.querySelector('[data-testid="catching-up"]').hidden`, nil, &hidden)
		return hidden, "Catching up… still shown"
	})
	var got []string
	for _, l := range uiStreamLines(t, p) {
		if strings.HasPrefix(l, "numbered") {
			got = append(got, strings.TrimSpace(l))
		}
	}
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("numbered %03d", i))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the view opened mid-run behind a lagging read model shows\n%q\nwant each line once, in order:\n%q", got, want)
	}
}

// TestConsolePageKernelViewReadsExecutionsItMissed: the kernel view opens
// after an execution was queued, and its first read of the list comes from
// a read model that has not applied it yet (made so by answering that one
// read empty). The events of executions the view does not know must make
// it re-read the list: the executions appear, and end ok.
func TestConsolePageKernelViewReadsExecutionsItMissed(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	p := site.open(t, 0, 0, "/")
	p.WaitFor(t, `[data-testid="live"][data-state="live"]`, "", 30*time.Second)

	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "import time\ntime.sleep(3)\nprint('slept')", "timeout_s": 1})
	first, _ := sc["execution_id"].(string)
	if first == "" || sc["status"] != "running" {
		t.Fatalf("execute: want a running execution: %v %s", sc, text)
	}
	sc, text = callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('second')", "timeout_s": 1})
	second, _ := sc["execution_id"].(string)
	if second == "" || sc["status"] != "queued" {
		t.Fatalf("execute: want a queued execution: %v %s", sc, text)
	}
	p.Eval(t, `(k) => {
  const orig = window.fetch;
  let lagged = false;
  window.fetch = async (input, init) => {
    const u = String((input && input.url) || input);
    if (!lagged && u.includes('/ui/api/kernels/' + encodeURIComponent(k) + '/executions')) {
      lagged = true;
      return new Response(JSON.stringify({ executions: [], more: false }), { status: 200, headers: { 'content-type': 'application/json' } });
    }
    return orig(input, init);
  };
  location.hash = '#/kernel/' + encodeURIComponent(k);
  return true;
}`, k, nil)
	p.WaitFor(t, `[data-testid="kernel-view"][data-kernel-id="`+k+`"]`, "", 10*time.Second)
	for _, id := range []string{first, second} {
		p.WaitFor(t, `[data-testid="execution-row"][data-execution-id="`+id+`"][data-status="ok"]`, "", 30*time.Second)
	}
}

// TestConsolePageCancelAsksFirst: Cancel withdraws an agent's work, so the
// page asks first: dismissing the dialog sends nothing (the execution stays
// queued); confirming cancels it (pipelined ones once the kernel reaches them).
func TestConsolePageCancelAsksFirst(t *testing.T) {
	site := startConsoleSite(t)
	agent := site.connect()
	k := startKernelTool(t, agent)
	sc, text := callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "import time\ntime.sleep(60)", "timeout_s": 1})
	if sc["status"] != "running" {
		t.Fatalf("execute: want a running execution: %v %s", sc, text)
	}
	sc, text = callTool(t, agent, "execute", map[string]any{"kernel": k, "code": "print('wanted')", "timeout_s": 1})
	queued, _ := sc["execution_id"].(string)
	if queued == "" || sc["status"] != "queued" {
		t.Fatalf("execute: want a queued execution: %v %s", sc, text)
	}
	p := site.open(t, 0, 0, "/execution/"+queued)
	view := `[data-testid="execution-view"][data-execution-id="` + queued + `"]`
	p.WaitFor(t, view+`[data-status="queued"] [data-testid="cancel"]`, "", 30*time.Second)
	p.Click(t, view+` [data-testid="cancel"]`)
	p.WaitFor(t, `[data-testid="confirm"]`, "withdrawn", 10*time.Second)
	p.Click(t, `[data-testid="confirm-no"]`)
	if sc, text := callTool(t, agent, "get_execution", map[string]any{"execution_id": queued}); sc["status"] != "queued" {
		t.Fatalf("dismissing the dialog changed the execution: %v %s", sc, text)
	}
	p.Click(t, view+` [data-testid="cancel"]`)
	p.WaitFor(t, `[data-testid="confirm"]`, "withdrawn", 10*time.Second)
	p.Click(t, `[data-testid="confirm-yes"]`)
	p.WaitFor(t, `[data-testid="toast"]`, "", 10*time.Second) // NB: the answer: withdrawn, or abort asked
	// NB: a queued execution may be pipelined to the kernel already: it is
	// aborted there when the kernel reaches it, after the sleeper.
	callTool(t, agent, "interrupt_kernel", map[string]any{"kernel": k})
	p.WaitFor(t, view+`[data-status="cancelled"]`, "", 30*time.Second)
	if sc, text := callTool(t, agent, "get_execution", map[string]any{"execution_id": queued}); sc["status"] != "cancelled" {
		t.Fatalf("after confirming: %v %s", sc, text)
	}
}
