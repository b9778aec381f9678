package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const oidcTestAudience = "mcp-jupyter-e2e"

// oidcServer is a real server (the core, its HTTP handler) started with
// --oidc-issuer pointing at an issuer of the test's own on loopback.
func oidcServer(t *testing.T) (*testkit.OIDCIssuer, *httptest.Server) {
	t.Helper()
	iss := testkit.StartOIDCIssuer(t)
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	dir := testkit.TempDataDir(t)
	cfg, err := parseConfig("serve", []string{"--data-dir", dir, "--addr", "127.0.0.1:0",
		"--oidc-issuer", iss.URL, "--oidc-audience", oidcTestAudience})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, dir) })
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	return iss, ts
}

// initializeWith posts an MCP initialize with tok and returns the answer.
func initializeWith(t *testing.T, url, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+pathMCP, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestOIDCOnRealServer: mcp-go's client carrying a read-only JWT from the
// test's issuer lists kernels over Streamable HTTP; an expired one gets
// 401 with the challenge that sends MCP clients to the metadata, which
// the server serves without a token; a token holding none of our scopes
// gets 403 insufficient_scope, and /events asks for read.
func TestOIDCOnRealServer(t *testing.T) {
	iss, ts := oidcServer(t)
	meta := ts.URL + "/.well-known/oauth-protected-resource/mcp"

	reader := iss.Token(t, iss.Claims("reader@example.com", oidcTestAudience, "openid read", time.Hour))
	agent := httpMCPClient(t, ts.URL, reader)
	sc, text := callTool(t, agent, "list_kernels", map[string]any{})
	if strings.HasPrefix(text, "ERROR") || sc == nil {
		t.Fatalf("list_kernels with a read JWT: %v %s", sc, text)
	}

	expired := iss.Claims("reader@example.com", oidcTestAudience, "read", time.Hour)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	resp := initializeWith(t, ts.URL, iss.Token(t, expired))
	h := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(h, `resource_metadata="`+meta+`"`) ||
		!strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, "expired") {
		t.Fatalf("expired JWT: %d, WWW-Authenticate %q", resp.StatusCode, h)
	}

	res, err := http.Get(meta)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || doc.Resource != ts.URL+pathMCP || len(doc.AuthorizationServers) != 1 ||
		doc.AuthorizationServers[0] != iss.URL || strings.Join(doc.ScopesSupported, ",") != "read,execute,manage,admin" {
		t.Fatalf("metadata: %d %+v %v", res.StatusCode, doc, err)
	}

	none := iss.Token(t, iss.Claims("nobody", oidcTestAudience, "openid profile", time.Hour))
	resp = initializeWith(t, ts.URL, none)
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="read"`) {
		t.Fatalf("no scope of ours: %d %q", resp.StatusCode, h)
	}
	executor := iss.Token(t, iss.Claims("runner", oidcTestAudience, "execute", time.Hour))
	req, _ := http.NewRequest("GET", ts.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+executor)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if h := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusForbidden || !strings.Contains(h, `scope="read"`) {
		t.Fatalf("/events with an execute-only JWT: %d %q", res.StatusCode, h)
	}
}

// TestOIDCIssuerDownServerStarts: the server starts with its issuer down;
// a JWT gets 503 saying so, and works once the issuer answers.
func TestOIDCIssuerDownServerStarts(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	iss.SetDown(true)
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	cfg, err := parseConfig("serve", []string{"--data-dir", testkit.TempDataDir(t), "--oidc-issuer", iss.URL, "--oidc-audience", oidcTestAudience})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the server refused to start with its issuer down: %v", err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	tok := iss.Token(t, iss.Claims("u", oidcTestAudience, "read", time.Hour))
	testkit.WaitUntil(t, 30*time.Second, "the start's discovery attempt failed", func() (bool, string) {
		return iss.Discoveries() > 0, "no discovery yet"
	})
	if resp := initializeWith(t, ts.URL, tok); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("issuer down: %d, want 503", resp.StatusCode)
	}
	iss.SetDown(false)
	// NB: retried at most every 5 s (auth.OIDCConfig.RetryEvery).
	testkit.WaitUntil(t, 30*time.Second, "the JWT accepted once the issuer answers", func() (bool, string) {
		resp := initializeWith(t, ts.URL, tok)
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

func TestOIDCFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--oidc-issuer", "https://idp.example"}, "--oidc-audience is required"},
		{[]string{"--oidc-issuer", "http://idp.example", "--oidc-audience", "a"}, "https"},
		{[]string{"--oidc-audience", "a"}, "need --oidc-issuer"},
		{[]string{"--oidc-issuer", "https://idp.example", "--oidc-audience", "a", "--oidc-resource", "/mcp"}, "--oidc-resource"},
	} {
		_, err := parseConfig("serve", append([]string{"--data-dir", t.TempDir()}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestDoctorOAuth: doctor's oauth line says the issuer answers with its
// keys, and fails saying what to check when it does not.
func TestDoctorOAuth(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	cfg := config{OIDCIssuer: iss.URL, OIDCAudience: oidcTestAudience}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f := checkOAuth(ctx, cfg); !f.OK || !strings.Contains(f.Detail, "1 signing key") {
		t.Errorf("issuer up: %v", f)
	}
	iss.SetDown(true)
	if f := checkOAuth(ctx, cfg); f.OK || !strings.Contains(f.Detail, "cannot be reached") || !strings.Contains(f.Fix, "iss") {
		t.Errorf("issuer down: %v", f)
	}
	if f := checkOAuth(ctx, config{}); !f.OK || !strings.Contains(f.Detail, "off") {
		t.Errorf("no issuer: %v", f)
	}
}

// TestOIDCStreamsEndAtTokenExpiry: an OAuth access token's /ws stream is
// closed with 4001 "token expired" at the token's exp, and its /events
// follower ends then too: neither outlives the token.
func TestOIDCStreamsEndAtTokenExpiry(t *testing.T) {
	iss, ts := oidcServer(t)
	hostPort := strings.TrimPrefix(ts.URL, "http://")
	claims := iss.Claims("short@example.com", oidcTestAudience, "read", 3*time.Second)
	tok := iss.Token(t, claims)
	exp := time.Unix(claims["exp"].(int64), 0)

	conn := dialWS(t, hostPort, "", tok).conn
	req, _ := http.NewRequest("GET", ts.URL+"/events?since=0&follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /events follow with the JWT: %d", resp.StatusCode)
	}
	followDone := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); followDone <- err }()

	for {
		_, _, err := conn.Read(ctx)
		if err == nil {
			continue // events of the server's start
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != ws.CloseTokenRevoked || !strings.Contains(ce.Reason, "expired") {
			t.Fatalf("/ws of a JWT expiring at %s: %v, want close %d naming the expiry", exp.Format(time.RFC3339), err, ws.CloseTokenRevoked)
		}
		if time.Now().Before(exp.Add(-time.Second)) {
			t.Fatalf("/ws closed at %s, before the token's exp %s", time.Now().Format(time.RFC3339), exp.Format(time.RFC3339))
		}
		break
	}
	select {
	case <-followDone:
	case <-ctx.Done():
		t.Fatalf("the /events follower of a JWT that expired at %s is still open", exp.Format(time.RFC3339))
	}
}
