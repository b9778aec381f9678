package mcpserver

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// asAdmin is ctx carrying the admin, as stdio and the data dir's token do:
// an in-process client has no edge to put a principal there.
func asAdmin(ctx context.Context) context.Context { return auth.WithPrincipal(ctx, auth.Admin()) }

// noBackends satisfies the optional tool groups' backends, so a test can
// register every tool; it is never called.
type noBackends struct{}

func (noBackends) ResolveKernel(context.Context, string) (string, error) { return "", nil }
func (noBackends) SaveEnvironment(context.Context, SaveEnvironmentRequest) (CheckpointReply, error) {
	return CheckpointReply{}, nil
}
func (noBackends) LoadEnvironment(context.Context, LoadEnvironmentRequest) (CheckpointReply, error) {
	return CheckpointReply{}, nil
}
func (noBackends) Checkpoints(context.Context) (CheckpointReply, error) {
	return CheckpointReply{}, nil
}
func (noBackends) DeleteCheckpoint(context.Context, string) (CheckpointReply, error) {
	return CheckpointReply{}, nil
}
func (noBackends) ReadNotebook(context.Context, string) (NotebookRead, error) {
	return NotebookRead{}, nil
}
func (noBackends) ChangeNotebook(context.Context, NotebookChange) (NotebookChanged, error) {
	return NotebookChanged{}, nil
}
func (noBackends) CellsToRun(context.Context, string, string) ([]CellRun, error) { return nil, nil }
func (noBackends) ListAssets(context.Context, string, string) ([]AssetInfo, error) {
	return nil, nil
}

// everyTool is a server with every tool group registered, as serve wires it.
func everyTool(b Backend) *Server {
	s := New(b, Options{})
	s.AddAssetTools(noBackends{})
	s.AddCheckpointTools(noBackends{})
	s.AddNotebookTools(noBackends{})
	return s
}

// TestEveryToolHasAScope fails when a tool is added without an entry in
// toolScopes (it would be refused to everyone but admins), or an entry
// names a tool that no longer exists.
func TestEveryToolHasAScope(t *testing.T) {
	s := everyTool(newFakeBackend())
	registered := s.MCP().ListTools()
	if len(registered) < 2 {
		t.Fatalf("%d tools registered: listableTools relies on a full list holding more than one", len(registered))
	}
	for name := range registered {
		if _, ok := toolScopes[name]; !ok {
			t.Errorf("tool %q has no entry in toolScopes (infra/mcpserver/scopes.go): decide which scope it needs and document it in docs/identity.md (MCP tools section)", name)
		}
	}
	for name := range toolScopes {
		if _, ok := registered[name]; !ok {
			t.Errorf("toolScopes names %q, which is not a registered tool", name)
		}
	}
}

// listedTools is what tools/list shows to ctx's caller.
func listedTools(t *testing.T, ctx context.Context, s *Server) []string {
	t.Helper()
	c := startClientOn(t, s)
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	return names
}

func TestToolsListShowsOnlyWhatTheScopesAllow(t *testing.T) {
	s := everyTool(newFakeBackend())
	reader := auth.WithPrincipal(context.Background(), auth.Principal{Name: "viewer", Scopes: auth.ScopeRead})
	got := listedTools(t, reader, s)
	var want []string
	for name, sc := range toolScopes {
		if sc == auth.ScopeRead {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("a read-only principal is listed %v, want exactly the read tools %v", got, want)
	}
	for _, hidden := range []string{"execute", "start_kernel", "shutdown_kernel", "share_kernel"} {
		if slices.Contains(got, hidden) {
			t.Errorf("%s listed to a read-only principal", hidden)
		}
	}
	admin := listedTools(t, auth.WithPrincipal(context.Background(), auth.Admin()), s)
	if len(admin) != len(toolScopes) {
		t.Fatalf("admin is listed %d tools, want all %d", len(admin), len(toolScopes))
	}
}

func startClientOn(t *testing.T, s *Server) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	return c
}

func callAs(t *testing.T, ctx context.Context, c *client.Client, name string, args any) *mcp.CallToolResult {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error (the server should answer with isError): %v", name, err)
	}
	return res
}

// TestCallingAToolOutsideTheScopesIsRefused: a hidden tool called anyway is
// refused before its handler runs, with a tool error naming the scope.
func TestCallingAToolOutsideTheScopesIsRefused(t *testing.T) {
	b := newFakeBackend()
	c := startClientOn(t, everyTool(b))
	reader := auth.WithPrincipal(context.Background(), auth.Principal{Name: "viewer", Scopes: auth.ScopeRead})
	wantError(t, callAs(t, reader, c, "execute", map[string]any{"kernel": "k1", "code": "1+1"}),
		`execute: refused: this tool needs the execute scope, and principal "viewer" has read.`, "--scopes read,execute")
	wantError(t, callAs(t, reader, c, "start_kernel", map[string]any{}), "needs the execute scope")
	worker := auth.WithPrincipal(context.Background(), auth.Principal{Name: "w", Scopes: auth.ScopeRead | auth.ScopeExecute})
	wantError(t, callAs(t, worker, c, "shutdown_kernel", map[string]any{"kernel": "k1"}), "needs the manage scope")
	b.mu.Lock()
	n := len(b.execs)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("a refused execute reached the backend: %d executions", n)
	}
	wantOK(t, callAs(t, reader, c, "list_kernels", map[string]any{}), "k1")
	wantOK(t, callAs(t, worker, c, "execute", map[string]any{"kernel": "k1", "code": "1+1"}))
}

// TestCallWithoutPrincipalIsRefused: an edge that forgot to authenticate
// gets nothing (no default principal).
func TestCallWithoutPrincipalIsRefused(t *testing.T) {
	res := requireScope(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		t.Fatal("the handler ran without a principal")
		return nil, nil
	})
	var req mcp.CallToolRequest
	req.Params.Name = "list_kernels"
	r, err := res(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, "no authenticated principal")
	if got := listableTools(context.Background(), []mcp.Tool{{Name: "a"}, {Name: "b"}}); len(got) != 0 {
		t.Fatalf("tools listed to a caller without principal: %v", got)
	}
}
