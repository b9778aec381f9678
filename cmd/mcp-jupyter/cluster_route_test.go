package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// routedOwnership is real kernel ownership (natsbus.Owners, one
// JetStream server in process) for nodes that route over the same server.
type routedOwnership struct {
	t    testing.TB
	nb   *natsbus.Server
	mine map[string]*natsbus.Owners
}

func newRoutedOwnership(t testing.TB) *routedOwnership {
	t.Helper()
	nb, err := natsbus.Open(natsbus.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nb.Close(context.Background()) })
	return &routedOwnership{t: t, nb: nb, mine: map[string]*natsbus.Owners{}}
}

// node opens node's Owners (once).
func (o *routedOwnership) node(node string) *natsbus.Owners {
	o.t.Helper()
	if own, ok := o.mine[node]; ok {
		return own
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	own, err := o.nb.OpenOwners(ctx, node, natsbus.OwnersOptions{Lease: 10 * time.Second, Replicas: 1})
	if err == nil {
		err = own.Start(ctx)
	}
	if err != nil {
		o.t.Fatalf("owners of %s: %v", node, err)
	}
	o.t.Cleanup(func() { _ = own.Close(context.Background()) })
	o.mine[node] = own
	return own
}

// claim makes node own kernel, and waits until every open Owners sees it.
func (o *routedOwnership) claim(node, kernel string) {
	o.t.Helper()
	if _, err := o.node(node).Claim(context.Background(), kernel); err != nil {
		o.t.Fatal(err)
	}
	for name, own := range o.mine {
		testkit.WaitUntil(o.t, 10*time.Second, name+" sees "+node+" own "+kernel, func() (bool, string) {
			l, ok := own.Owner(kernel)
			return ok && l.Node == node, fmt.Sprintf("%+v %v", l, ok)
		})
	}
}

// route opens c's routing as node, its owners this ownership's.
func (o *routedOwnership) route(c *core, node string) {
	o.t.Helper()
	own := o.node(node)
	ownerOf := func(k string) (string, bool) { l, ok := own.Owner(k); return l.Node, ok }
	if err := c.openRouting(o.nb, node, ownerOf, nil, 10*time.Second); err != nil {
		o.t.Fatal(err)
	}
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
	// NB: both nodes route over one NATS server: the routing's NATS path
	// across a cluster's routes is natsbus's test (TestRoutedToolCallCarriesThePrincipal).
	owners := newRoutedOwnership(t)
	owners.route(a.c, "a")
	owners.route(b.c, "b")
	sc := must(t, a.clients["alice"], "start_kernel", map[string]any{})
	k := sc["kernel_id"].(string)
	owners.claim("a", k)

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
	owners.claim("c", "k-elsewhere") // node c: no router answers for it
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
	owners := newRoutedOwnership(t)
	owners.route(a.c, "a")
	owners.route(b.c, "b")
	k := must(t, a.clients["alice"], "start_kernel", map[string]any{})["kernel_id"].(string)
	owners.claim("a", k)
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
	owners.claim("c", "01jzzzzzzzzzzzzzzzzzzzzzzz")
	code, body = get(b.hostPort, "/api/kernels/01jzzzzzzzzzzzzzzzzzzzzzzz", b.tokens["alice"])
	if code != http.StatusBadGateway || !strings.Contains(body, "node c") || !strings.Contains(body, "cannot be reached from node b") {
		t.Fatalf("unreachable owner: %d %s", code, body)
	}
}
