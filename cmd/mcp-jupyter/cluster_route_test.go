package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// staticOwners is the ownership as this test sets it (the leases are
// natsbus.Owners' and tested there): kernel → node.
type staticOwners struct {
	mu sync.Mutex
	m  map[string]string
}

func (o *staticOwners) set(kernel, node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[kernel] = node
}

func (o *staticOwners) owner(kernel string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.m[kernel]
	return n, ok
}

// TestToolCallRoutedToTheOwnerRunsAsTheSamePrincipal: two real servers,
// node a owning alice's kernel; alice's and bob's calls reach node b. What
// b forwards runs on a, as the caller: alice's code runs in her kernel
// there, bob is refused exactly as a refuses him itself, a share given
// through b lets him in; a call for a node nobody answers for says which
// node and that nothing ran.
func TestToolCallRoutedToTheOwnerRunsAsTheSamePrincipal(t *testing.T) {
	scopes := map[string]auth.Scope{"alice": auth.ScopeRead | auth.ScopeExecute | auth.ScopeManage, "bob": auth.ScopeRead | auth.ScopeExecute}
	a, b := openPrincipalsServer(t, scopes), openPrincipalsServer(t, scopes)
	owners := &staticOwners{m: map[string]string{}}
	// NB: both routers on node a's NATS server: the routing's NATS path
	// across a cluster's routes is natsbus's test (TestRoutedToolCallCarriesThePrincipal).
	if err := a.c.openRouting(a.c.nats, "a", owners.owner, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.c.openRouting(a.c.nats, "b", owners.owner, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	sc := must(t, a.clients["alice"], "start_kernel", map[string]any{})
	k := sc["kernel_id"].(string)
	owners.set(k, "a")

	// Alice through b: runs in her kernel on a.
	sc = mustExecute(t, b.clients["alice"], k, "x = 41\nprint('set')")
	x := sc["execution_id"].(string)
	if _, ok := a.c.execs.Get(x); !ok {
		t.Fatalf("execution %s is not in node a's history: it did not run there", x)
	}
	if _, ok := b.c.execs.Get(x); ok {
		t.Fatalf("execution %s ran on node b", x)
	}
	if _, text := callTool(t, a.clients["alice"], "execute", map[string]any{"kernel": k, "code": "print(x + 1)"}); !strings.Contains(text, "42") {
		t.Fatalf("on node a, alice's kernel does not hold what b ran: %s", text)
	}
	// Bob through b: refused as a refuses him.
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"execute", map[string]any{"kernel": k, "code": "print('bob was here')"}},
		{"interrupt_kernel", map[string]any{"kernel": k}},
	} {
		onB, onA := errorText(t, b.clients["bob"], tc.tool, tc.args), errorText(t, a.clients["bob"], tc.tool, tc.args)
		if !strings.HasSuffix(onB, onA) {
			t.Errorf("%s by bob through b:\n got  %q\n want %q (as node a says)", tc.tool, onB, onA)
		}
	}
	// A share given through b holds on a.
	must(t, b.clients["alice"], "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "execute"})
	mustExecute(t, b.clients["bob"], k, "print('bob in')")
	// Scopes are checked where the call arrives, before anything is routed.
	if msg := errorText(t, b.clients["bob"], "restart_kernel", map[string]any{"kernel": k}); !strings.Contains(msg, "needs the manage scope") {
		t.Errorf("restart by bob: %s", msg)
	}

	// An owner nobody answers for.
	owners.set("k-elsewhere", "c")
	msg := errorText(t, b.clients["alice"], "execute", map[string]any{"kernel": "k-elsewhere", "code": "1"})
	for _, want := range []string{"node c", "cannot be reached from node b", "Nothing was run", "10s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("unreachable owner: %q lacks %q", msg, want)
		}
	}
	// Lists answer locally: b lists only its own kernels (with the shared
	// history it lists the cluster's).
	for _, id := range kernelIDs(t, b.clients["alice"]) {
		if id == k {
			t.Errorf("list_kernels on b was forwarded: it lists a's kernel %s", k)
		}
	}
}

// TestHTTPRoutedToTheOwner: the Jupyter API and the console's steering of
// a kernel node a owns, asked of node b, are answered by a through a
// tunnel (its channels WebSocket included), with a's access rules; a node
// nobody answers for is a 502 naming it.
func TestHTTPRoutedToTheOwner(t *testing.T) {
	scopes := map[string]auth.Scope{"alice": auth.ScopeRead | auth.ScopeExecute | auth.ScopeManage, "bob": auth.ScopeRead | auth.ScopeExecute}
	a, b := openPrincipalsServer(t, scopes), openPrincipalsServer(t, scopes)
	owners := &staticOwners{m: map[string]string{}}
	if err := a.c.openRouting(a.c.nats, "a", owners.owner, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.c.openRouting(a.c.nats, "b", owners.owner, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	k := must(t, a.clients["alice"], "start_kernel", map[string]any{})["kernel_id"].(string)
	owners.set(k, "a")
	uuid, _ := events.UUIDForm(k)
	get := func(host, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+host+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get(b.hostPort, "/api/kernels/"+uuid, b.tokens["alice"])
	if code != http.StatusOK || !strings.Contains(body, uuid) {
		t.Fatalf("GET /api/kernels/%s through b: %d %s", uuid, code, body)
	}
	codeB, bodyB := get(b.hostPort, "/api/kernels/"+uuid, b.tokens["bob"])
	codeA, bodyA := get(a.hostPort, "/api/kernels/"+uuid, a.tokens["bob"])
	if codeB != codeA || bodyB != bodyA || codeA == http.StatusOK {
		t.Fatalf("bob through b: %d %s; on a: %d %s", codeB, bodyB, codeA, bodyA)
	}
	// Without a credential nothing is routed.
	if code, _ := get(b.hostPort, "/api/kernels/"+uuid, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token through b: %d", code)
	}
	// The channels WebSocket through b runs code in a's kernel.
	f := dialFrontend(t, "http://"+b.hostPort, uuid, "sess-routed", b.tokens["alice"], true)
	id, got := f.execute("y = 6 * 7\ny")
	if res, ok := find(got, "iopub", "execute_result", id); !ok || !strings.Contains(string(res.Content), `"text/plain":"42"`) {
		t.Fatalf("no execute_result 42 through the routed channels:%s", describe(got))
	}
	if _, text := callTool(t, a.clients["alice"], "execute", map[string]any{"kernel": k, "code": "print(y)"}); !strings.Contains(text, "42") {
		t.Fatalf("the routed channels did not run in a's kernel: %s", text)
	}
	// Console steering through b.
	req, _ := http.NewRequest("POST", "http://"+b.hostPort+"/ui/api/kernels/"+k+"/interrupt", nil)
	req.Header.Set("Authorization", "Bearer "+b.tokens["alice"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	steer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("interrupt through b: %d %s", resp.StatusCode, steer)
	}
	// An owner nobody answers for.
	owners.set("01jzzzzzzzzzzzzzzzzzzzzzzz", "c")
	code, body = get(b.hostPort, "/api/kernels/01jzzzzzzzzzzzzzzzzzzzzzzz", b.tokens["alice"])
	if code != http.StatusBadGateway || !strings.Contains(body, "node c") || !strings.Contains(body, "cannot be reached from node b") {
		t.Fatalf("unreachable owner: %d %s", code, body)
	}
}
