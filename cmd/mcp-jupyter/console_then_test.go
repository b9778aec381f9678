package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// getConsole GETs /ui/api/<path> with a bearer token and returns the status
// and body.
func getConsole(t testing.TB, hostPort, token, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+hostPort+"/ui/api/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// atState GETs /ui/api/at and decodes it, failing unless 200.
func atState(t testing.TB, hostPort, token, query string) console.AtState {
	t.Helper()
	st, body := getConsole(t, hostPort, token, "at?"+query)
	if st != 200 {
		t.Fatalf("GET /ui/api/at?%s: %d %s", query, st, body)
	}
	var at console.AtState
	if err := json.Unmarshal(body, &at); err != nil {
		t.Fatalf("decode /at: %v %s", err, body)
	}
	return at
}

// seqOf is the seq of the first event of type typ on stream.
func seqOf(t testing.TB, l *eventlog.Log, stream, typ string) uint64 {
	t.Helper()
	var seq uint64
	if err := l.ReadStream(context.Background(), stream, 0, func(e events.Event) error {
		if e.Type == typ {
			seq = e.Seq
			return eventlog.ErrStop
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seq == 0 {
		t.Fatalf("no %s on %s", typ, stream)
	}
	return seq
}

// TestConsoleThenShowsThePast: an agent runs `x = 1`, `print(x)`, a failing
// cell, then restarts the kernel. /ui/api/at at the seq where the second
// execution finished shows the kernel as it was (running, idle, not
// restarted), two executions with their statuses then (the failing one not
// there yet) and the second one's stdout — exactly what replayModels (the
// server's replay, the `events replay` CLI's) gives at that seq, and not
// what the present shows. Before the restart the kernel is not restarted,
// from it on it is. A seq beyond the log is 400, one older than the
// retained log 410 naming --retain-events, and bob, who may not read
// alice's kernel, gets 404 as for an unknown kernel.
func TestConsoleThenShowsThePast(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := ps.clients["alice"]
	c := ps.c
	k := startKernelTool(t, alice)
	var ids []string
	for _, step := range []struct{ code, status string }{{"x = 1", "ok"}, {"print(x)", "ok"}, {"1/0", "error"}} {
		sc, text := callTool(t, alice, "execute", map[string]any{"kernel": k, "code": step.code})
		if sc["status"] != step.status {
			t.Fatalf("execute %q: %v %s", step.code, sc, text)
		}
		ids = append(ids, sc["execution_id"].(string))
	}
	must(t, alice, "restart_kernel", map[string]any{"kernel": k})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.runner.WaitFor(ctx, c.log.Last()); err != nil {
		t.Fatal(err)
	}
	finished2 := seqOf(t, c.log, events.ExecutionStream(ids[1]), events.TypeExecutionFinished)
	restarted := seqOf(t, c.log, events.KernelStream(k), events.TypeKernelRestarted)
	tok := ps.tokens["alice"]

	at := atState(t, ps.hostPort, tok, fmt.Sprintf("seq=%d&kernel=%s", finished2, k))
	if len(at.Kernels) != 1 || at.Kernels[0].ID != k || at.Kernels[0].State != "running" || at.Kernels[0].Busy ||
		at.Kernels[0].Restarts != 0 || at.Kernels[0].Owner != "alice" {
		t.Fatalf("the kernel at %d: %+v, want alice's running idle kernel %s, not restarted", finished2, at.Kernels, k)
	}
	var got []string
	for _, x := range at.Executions {
		got = append(got, x.ID+":"+string(x.Status))
	}
	if want := []string{ids[1] + ":ok", ids[0] + ":ok"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("executions at %d: %v, want %v (newest first; the failing one not yet queued)", finished2, got, want)
	}
	if x := at.Executions[0]; x.Submitter.Kind != "agent" || x.Submitter.Name != "alice" || x.Code != "print(x)" {
		t.Fatalf("the second execution at %d: %+v", finished2, x)
	}
	stdout := ""
	for _, o := range at.OutputsOf[ids[1]] {
		var sc struct{ Name, Text string }
		_ = json.Unmarshal(o.Content, &sc)
		if o.MsgType == "stream" && sc.Name == "stdout" {
			stdout += sc.Text
		}
		if o.Seq > finished2 {
			t.Fatalf("an output recorded after %d: %+v", finished2, o)
		}
	}
	if stdout != "1\n" {
		t.Fatalf("stdout of print(x) at %d: %q (outputs %+v)", finished2, stdout, at.OutputsOf)
	}
	if len(at.Around) == 0 || !containsSeq(at.Around, finished2) {
		t.Fatalf("around %d: %+v", finished2, at.Around)
	}

	// The same function the CLI uses, from the log's start: the same answer.
	m, err := replayModels(ctx, c.log, finished2, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := console.AtState{}
	kk, _ := m.Kernels.Get(k)
	want.Kernels = append(want.Kernels, pastKernel(kk, m.Queue))
	xs := m.Queue.List(k, "")
	for i := len(xs) - 1; i >= 0; i-- {
		want.Executions = append(want.Executions, console.ExecutionAt(xs[i], at.Time))
	}
	if a, b := jsonOf(t, at.Kernels, at.Executions), jsonOf(t, want.Kernels, want.Executions); a != b {
		t.Fatalf("/at differs from replayModels at %d:\n /at    %s\n replay %s", finished2, a, b)
	}
	// And it is not the present.
	now, _ := c.kernels.Get(k)
	if now.Restarts != 1 || len(c.queue.List(k, "")) != 3 {
		t.Fatalf("the present: %d restarts, %d executions; want 1 and 3", now.Restarts, len(c.queue.List(k, "")))
	}

	before := atState(t, ps.hostPort, tok, fmt.Sprintf("seq=%d&kernel=%s", restarted-1, k))
	if before.Kernels[0].Restarts != 0 || len(before.Executions) != 3 || before.Executions[0].Status != queue.StatusError ||
		before.Executions[0].ErrorName != "ZeroDivisionError" {
		t.Fatalf("just before the restart (%d): %+v %+v", restarted-1, before.Kernels, before.Executions)
	}
	after := atState(t, ps.hostPort, tok, fmt.Sprintf("seq=%d&kernel=%s", restarted, k))
	if after.Kernels[0].Restarts != 1 || after.Kernels[0].State != "running" {
		t.Fatalf("at the restart (%d): %+v", restarted, after.Kernels)
	}

	// The timeline: the kernel's events, oldest first, paged.
	st, body := getConsole(t, ps.hostPort, tok, "timeline?kernel="+k+"&limit=500")
	var tl console.Timeline
	if st != 200 || json.Unmarshal(body, &tl) != nil {
		t.Fatalf("timeline: %d %s", st, body)
	}
	summaries := ""
	for i, e := range tl.Events {
		if i > 0 && e.Seq <= tl.Events[i-1].Seq {
			t.Fatalf("timeline out of order at %d: %+v", i, tl.Events)
		}
		summaries += e.Summary + "\n"
	}
	for _, want := range []string{"kernel started (python3) by alice", "x = 1 queued by alice", "print(x) queued by alice",
		"stream stdout 1 line", "finished ok", "finished error: ZeroDivisionError", "kernel restarted by alice"} {
		if !strings.Contains(summaries, want) {
			t.Errorf("timeline lacks %q:\n%s", want, summaries)
		}
	}
	if tl.More || tl.KernelFirst != tl.Events[0].Seq {
		t.Errorf("timeline of %d events: more %v, kernel_first %d", len(tl.Events), tl.More, tl.KernelFirst)
	}
	st, body = getConsole(t, ps.hostPort, tok, "timeline?kernel="+k+"&limit=3")
	var page console.Timeline
	if st != 200 || json.Unmarshal(body, &page) != nil || len(page.Events) != 3 || !page.More {
		t.Fatalf("timeline limit=3: %d %s", st, body)
	}
	st, body = getConsole(t, ps.hostPort, tok, fmt.Sprintf("timeline?kernel=%s&after=%d&limit=3", k, page.Events[2].Seq))
	if st != 200 || json.Unmarshal(body, &page) != nil || page.Events[0].Seq != tl.Events[3].Seq {
		t.Fatalf("timeline's second page: %d %s", st, body)
	}

	// Refusals.
	last := c.log.Last()
	if st, body := getConsole(t, ps.hostPort, tok, fmt.Sprintf("at?seq=%d&kernel=%s", last+5, k)); st != 400 || !strings.Contains(string(body), "beyond the log's last event") {
		t.Errorf("seq beyond the last: %d %s", st, body)
	}
	for _, path := range []string{"at?seq=abc", "at?kernel=" + k, "at?seq=0", "timeline", "timeline?kernel=" + k + "&after=x",
		"timeline?kernel=" + k + "&limit=0", fmt.Sprintf("at?seq=%d&limit=100000", finished2), "at/outputs?seq=3"} {
		if st, body := getConsole(t, ps.hostPort, tok, path); st != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET /ui/api/%s: %d %s, want 400 saying what to give", path, st, body)
		}
	}
	for _, path := range []string{fmt.Sprintf("at?seq=%d&kernel=%s", finished2, k), "timeline?kernel=" + k,
		fmt.Sprintf("at/outputs?execution=%s&seq=%d", ids[1], finished2)} {
		st, body := getConsole(t, ps.hostPort, ps.tokens["bob"], path)
		if st != 404 {
			t.Errorf("bob GET %s: %d %s, want 404", path, st, body)
		}
		unknown := strings.NewReplacer(k, "01KUNKNOWNKERNEL0000000000", ids[1], "01KUNKNOWNEXECUTION0000000").Replace(path)
		st2, body2 := getConsole(t, ps.hostPort, ps.tokens["bob"], unknown)
		if st2 != 404 || strings.ReplaceAll(strings.ReplaceAll(string(body2), "01KUNKNOWNKERNEL0000000000", k), "01KUNKNOWNEXECUTION0000000", ids[1]) != string(body) {
			t.Errorf("bob's refusal tells the kernel exists:\n hidden  %s\n unknown %s", body, body2)
		}
	}
	if bobs := atState(t, ps.hostPort, ps.tokens["bob"], fmt.Sprintf("seq=%d", finished2)); len(bobs.Kernels) != 0 || len(bobs.Executions) != 0 || len(bobs.Around) != 0 {
		t.Errorf("bob sees alice's past: %+v", bobs)
	}
	if all := atState(t, ps.hostPort, ps.tokens["admin"], fmt.Sprintf("seq=%d", finished2)); len(all.Kernels) != 1 || len(all.Executions) != 2 {
		t.Errorf("the admin's view at %d: %+v", finished2, all)
	}

	// Retention: a seq older than the retained log is gone (410, naming the
	// setting); the state at a retained seq is still folded from what the
	// log keeps (the live kernel's stream).
	keep := func(e events.Event) bool { return c.kernels.Keep(e) || c.queue.Keep(e) }
	if _, err := c.log.TruncateBefore(restarted, keep); err != nil {
		t.Fatal(err)
	}
	if st, body := getConsole(t, ps.hostPort, tok, fmt.Sprintf("at?seq=%d&kernel=%s", finished2, k)); st != http.StatusGone || !strings.Contains(string(body), "--retain-events") {
		t.Errorf("seq before the retained log: %d %s, want 410 naming --retain-events", st, body)
	}
	if st, body := getConsole(t, ps.hostPort, tok, fmt.Sprintf("timeline?kernel=%s&after=%d", k, finished2)); st != http.StatusGone || !strings.Contains(string(body), "--retain-events") {
		t.Errorf("timeline after a seq before the retained log: %d %s, want 410 naming --retain-events", st, body)
	}
	kept := atState(t, ps.hostPort, tok, fmt.Sprintf("seq=%d&kernel=%s", c.log.Last(), k))
	if len(kept.Kernels) != 1 || kept.Kernels[0].Restarts != 1 || kept.Kernels[0].State != "running" {
		t.Errorf("the state at the end after truncation: %+v", kept.Kernels)
	}
}

func containsSeq(evs []console.TimelineEvent, seq uint64) bool {
	for _, e := range evs {
		if e.Seq == seq {
			return true
		}
	}
	return false
}

func jsonOf(t testing.TB, vs ...any) string {
	t.Helper()
	b, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConsoleReplayCacheBounded: after many requests at different seqs the
// cache of replayed states never holds more entries or bytes than its
// limits, every answer equals the full replay's (replayModels from the
// log's start), and a request near an earlier one folds at most `every`
// events past a cached state.
func TestConsoleReplayCacheBounded(t *testing.T) {
	const n, every = 6000, 128
	l := testkit.LogWithEvents(t, n, testkit.Mix{})
	limits := replayCacheLimits{entries: 6, bytes: 4 << 20}
	r := newConsoleReplayer(l, edgeAccess{}, limits, every)
	ctx := context.Background()
	models := func(seq uint64) *readModels {
		m, _, err := modelsRetrying(t, r, seq)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i, seq := range []uint64{n, 1, 2777, n / 2, 3, n - 1, 4321, 128, 5999, 3000, 3001, 5500, 100, 4500, 2} {
		m := models(seq)
		entries, bytes := r.cache.stats()
		if entries > limits.entries || bytes > limits.bytes {
			t.Fatalf("after request %d (seq %d): %d entries, %d bytes; limits %d, %d", i, seq, entries, bytes, limits.entries, limits.bytes)
		}
		if i%3 == 0 {
			full, err := replayModels(ctx, l, seq, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, m.Kernels.List(), m.Queue.List("", "")), jsonOf(t, full.Kernels.List(), full.Queue.List("", "")); a != b {
				t.Fatalf("the cached path's models at %d differ from the full replay's", seq)
			}
		}
	}
	if entries, _ := r.cache.stats(); entries == 0 {
		t.Fatal("the cache holds nothing after 15 requests")
	}
	_, _, _ = modelsRetrying(t, r, 5000)
	if _, folded, err := r.models(ctx, 5000+every/2); err != nil || folded > every {
		t.Fatalf("a request next to an earlier one folded %d events (%v), want at most %d", folded, err, every)
	}
}

// TestConsoleTimelineShowsThePastInABrowser: in a real browser, the "Then"
// view shows the state at a chosen seq — an execution running as it was,
// with the line it had printed, while the page's present (the Now API)
// says it finished. Typing a seq, moving the slider, clicking an event and
// the arrow keys all move through the kernel's events; no script errors.
func TestConsoleTimelineShowsThePastInABrowser(t *testing.T) {
	site := startConsoleSite(t)
	cl := site.connect()
	k := startKernelTool(t, cl)
	var ids []string
	for _, step := range []struct{ code, status string }{
		{"import time\nprint('started the long one')\ntime.sleep(1)\nprint('done')", "ok"},
		{"print(6 * 7)", "ok"},
		{"1/0", "error"},
	} {
		sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": step.code})
		if sc["status"] != step.status {
			t.Fatalf("execute %q: %v %s", step.code, sc, text)
		}
		ids = append(ids, sc["execution_id"].(string))
	}
	c := site.c
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.runner.WaitFor(ctx, c.log.Last()); err != nil {
		t.Fatal(err)
	}
	// While the first ran: the event before its end (its idle status).
	running := seqOf(t, c.log, events.ExecutionStream(ids[0]), events.TypeExecutionFinished) - 1
	finished2 := seqOf(t, c.log, events.ExecutionStream(ids[1]), events.TypeExecutionFinished)

	p := site.browser.NewPage(1280, 900)
	defer p.Close(t)
	if st := p.Goto(t, site.consoleURL(c.token, "")); st != 200 {
		t.Fatalf("GET /ui/: %d", st)
	}
	var ok bool
	p.Eval(t, `async ({kernelId, seq}) => {
		// NB: the shell (app.js) adopts ?token= first; this page mounts
		// the view alone.
		(await import('/ui/api.js')).adoptToken();
		const { mountThen } = await import('/ui/then.js');
		const box = document.createElement('div');
		box.id = 'then-under-test';
		document.body.prepend(box);
		window.thenView = mountThen(box, { kernelId, seq, navigate: (to) => { location.hash = to; } });
		return true;
	}`, map[string]any{"kernelId": k, "seq": running}, &ok)
	state := func(seq uint64) string {
		return fmt.Sprintf(`[data-testid="then-state"][data-seq="%d"]:not([data-error])`, seq)
	}
	p.WaitFor(t, state(running), "", 30*time.Second)
	p.WaitFor(t, fmt.Sprintf(`%s [data-testid="then-execution"][data-execution-id="%s"][data-status="running"]`, state(running), ids[0]), "started the long one", 10*time.Second)
	var present string
	p.Eval(t, `async ({kernelId, id}) => {
		const { api } = await import('/ui/api.js');
		const page = await api('kernels/' + encodeURIComponent(kernelId) + '/executions');
		return page.executions.find((x) => x.execution_id === id).status;
	}`, map[string]any{"kernelId": k, "id": ids[0]}, &present)
	if present != "ok" {
		t.Fatalf("the present status of the first execution: %q, want ok", present)
	}
	if err := p.TryWaitFor(fmt.Sprintf(`[data-testid="then-execution"][data-execution-id="%s"]`, ids[1]), "", 300*time.Millisecond); err == nil {
		t.Fatal("an execution queued after the chosen seq is shown")
	}
	p.WaitFor(t, `[data-testid="timeline"] [data-testid="timeline-event"]`, "queued by admin", 10*time.Second)

	// Type a seq.
	p.Fill(t, `[data-testid="seq-input"]`, fmt.Sprint(finished2))
	p.Press(t, `[data-testid="seq-input"]`, "Enter")
	p.WaitFor(t, fmt.Sprintf(`%s [data-testid="then-execution"][data-execution-id="%s"][data-status="ok"]`, state(finished2), ids[1]), "42", 20*time.Second)
	if err := p.TryWaitFor(fmt.Sprintf(`[data-testid="then-execution"][data-execution-id="%s"]`, ids[2]), "", 300*time.Millisecond); err == nil {
		t.Fatal("the failing execution, queued after the chosen seq, is shown")
	}

	// The keyboard steps event by event: the next event of this kernel,
	// then back.
	var seqs []uint64
	if err := c.log.ReadKernel(ctx, k, 0, func(e events.Event) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	next := func(after uint64) uint64 {
		for _, s := range seqs {
			if s > after {
				return s
			}
		}
		t.Fatalf("no event of the kernel after %d", after)
		return 0
	}
	p.Press(t, `[data-testid="timeline-seq"]`, "ArrowRight")
	p.WaitFor(t, state(next(finished2)), "", 20*time.Second)
	p.Press(t, `[data-testid="timeline-seq"]`, "ArrowLeft")
	p.WaitFor(t, state(finished2), "", 20*time.Second)

	// Move the slider to the end: the failing execution is there, as an error.
	last := c.log.Last()
	p.Eval(t, `(v) => { const r = document.querySelector('[data-testid="timeline-seq"]'); r.value = String(v); r.dispatchEvent(new Event('change', { bubbles: true })); return true; }`, last, &ok)
	p.WaitFor(t, fmt.Sprintf(`%s [data-testid="then-execution"][data-execution-id="%s"][data-status="error"]`, state(last), ids[2]), "ZeroDivisionError", 20*time.Second)

	// Click an event in the list: the state at it.
	first := seqOf(t, c.log, events.ExecutionStream(ids[1]), events.TypeExecutionQueued)
	p.Click(t, fmt.Sprintf(`[data-testid="timeline-event"][data-seq="%d"] button`, first))
	p.WaitFor(t, fmt.Sprintf(`%s [data-testid="then-execution"][data-execution-id="%s"][data-status="queued"]`, state(first), ids[1]), "", 20*time.Second)
	// The arrow keys from the clicked row step on, the focus following.
	p.Press(t, "", "ArrowDown")
	p.WaitFor(t, state(next(first)), "", 20*time.Second)
	p.Press(t, "", "ArrowDown")
	p.WaitFor(t, state(next(next(first))), "", 20*time.Second)
	p.Fill(t, `[data-testid="seq-input"]`, fmt.Sprint(running))
	p.Press(t, `[data-testid="seq-input"]`, "Enter")
	p.WaitFor(t, state(running), "", 20*time.Second)

	shot := filepath.Join(t.TempDir(), "then-timeline.png")
	if os.Getenv("CONSOLE_SCREENSHOTS") == "1" {
		shot = filepath.Join("..", "..", "docs", "console", "then-timeline.png")
	}
	p.Screenshot(t, shot, "#then-under-test")
	if fi, err := os.Stat(shot); err != nil || fi.Size() > 300<<10 {
		t.Errorf("screenshot %s: %v, %d bytes (want < 300 KB)", shot, err, fi.Size())
	}
	noScriptErrorsButFavicon(t, site, p)
}

// noScriptErrorsButFavicon is page.NoScriptErrors, except, while the
// shell's index.html names no icon (consoleui's adds one), the browser's
// 404 for /favicon.ico.
func noScriptErrorsButFavicon(t *testing.T, site *consoleSite, p *testkit.Page) {
	t.Helper()
	resp, err := http.Get(site.ts.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	index, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(index), `rel="icon"`) {
		p.NoScriptErrors(t)
		return
	}
	for _, e := range p.Errors(t) {
		if e.Kind == "console" && strings.Contains(e.Text, "404") {
			continue // NB: /favicon.ico
		}
		t.Errorf("script error: %s: %s", e.Kind, e.Text)
	}
}

// modelsRetrying is r.models(seq), retried while it answers "being
// computed, retry" (a request folds at most r.maxFold events): at most
// seq/r.maxFold+2 tries.
func modelsRetrying(t testing.TB, r *consoleReplayer, seq uint64) (*readModels, uint64, error) {
	t.Helper()
	for range seq/r.maxFold + 2 {
		m, folded, err := r.models(context.Background(), seq)
		var retry *console.RetryError
		if !errors.As(err, &retry) {
			return m, folded, err
		}
	}
	t.Fatalf("the state at %d still being computed after %d tries", seq, seq/r.maxFold+2)
	return nil, 0, nil
}
