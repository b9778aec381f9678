package mcpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// addWhoami registers a tool that answers the principal its handler's
// context carries, or "none".
func addWhoami(s *Server) {
	s.MCP().AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return mcp.NewToolResultText("none"), nil
		}
		return mcp.NewToolResultText(p.Name + " " + p.Scopes.String()), nil
	})
}

func whoami(t *testing.T, c *client.Client) string {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name = "whoami"
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("call whoami: %v", err)
	}
	return res.Content[0].(mcp.TextContent).Text
}

// TestToolHandlersSeeThePrincipal: over the real Streamable HTTP transport,
// a tool handler reads the principal of the token the client sent — a
// principal of the principals file, or the admin for the data dir's token.
func TestToolHandlersSeeThePrincipal(t *testing.T) {
	dir := t.TempDir()
	alice, err := auth.Store{Dir: dir}.Add("alice", auth.ScopeRead|auth.ScopeExecute, 0)
	if err != nil {
		t.Fatal(err)
	}
	const admin = "admin-token-0123456789abcdef"
	d, err := auth.OpenTokenDirectory(auth.DirectoryOptions{DataDir: dir, AdminToken: admin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s := New(newFakeBackend(), Options{Auth: auth.Chain{d}})
	addWhoami(s)
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.HTTPHandler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	connect := func(token string) (*client.Client, error) {
		c, err := client.NewStreamableHttpClient(ts.URL+"/mcp",
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Start(context.Background()); err != nil {
			return nil, err
		}
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
		_, err = c.Initialize(context.Background(), init)
		return c, err
	}
	ca, err := connect(alice)
	if err != nil {
		t.Fatalf("connect as alice: %v", err)
	}
	if got := whoami(t, ca); got != "alice read,execute" {
		t.Errorf("alice's tool call ran as %q", got)
	}
	cadm, err := connect(admin)
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	if got := whoami(t, cadm); got != "admin admin" {
		t.Errorf("the admin token's tool call ran as %q", got)
	}
	for _, tok := range []string{"wrong-token", alice + "x", "a.b.c"} {
		req, _ := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(body), "wrong") {
			t.Errorf("token %q: %d %q (WWW-Authenticate %q), want 401 saying the token is wrong", tok, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestStdioToolHandlersRunAsAdmin: the stdio client is the local user who
// started the server.
func TestStdioToolHandlersRunAsAdmin(t *testing.T) {
	s := New(newFakeBackend(), Options{})
	addWhoami(s)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.ServeStdio(ctx, inR, outW); outW.Close() }()
	c := client.NewClient(transport.NewIO(outR, inW, io.NopCloser(strings.NewReader(""))))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	if got := whoami(t, c); got != "admin admin" {
		t.Errorf("a stdio tool call ran as %q, want the admin", got)
	}
	inW.Close()
	cancel()
	<-served
	c.Close()
}

// TestGuardQueryTokenCarriesThePrincipal: a browser's ?token= (a principal
// of the file) authenticates like the header, and the handler behind sees
// that principal.
func TestGuardQueryTokenCarriesThePrincipal(t *testing.T) {
	dir := t.TempDir()
	tok, err := auth.Store{Dir: dir}.Add("carol", auth.ScopeRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := auth.OpenTokenDirectory(auth.DirectoryOptions{DataDir: dir, AdminToken: "admin-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := Guard{Auth: auth.Chain{d}, QueryToken: true}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			io.WriteString(w, "none")
			return
		}
		io.WriteString(w, p.Name)
	}))
	for _, c := range []struct {
		query string
		code  int
		body  string
	}{
		{"?token=" + tok, 200, "carol"},
		{"?token=admin-token-0123456789", 200, "admin"},
		{"?token=nope", 401, "wrong"},
		{"", 401, "Authorization: Bearer"},
	} {
		r := httptest.NewRequest("GET", "/ws"+c.query, nil)
		r.Host = "127.0.0.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("%q: %d %q, want %d %q", c.query, w.Code, w.Body.String(), c.code, c.body)
		}
	}
}

// TestRevokeEndsRunningRequests: a request in flight (a listening GET, a
// long wait) when its principal is revoked ends at once, its context
// saying why.
func TestRevokeEndsRunningRequests(t *testing.T) {
	dir := t.TempDir()
	store := auth.Store{Dir: dir}
	tok, err := store.Add("dave", auth.ScopeRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := auth.OpenTokenDirectory(auth.DirectoryOptions{DataDir: dir, AdminToken: "admin-token-0123456789", PollEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	started := make(chan string, 2)
	ended := make(chan error, 2)
	h := Guard{Auth: auth.Chain{d}, EndOnRevoke: true}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		started <- p.Name
		select {
		case <-r.Context().Done():
			ended <- context.Cause(r.Context())
		case <-time.After(20 * time.Second):
			ended <- nil
		}
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	get := func(tok string) {
		req, _ := http.NewRequest("GET", ts.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	go get(tok)
	if name := <-started; name != "dave" {
		t.Fatalf("ran as %q", name)
	}
	if err := store.Revoke("dave"); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-ended:
		if !errors.Is(cause, ErrCredentialsRevoked) {
			t.Fatalf("the request ended with %v, want ErrCredentialsRevoked", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dave's running request outlived the revocation")
	}
}
