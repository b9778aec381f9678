package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// edgeEvent is what /ws and /events carry of an event.
type edgeEvent struct {
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Kernel    string          `json:"kernel"`
	Principal string          `json:"principal"`
	Payload   json.RawMessage `json:"payload"`
}

func (e edgeEvent) String() string {
	return strconv.FormatUint(e.Seq, 10) + " " + e.Type + " kernel " + e.Kernel + " by " + strconv.Quote(e.Principal)
}

// wsReader reads a /ws stream as one principal.
type wsReader struct {
	t     testing.TB
	conn  *websocket.Conn
	lines [][]byte
	got   []edgeEvent
}

func dialWS(t testing.TB, hostPort, query, token string) *wsReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws://" + hostPort + "/ws?token=" + token
	if query != "" {
		url += "&" + query
	}
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial /ws?%s: %v", query, err)
	}
	conn.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &wsReader{t: t, conn: conn}
}

// until reads events until one matches done (within 60 s), keeping every
// event read.
func (r *wsReader) until(what string, done func(edgeEvent) bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if len(r.lines) == 0 {
			_, msg, err := r.conn.Read(ctx)
			if err != nil {
				r.t.Fatalf("/ws read waiting for %s (after %d events): %v", what, len(r.got), err)
			}
			r.lines = bytes.Split(msg, []byte("\n"))
		}
		var e edgeEvent
		if err := json.Unmarshal(r.lines[0], &e); err != nil {
			r.t.Fatalf("decode %q: %v", r.lines[0], err)
		}
		r.lines = r.lines[1:]
		r.got = append(r.got, e)
		if done(e) {
			return
		}
	}
}

// finished matches the ExecutionFinished of execution x.
func finished(x string) func(edgeEvent) bool {
	return func(e edgeEvent) bool {
		return e.Type == "ExecutionFinished" && strings.Contains(string(e.Payload), `"execution_id":"`+x+`"`)
	}
}

// ofKernels are the events about the given kernels.
func ofKernels(evs []edgeEvent, kernels ...string) []edgeEvent {
	var out []edgeEvent
	for _, e := range evs {
		if slices.Contains(kernels, e.Kernel) {
			out = append(out, e)
		}
	}
	return out
}

// httpGet GETs path with token and returns the status and body.
func httpGet(t testing.TB, hostPort, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+hostPort+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventsAPI reads GET /events?since=0 as token.
func eventsAPI(t testing.TB, hostPort, token string) []edgeEvent {
	t.Helper()
	code, body := httpGet(t, hostPort, "/events?since=0", token)
	if code != 200 {
		t.Fatalf("GET /events: %d %s", code, body)
	}
	var out []edgeEvent
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e edgeEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("decode %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// execute runs code on kernel k as cl and returns the execution id.
func executeOK(t testing.TB, ps *principalsServer, who, k, code string) string {
	t.Helper()
	sc, text := callTool(t, ps.clients[who], "execute", map[string]any{"kernel": k, "code": code})
	if sc["status"] != "ok" {
		t.Fatalf("%s's execute on %s: %v %s", who, k, sc, text)
	}
	return sc["execution_id"].(string)
}

// TestEdgesByPrincipal: alice and bob on one real server with real
// kernels. Alice's /ws never carries bob's kernels' events (live and
// resumed with since=0) while it carries hers; bob's image is 404 for her
// at /assets exactly like an asset never stored; /events shows her none of
// bob's events. Once bob shares one kernel with her, exactly that kernel's
// events appear (live and in /events), not his other kernel's; withdrawn,
// they stop.
func TestEdgesByPrincipal(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := dialWS(t, ps.hostPort, "", ps.tokens["alice"])
	admin := dialWS(t, ps.hostPort, "", ps.tokens["admin"])
	testkit.WaitUntil(t, 10*time.Second, "both /ws clients joined", func() (bool, string) {
		n := ps.c.live.hub.Clients()
		return n == 2, strconv.Itoa(n) + " clients"
	})

	ka := startKernelTool(t, ps.clients["alice"])
	kb := startKernelTool(t, ps.clients["bob"])
	kc := startKernelTool(t, ps.clients["bob"])
	xa := executeOK(t, ps, "alice", ka, "print('alice-out')")
	xb := executeOK(t, ps, "bob", kb, "from IPython.display import HTML, display\ndisplay(HTML('<i>bob-secret</i>'))\nprint('bob-out')")
	executeOK(t, ps, "bob", kc, "print('bob-other')")
	end := executeOK(t, ps, "alice", ka, "print('alice-end')")

	alice.until("alice's last execution", finished(end))
	if foreign := ofKernels(alice.got, kb, kc); len(foreign) > 0 {
		t.Fatalf("alice's /ws carried %d events of bob's kernels, first %v", len(foreign), foreign[0])
	}
	mine := ofKernels(alice.got, ka)
	if !slices.ContainsFunc(mine, finished(xa)) || !slices.ContainsFunc(mine, func(e edgeEvent) bool { return e.Type == "KernelStarted" }) {
		t.Fatalf("alice's /ws lacks her own kernel's start or execution: %d events of %s", len(mine), ka)
	}
	for _, e := range alice.got {
		if e.Principal == "bob" {
			t.Fatalf("alice's /ws carried an event bob caused: %v", e)
		}
	}
	admin.until("alice's last execution (admin)", finished(end))
	if len(ofKernels(admin.got, kb)) == 0 || !slices.ContainsFunc(admin.got, finished(xb)) {
		t.Fatalf("the admin's /ws lacks bob's kernel's events")
	}

	// Resumed from the start: the same filter.
	resumed := dialWS(t, ps.hostPort, "since=0", ps.tokens["alice"])
	resumed.until("alice's last execution (resumed)", finished(end))
	if foreign := ofKernels(resumed.got, kb, kc); len(foreign) > 0 {
		t.Fatalf("alice's resumed /ws carried %d events of bob's kernels, first %v", len(foreign), foreign[0])
	}
	onB := dialWS(t, ps.hostPort, "since=0&kernel="+kb, ps.tokens["alice"])

	// /assets: bob's image is not found for alice, word for word as an
	// asset never stored; bob and the admin get it.
	sc := must(t, ps.clients["bob"], "list_assets", map[string]any{"execution_id": xb})
	assets, _ := sc["assets"].([]any)
	if len(assets) != 1 {
		t.Fatalf("bob's execution stored %d assets, want 1: %v", len(assets), sc)
	}
	path := assets[0].(map[string]any)["http_path"].(string)
	sum := strings.TrimPrefix(path, "/assets/")
	if code, body := httpGet(t, ps.hostPort, path, ps.tokens["bob"]); code != 200 || body != "<i>bob-secret</i>" {
		t.Fatalf("bob GET %s: %d %q", path, code, body)
	}
	if code, _ := httpGet(t, ps.hostPort, path, ps.tokens["admin"]); code != 200 {
		t.Fatalf("admin GET %s: %d", path, code)
	}
	never := strings.Repeat("0", 64)
	codeA, bodyA := httpGet(t, ps.hostPort, path, ps.tokens["alice"])
	codeN, bodyN := httpGet(t, ps.hostPort, "/assets/"+never, ps.tokens["alice"])
	if codeA != 404 || codeN != 404 || bodyA != strings.ReplaceAll(bodyN, never, sum) {
		t.Fatalf("alice GET bob's asset: %d %q; a never-stored one: %d %q (want the same 404)", codeA, bodyA, codeN, bodyN)
	}

	// Over MCP too: resources/read of bob's asset reads as an unknown one,
	// and alice's list_assets does not show it.
	readAsset := func(s string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var rr mcp.ReadResourceRequest
		rr.Params.URI = mcpserver.AssetScheme + s
		res, err := ps.clients["alice"].ReadResource(ctx, rr)
		if err == nil {
			t.Fatalf("alice read asset %s over MCP: %+v", s, res.Contents)
		}
		return err.Error()
	}
	if got, want := readAsset(sum), strings.ReplaceAll(readAsset(never), never, sum); got != want {
		t.Fatalf("alice resources/read of bob's asset: %q, want as for a never-stored one %q", got, want)
	}
	if _, text := callTool(t, ps.clients["alice"], "list_assets", map[string]any{}); strings.Contains(text, sum) || strings.Contains(text, kb) {
		t.Fatalf("alice's list_assets shows bob's asset: %s", text)
	}

	// /events: none of bob's; /events/{seq} of one of his reads as a seq
	// the log does not hold.
	evs := eventsAPI(t, ps.hostPort, ps.tokens["alice"])
	if foreign := ofKernels(evs, kb, kc); len(foreign) > 0 {
		t.Fatalf("alice's /events carried %d events of bob's kernels, first %v", len(foreign), foreign[0])
	}
	if i := slices.IndexFunc(evs, finished(end)); i < 0 || evs[i].Principal != "alice" {
		t.Fatalf("alice's /events lacks her own execution, or its principal (%v)", i)
	}
	bobs := ofKernels(eventsAPI(t, ps.hostPort, ps.tokens["admin"]), kb)
	if len(bobs) == 0 {
		t.Fatal("the admin's /events lacks bob's kernel")
	}
	seq := strconv.FormatUint(bobs[0].Seq, 10)
	code, body := httpGet(t, ps.hostPort, "/events/"+seq, ps.tokens["alice"])
	codeU, bodyU := httpGet(t, ps.hostPort, "/events/999999999", ps.tokens["alice"])
	if code != 404 || codeU != 404 || body != strings.ReplaceAll(bodyU, "999999999", seq) {
		t.Fatalf("alice GET /events/%s (bob's): %d %q; an unknown seq: %d %q (want the same 404)", seq, code, body, codeU, bodyU)
	}
	if !strings.Contains(body, "not visible to you") || strings.Contains(body, "the log holds") {
		t.Fatalf("alice GET /events/%s: %q, want 'not found, or not visible to you' without the log's bounds (which hold it)", seq, body)
	}
	// The bounds are the whole log's, for the CLI to page by (documented).
	if code, body := httpGet(t, ps.hostPort, "/events/bounds", ps.tokens["alice"]); code != 200 || !strings.Contains(body, `"last"`) {
		t.Fatalf("alice GET /events/bounds: %d %q", code, body)
	}

	// bob shares kb (not kc) with alice: kb's events flow to her from the
	// share on, kc's do not.
	must(t, ps.clients["bob"], "share_kernel", map[string]any{"kernel": kb, "principal": "alice", "access": "read"})
	xs := executeOK(t, ps, "bob", kb, "print('shared-out')")
	executeOK(t, ps, "bob", kc, "print('still-private')")
	end2 := executeOK(t, ps, "alice", ka, "print('alice-end-2')")
	alice.until("alice's second last execution", finished(end2))
	if !slices.ContainsFunc(alice.got, finished(xs)) {
		t.Fatalf("after the share, alice's /ws lacks bob's execution %s on %s", xs, kb)
	}
	if foreign := ofKernels(alice.got, kc); len(foreign) > 0 {
		t.Fatalf("alice's /ws carried %d events of bob's unshared kernel, first %v", len(foreign), foreign[0])
	}
	onB.until("bob's shared execution on alice's kernel-filtered stream", finished(xs))
	if code, body := httpGet(t, ps.hostPort, path, ps.tokens["alice"]); code != 200 || body != "<i>bob-secret</i>" {
		t.Fatalf("alice GET %s of the kernel bob shared with her: %d %q", path, code, body)
	}
	if len(ofKernels(evs2(t, ps), kb)) == 0 {
		t.Fatal("after the share, alice's /events lacks the shared kernel")
	}

	// Withdrawn: kb's next events do not reach her.
	must(t, ps.clients["bob"], "share_kernel", map[string]any{"kernel": kb, "principal": "alice", "access": "none"})
	n := len(alice.got)
	xp := executeOK(t, ps, "bob", kb, "print('private-again')")
	end3 := executeOK(t, ps, "alice", ka, "print('alice-end-3')")
	alice.until("alice's third last execution", finished(end3))
	if foreign := ofKernels(alice.got[n:], kb, kc); len(foreign) > 0 {
		t.Fatalf("after the withdrawal, alice's /ws carried %d events of bob's kernels, first %v", len(foreign), foreign[0])
	}
	// ... nor /events, nor /assets: the asset of kb she read while shared
	// is not found again, word for word as one never stored.
	after := evs2(t, ps)
	if !slices.ContainsFunc(after, finished(end3)) {
		t.Fatal("alice's /events lacks her own last execution")
	}
	if i := slices.IndexFunc(after, func(e edgeEvent) bool { return strings.Contains(string(e.Payload), xp) }); i >= 0 {
		t.Fatalf("after the withdrawal, alice's /events carried bob's execution: %v", after[i])
	}
	codeW, bodyW := httpGet(t, ps.hostPort, path, ps.tokens["alice"])
	if codeW != 404 || bodyW != strings.ReplaceAll(bodyN, never, sum) {
		t.Fatalf("after the withdrawal, alice GET %s: %d %q, want the 404 of a never-stored asset", path, codeW, bodyW)
	}
}

func evs2(t testing.TB, ps *principalsServer) []edgeEvent {
	return eventsAPI(t, ps.hostPort, ps.tokens["alice"])
}

// TestRevokeClosesWebSocket: `mcp-jupyter principal revoke alice` on the
// data dir of the running server closes alice's open /ws at once with
// 4001 and a reason naming the revocation; bob's stays open.
func TestRevokeClosesWebSocket(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := dialWS(t, ps.hostPort, "", ps.tokens["alice"])
	bob := dialWS(t, ps.hostPort, "", ps.tokens["bob"])
	testkit.WaitUntil(t, 10*time.Second, "both /ws clients joined", func() (bool, string) {
		n := ps.c.live.hub.Clients()
		return n == 2, strconv.Itoa(n) + " clients"
	})
	if out, err := principalCLI(t, ps.dataDir, "revoke", "alice"); err != nil {
		t.Fatalf("principal revoke alice: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := alice.conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.CloseTokenRevoked || !strings.Contains(ce.Reason, "revoked") {
		t.Fatalf("alice's /ws after revoke: %v, want close %d naming the revocation within 5 s", err, ws.CloseTokenRevoked)
	}
	kb := startKernelTool(t, ps.clients["bob"])
	bob.until("bob's kernel start", func(e edgeEvent) bool { return e.Kernel == kb && e.Type == "KernelStarted" })
}

// TestAssetReadableByItsLastProducer: alice's kernel displays the same
// bytes 33 times (33 origins: the leases read model keeps 32), then bob's
// kernel displays them once. Bob made them: he reads them at /assets and
// sees them in list_assets; carol, who made nothing, gets the 404.
func TestAssetReadableByItsLastProducer(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes, "carol": auth.DefaultScopes})
	ka := startKernelTool(t, ps.clients["alice"])
	kb := startKernelTool(t, ps.clients["bob"])
	const show = "from IPython.display import HTML, display\n"
	executeOK(t, ps, "alice", ka, show+"for _ in range(33): display(HTML('<b>same-bytes</b>'))")
	xb := executeOK(t, ps, "bob", kb, show+"display(HTML('<b>same-bytes</b>'))")
	sc := must(t, ps.clients["bob"], "list_assets", map[string]any{"kernel": kb})
	assets, _ := sc["assets"].([]any)
	if len(assets) != 1 {
		t.Fatalf("bob's list_assets on his kernel: %d assets, want the one his execution %s stored: %v", len(assets), xb, sc)
	}
	path := assets[0].(map[string]any)["http_path"].(string)
	if code, body := httpGet(t, ps.hostPort, path, ps.tokens["bob"]); code != 200 || body != "<b>same-bytes</b>" {
		t.Fatalf("bob GET %s (his kernel stored it, past the first 32 origins): %d %q", path, code, body)
	}
	if code, _ := httpGet(t, ps.hostPort, path, ps.tokens["carol"]); code != 404 {
		t.Fatalf("carol GET %s: %d, want 404", path, code)
	}
}
