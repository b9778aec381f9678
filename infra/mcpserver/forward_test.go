package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// ownerForwarder sends calls for kernel k1 to owner (what cmd/mcp-jupyter
// does over NATS, here in process) and records what it saw.
type ownerForwarder struct {
	owner *Server
	mu    sync.Mutex
	seen  []ForwardCall
}

func (f *ownerForwarder) Forward(ctx context.Context, call ForwardCall) (json.RawMessage, bool, error) {
	f.mu.Lock()
	f.seen = append(f.seen, call)
	f.mu.Unlock()
	if call.Args["kernel"] != "k1" {
		return nil, false, nil
	}
	params, client, err := call.Encode()
	if err != nil {
		return nil, false, err
	}
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	res, err := f.owner.CallLocal(ctx, p, call.Tool, params, client)
	return res, true, err
}

func TestForwardedCallRunsOnTheOwner(t *testing.T) {
	ownerBackend := newFakeBackend()
	owner := New(ownerBackend, Options{})
	entryBackend := newFakeBackend()
	delete(entryBackend.kernels, "k1") // the entry node does not run k1
	f := &ownerForwarder{owner: owner}
	c := startClient(t, entryBackend, Options{Forward: f})

	// kernel_id is an alias: the forwarder sees the documented name.
	text := wantOK(t, call(t, c, "execute", map[string]any{"kernel_id": "k1", "code": "print('routed')"}), "print('routed')")
	ownerBackend.mu.Lock()
	ran := len(ownerBackend.execs)
	ownerBackend.mu.Unlock()
	entryBackend.mu.Lock()
	ranHere := len(entryBackend.execs)
	entryBackend.mu.Unlock()
	if ran != 1 || ranHere != 0 {
		t.Fatalf("executions: %d on the owner, %d on the entry node; want 1 and 0 (%s)", ran, ranHere, text)
	}
	// Not forwarded: runs here (the entry node has no k2).
	wantError(t, call(t, c, "execute", map[string]any{"kernel": "k2", "code": "1"}), "k2")
	f.mu.Lock()
	if len(f.seen) != 2 || f.seen[0].Args["kernel"] != "k1" || f.seen[0].Tool != "execute" {
		t.Errorf("forwarder saw %+v", f.seen)
	}
	f.mu.Unlock()
	// A bad argument is refused here, before any forwarding.
	wantError(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "1", "bogus": 1}), "bogus")
	f.mu.Lock()
	if len(f.seen) != 2 {
		t.Errorf("a call with a bad argument reached the forwarder")
	}
	f.mu.Unlock()
}

func TestCallLocalChecksWhatArrives(t *testing.T) {
	s := New(newFakeBackend(), Options{})
	ctx := context.Background()
	reader := auth.Principal{Name: "rita", Scopes: auth.ScopeRead}
	params := json.RawMessage(`{"name":"execute","arguments":{"kernel":"k1","code":"1"}}`)
	// The scope holds on the owner too.
	res, err := s.CallLocal(ctx, reader, "execute", params, nil)
	if err != nil || !strings.Contains(string(res), "needs the execute scope") || !strings.Contains(string(res), `"isError":true`) {
		t.Fatalf("a read-only principal's routed execute: %s %v", res, err)
	}
	if _, err := s.CallLocal(ctx, auth.Admin(), "shutdown_kernel", params, nil); err == nil {
		t.Fatal("params of execute accepted as a shutdown_kernel call")
	}
	if _, err := s.CallLocal(ctx, auth.Admin(), "no_such_tool", json.RawMessage(`{"name":"no_such_tool"}`), nil); err == nil {
		t.Fatal("an unknown tool was run")
	}
	// The entry node's client decides what the owner may ask it.
	ctx2 := context.WithValue(ctx, routedClientKey{}, routedClient{CanAsk: true, By: "claude/s1"})
	if !canAsk(ctx2) || by(ctx2) != "claude/s1" {
		t.Fatal("the routed client's capabilities are not the ones the owner sees")
	}
	res, err = s.CallLocal(ctx, auth.Admin(), "execute", params, json.RawMessage(`{"can_ask":true}`))
	if err != nil || strings.Contains(string(res), `"isError":true`) {
		t.Fatalf("the admin's routed execute: %s %v", res, err)
	}
}
