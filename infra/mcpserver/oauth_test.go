package mcpserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const oauthAudience = "https://jupyter.test/mcp"

// oauthServer is a guarded route and the metadata document, as the server
// mounts them: the data dir's token and OAuth in a chain, on loopback.
func oauthServer(t *testing.T, iss *testkit.OIDCIssuer, need auth.Scope) (*httptest.Server, *ResourceServer) {
	t.Helper()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: oauthAudience, RetryEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rs := &ResourceServer{Issuer: iss.URL, MCPPath: "/mcp"}
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		io.WriteString(w, p.Name+" "+p.Scopes.String())
	})
	// NB: the real directory (data dir token and principals file) first,
	// as the server chains them: it passes JWTs on.
	dir, err := auth.OpenTokenDirectory(auth.DirectoryOptions{DataDir: t.TempDir(), AdminToken: "admin-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Close() })
	mux.Handle("/mcp", Guard{Auth: auth.Chain{dir, o}, OAuth: rs, Need: need}.Wrap(ok))
	for _, p := range rs.MetadataPaths() {
		mux.Handle(p, rs.MetadataHandler())
	}
	ts := httptest.NewServer(HostCheck{}.Wrap(mux))
	t.Cleanup(ts.Close)
	return ts, rs
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// challengeParams parses `Bearer k="v", k="v"` into a map.
func challengeParams(t *testing.T, h string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("WWW-Authenticate %q is not a Bearer challenge", h)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)="([^"\\]*)"(?:, |$)`).FindAllStringSubmatch(strings.TrimPrefix(h, "Bearer "), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestOAuthChallenges: through the HTTP layer, each token the issuer
// would not stand behind is refused with 401 and a challenge naming the
// metadata and error="invalid_token"; no token gets 401 naming the
// metadata without an error; good tokens pass with their principal.
func TestOAuthChallenges(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	ts, _ := oauthServer(t, iss, 0)
	meta := ts.URL + "/.well-known/oauth-protected-resource/mcp"
	claims := func(scope string) map[string]any { return iss.Claims("u-1", oauthAudience, scope, time.Hour) }
	with := func(k string, v any) map[string]any { c := claims("admin"); c[k] = v; return c }
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&iss.Key.PublicKey)
	readTok := strings.Split(iss.Token(t, claims("read")), ".")
	adminPayload, _ := json.Marshal(claims("admin"))
	tampered := readTok[0] + "." + base64.RawURLEncoding.EncodeToString(adminPayload) + "." + readTok[2]

	for _, scope := range []string{"read", "execute", "manage", "admin"} {
		res, body := get(t, ts.URL+"/mcp", iss.Token(t, claims(scope)))
		if res.StatusCode != 200 || body != "oidc:u-1 "+scope {
			t.Errorf("scope %s: %d %q", scope, res.StatusCode, body)
		}
	}
	if res, body := get(t, ts.URL+"/mcp", "admin-token-0123456789"); res.StatusCode != 200 || body != "admin admin" {
		t.Errorf("the data dir's token beside OAuth: %d %q", res.StatusCode, body)
	}

	for _, tc := range []struct{ name, token, desc string }{
		{"expired", iss.Token(t, with("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		{"not yet valid", iss.Token(t, with("nbf", time.Now().Add(time.Hour).Unix())), "not valid before"},
		{"wrong audience", iss.Token(t, with("aud", "https://other.example")), "meant for"},
		{"wrong issuer", iss.Token(t, with("iss", "https://evil.example")), "issued by"},
		{"alg none", testkit.UnsignedJWT(t, claims("admin")), "none"},
		{"HS256 with the public key", testkit.HS256JWT(t, pubDER, iss.KeyID, claims("admin")), "HS256"},
		{"tampered payload", tampered, "signature"},
		{"unknown kid", testkit.SignJWT(t, jose.RS256, other, "k2", claims("admin")), "signature"},
		{"malformed", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "signature"},
		{"wrong opaque token", "not-a-jwt-and-not-the-admin-token", "wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, ts.URL+"/mcp", tc.token)
			if res.StatusCode != 401 {
				t.Fatalf("%d %q, want 401", res.StatusCode, body)
			}
			p := challengeParams(t, res.Header.Get("WWW-Authenticate"))
			if p["realm"] != Realm || p["resource_metadata"] != meta || p["error"] != "invalid_token" ||
				!strings.Contains(p["error_description"], tc.desc) {
				t.Fatalf("challenge %q: want realm, resource_metadata=%s, error=invalid_token, a description saying %q",
					res.Header.Get("WWW-Authenticate"), meta, tc.desc)
			}
			if !strings.Contains(body, tc.desc) {
				t.Errorf("body %q does not say %q", body, tc.desc)
			}
		})
	}

	res, body := get(t, ts.URL+"/mcp", "")
	p := challengeParams(t, res.Header.Get("WWW-Authenticate"))
	if res.StatusCode != 401 || p["resource_metadata"] != meta || p["error"] != "" || !strings.Contains(body, iss.URL) {
		t.Errorf("no token: %d %q %q", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
}

// TestOAuthInsufficientScope: a valid token lacking the route's scope,
// or holding none of ours, gets 403 insufficient_scope naming the scope.
func TestOAuthInsufficientScope(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	ts, _ := oauthServer(t, iss, auth.ScopeRead)
	for _, scope := range []string{"execute manage", "openid profile", ""} {
		res, body := get(t, ts.URL+"/mcp", iss.Token(t, iss.Claims("u-2", oauthAudience, scope, time.Hour)))
		p := challengeParams(t, res.Header.Get("WWW-Authenticate"))
		if res.StatusCode != 403 || p["error"] != "insufficient_scope" || p["scope"] != "read" || p["resource_metadata"] == "" {
			t.Errorf("scope %q: %d %q %q", scope, res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
		}
	}
	if res, _ := get(t, ts.URL+"/mcp", iss.Token(t, iss.Claims("u-2", oauthAudience, "read", time.Hour))); res.StatusCode != 200 {
		t.Errorf("read token on a read route: %d", res.StatusCode)
	}
}

// TestOAuthIssuerDown: while the issuer cannot be reached a JWT gets 503
// with Retry-After (the token may be good), the admin token still works.
func TestOAuthIssuerDown(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	iss.SetDown(true)
	ts, _ := oauthServer(t, iss, 0)
	res, body := get(t, ts.URL+"/mcp", iss.Token(t, iss.Claims("u-3", oauthAudience, "read", time.Hour)))
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "cannot be reached") {
		t.Errorf("issuer down: %d %q", res.StatusCode, body)
	}
	if res, _ := get(t, ts.URL+"/mcp", "admin-token-0123456789"); res.StatusCode != 200 {
		t.Errorf("admin token while the issuer is down: %d", res.StatusCode)
	}
}

// TestProtectedResourceMetadata: the document is served without a token
// at both well-known paths, names this resource as the challenges do, the
// issuer and our scopes; a foreign Host is still refused.
func TestProtectedResourceMetadata(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	ts, rs := oauthServer(t, iss, 0)
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		res, body := get(t, ts.URL+path, "")
		var doc struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
			BearerMethods        []string `json:"bearer_methods_supported"`
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &doc) != nil {
			t.Fatalf("%s: %d %q", path, res.StatusCode, body)
		}
		if doc.Resource != ts.URL+"/mcp" || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != iss.URL ||
			strings.Join(doc.ScopesSupported, " ") != "read execute manage admin" || strings.Join(doc.BearerMethods, " ") != "header" {
			t.Errorf("%s: %+v", path, doc)
		}
	}
	req, _ := http.NewRequest("GET", ts.URL+"/.well-known/oauth-protected-resource", nil)
	req.Host = "evil.example"
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Errorf("foreign Host: %v %v", res, err)
	}
	// A fixed --oidc-resource is advertised whatever the Host, and served
	// at its own path too.
	fixed := &ResourceServer{Issuer: iss.URL, Resource: "https://jupyter.example.com/team/mcp", MCPPath: "/mcp"}
	r := httptest.NewRequest("GET", "/mcp", nil)
	if got := fixed.MetadataURL(r); got != "https://jupyter.example.com/.well-known/oauth-protected-resource/team/mcp" {
		t.Errorf("metadata URL %q", got)
	}
	if paths := fixed.MetadataPaths(); len(paths) != 3 || paths[2] != "/.well-known/oauth-protected-resource/team/mcp" {
		t.Errorf("paths %v", paths)
	}
	_ = rs
}

// TestChallengeQuoting: a reason quoting a token's claims cannot break
// out of the quoted string or split the header.
func TestChallengeQuoting(t *testing.T) {
	h := (*ResourceServer)(nil).Header(httptest.NewRequest("GET", "/", nil),
		Challenge{Error: "invalid_token", Description: "issued by \"x\", error=\"y\\\"\r\nSet-Cookie: a=b é"})
	if strings.ContainsAny(h, "\r\n\\") || strings.Count(h, `"`) != 6 {
		t.Fatalf("header %q", h)
	}
	if h != `Bearer realm="mcp-jupyter", error="invalid_token", error_description="issued by 'x', error='y''Set-Cookie: a=b "` {
		t.Fatalf("header %q", h)
	}
}
