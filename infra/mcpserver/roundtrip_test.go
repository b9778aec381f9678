package mcpserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TestRoundTripStateIsTheCallersOwn: a request state minted for one
// principal is refused to another with the same call (a token that saw it,
// a reader of a shared kernel), and accepted back from its own caller.
func TestRoundTripStateIsTheCallersOwn(t *testing.T) {
	s := New(newFakeBackend(), Options{})
	alice := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Scopes: auth.DefaultScopes})
	bob := auth.WithPrincipal(context.Background(), auth.Principal{Name: "bob", Scopes: auth.DefaultScopes})
	var req mcp.CallToolRequest
	req.Params.Name = "execute"
	req.Params.Arguments = map[string]any{"kernel": "k1", "code": "input()"}
	now := time.Now()
	req.Params.RequestState = s.sealRoundTrip(alice, roundTrip{Tool: "execute", Args: argsDigest(req), Execution: "x1"}, now)

	if _, _, err := s.openRoundTrip(bob, req, now); !errors.Is(err, ErrRoundTripCaller) {
		t.Fatalf("bob opened alice's state: err %v, want ErrRoundTripCaller", err)
	}
	rt, ok, err := s.openRoundTrip(alice, req, now)
	if err != nil || !ok || rt.Execution != "x1" {
		t.Fatalf("alice's own state: %+v ok=%v err=%v", rt, ok, err)
	}
}
