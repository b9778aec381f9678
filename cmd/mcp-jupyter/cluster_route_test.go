package main

import (
	"strings"
	"sync"
	"testing"
	"time"

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
