package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const testAudience = "https://jupyter.test/mcp"

func newOIDC(t *testing.T, iss *testkit.OIDCIssuer) *auth.OIDC {
	t.Helper()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func authenticate(o *auth.OIDC, tok string) (auth.Principal, error) {
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return o.Authenticate(r)
}

// TestOIDCEachScope: a token from the issuer with each scope, in each
// claim form issuers use, authenticates as oidc:<sub> with that scope.
func TestOIDCEachScope(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	o := newOIDC(t, iss)
	for _, tc := range []struct {
		name  string
		claim func(map[string]any)
		want  auth.Scope
	}{
		{"read", func(c map[string]any) { c["scope"] = "openid read" }, auth.ScopeRead},
		{"execute", func(c map[string]any) { c["scope"] = "execute" }, auth.ScopeExecute},
		{"manage", func(c map[string]any) { c["scope"] = "manage profile" }, auth.ScopeManage},
		{"admin", func(c map[string]any) { c["scope"] = "admin" }, auth.ScopeAdmin},
		{"prefixed", func(c map[string]any) { c["scope"] = "mcp-jupyter:read mcp-jupyter:execute" }, auth.ScopeRead | auth.ScopeExecute},
		{"scp array (Okta)", func(c map[string]any) { c["scp"] = []string{"read", "manage"} }, auth.ScopeRead | auth.ScopeManage},
		{"scp string (Entra)", func(c map[string]any) { c["scp"] = "execute read" }, auth.ScopeRead | auth.ScopeExecute},
		{"scope and scp", func(c map[string]any) { c["scope"] = "read"; c["scp"] = []string{"execute"} }, auth.ScopeRead | auth.ScopeExecute},
		{"none of ours", func(c map[string]any) { c["scope"] = "openid email" }, 0},
		{"array element with a space is not two", func(c map[string]any) { c["scp"] = []string{"read admin"} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := "alice|" + strings.ReplaceAll(tc.name, " ", "_")
			c := iss.Claims(sub, testAudience, "", time.Hour)
			tc.claim(c)
			p, err := authenticate(o, iss.Token(t, c))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Name != "oidc:"+sub || p.Scopes != tc.want || p.MaxKernels != 0 {
				t.Fatalf("got %+v (scopes %q), want scopes %q", p, p.Scopes, tc.want)
			}
		})
	}
}

// TestOIDCRefusals: every token the issuer did not sign for this server,
// or that is no longer or not yet valid, is refused with a reason, and
// the reason says what is wrong.
func TestOIDCRefusals(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	o := newOIDC(t, iss)
	good := func() map[string]any { return iss.Claims("mallory", testAudience, "admin", time.Hour) }
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&iss.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	without := func(k string) map[string]any { c := good(); delete(c, k); return c }
	tampered := func() string {
		parts := strings.Split(iss.Token(t, iss.Claims("mallory", testAudience, "read", time.Hour)), ".")
		payload, _ := json.Marshal(good()) // admin instead of read, same signature
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"expired", iss.Token(t, with("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		{"expired beyond the leeway", iss.Token(t, with("exp", time.Now().Add(-2*time.Minute).Unix())), "expired"},
		{"no exp", iss.Token(t, without("exp")), "expired"},
		{"not yet valid", iss.Token(t, with("nbf", time.Now().Add(10*time.Minute).Unix())), "not valid before"},
		{"not yet valid within go-oidc's 5 min", iss.Token(t, with("nbf", time.Now().Add(2*time.Minute).Unix())), "not valid before"},
		{"wrong audience", iss.Token(t, with("aud", "https://other.example/api")), "meant for"},
		{"no audience", iss.Token(t, without("aud")), "meant for"},
		{"wrong issuer", iss.Token(t, with("iss", "https://evil.example")), "issued by"},
		{"unsigned (alg none)", testkit.UnsignedJWT(t, good()), `"none"`},
		{"HS256 keyed by the public key", testkit.HS256JWT(t, pubDER, iss.KeyID, good()), `"HS256"`},
		{"tampered payload", tampered(), "signature"},
		{"signature stripped", strings.Join(strings.Split(iss.Token(t, good()), ".")[:2], ".") + ".", "signature"},
		{"unknown kid", testkit.SignJWT(t, jose.RS256, otherKey, "not-the-issuers", good()), "signature"},
		{"issuer's kid, another key", testkit.SignJWT(t, jose.RS256, otherKey, iss.KeyID, good()), "signature"},
		{"ES256 key the issuer never published", testkit.SignJWT(t, jose.ES256, ecKey, "ec", good()), "signature"},
		{"no sub", iss.Token(t, without("sub")), "sub"},
		{"sub with a newline", iss.Token(t, with("sub", "a\nb")), "sub"},
		{"malformed header", "eyJub3Q.eyJzdWIiOiJ4In0.c2ln", "header"},
		{"too long", strings.Repeat("a", auth.MaxJWTBytes) + ".b.c", "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := authenticate(o, tc.token)
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			var te *auth.TokenError
			if !errors.As(err, &te) || !errors.Is(err, auth.ErrRejected) {
				t.Fatalf("err = %v (%T), want a *auth.TokenError wrapping ErrRejected", err, err)
			}
			if !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", te.Reason, tc.reason)
			}
		})
	}
}

// TestOIDCLeeway: a token that expired a few seconds ago is still
// accepted (clocks differ), one past the leeway is not.
func TestOIDCLeeway(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	o := newOIDC(t, iss)
	c := iss.Claims("bob", testAudience, "read", time.Hour)
	c["exp"] = time.Now().Add(-5 * time.Second).Unix()
	if _, err := authenticate(o, iss.Token(t, c)); err != nil {
		t.Fatalf("5 s past exp refused: %v", err)
	}
	c["exp"] = time.Now().Add(-45 * time.Second).Unix()
	if _, err := authenticate(o, iss.Token(t, c)); err == nil {
		t.Fatal("45 s past exp accepted (leeway is 30 s)")
	}
}

// TestOIDCOtherTokensPassOn: a bearer token that is not a JWT (a
// principal's or the data dir's token) is not this authenticator's:
// ErrNoCredentials, so an auth.Chain asks the token store.
func TestOIDCOtherTokensPassOn(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	o := newOIDC(t, iss)
	for _, tok := range []string{strings.Repeat("ab", 32), "a.b", "a..c", ".b.c", "a.b.c.d", "a.b!.c"} {
		if _, err := authenticate(o, tok); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("%q: err = %v, want ErrNoCredentials", tok, err)
		}
	}
	if _, err := o.Authenticate(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, auth.ErrNoCredentials) {
		t.Errorf("no header: err = %v", err)
	}
}

// TestOIDCIssuerDownAtStart: the server starts while the issuer is down;
// tokens get ErrIssuerUnavailable (not a refusal: the token may be good),
// discovery is retried lazily and not on every request, and once the
// issuer answers the same token is accepted.
func TestOIDCIssuerDownAtStart(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	iss.SetDown(true)
	now := time.Now()
	clock := func() time.Time { return now }
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute,
		Now: func() time.Time { return clock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := o.Discover(ctx); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("Discover with the issuer down: %v", err)
	}
	tok := iss.Token(t, iss.Claims("carol", testAudience, "read", time.Hour))
	for range 5 {
		_, err := authenticate(o, tok)
		if !errors.Is(err, auth.ErrIssuerUnavailable) || errors.Is(err, auth.ErrRejected) {
			t.Fatalf("issuer down: err = %v, want ErrIssuerUnavailable", err)
		}
	}
	if n := iss.Discoveries(); n != 1 {
		t.Fatalf("%d discovery attempts within RetryEvery, want 1", n)
	}
	iss.SetDown(false)
	if _, err := authenticate(o, tok); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("retried before RetryEvery: %v", err)
	}
	now = now.Add(2 * time.Minute)
	p, err := authenticate(o, tok)
	if err != nil || p.Name != "oidc:carol" {
		t.Fatalf("issuer back: %+v %v", p, err)
	}
	// Keys cached: the issuer going down again does not refuse known keys.
	iss.SetDown(true)
	if _, err := authenticate(o, tok); err != nil {
		t.Fatalf("cached key refused while the issuer is down: %v", err)
	}
}

// TestOIDCKeysCached: a known key is not fetched again per request (the
// issuer is not asked on every call).
func TestOIDCKeysCached(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	o := newOIDC(t, iss)
	if _, err := authenticate(o, iss.Token(t, iss.Claims("dan", testAudience, "read", time.Hour))); err != nil {
		t.Fatal(err)
	}
	before := iss.JWKSFetches()
	if _, err := authenticate(o, iss.Token(t, iss.Claims("dan", testAudience, "read", time.Hour))); err != nil {
		t.Fatal(err)
	}
	if iss.JWKSFetches() != before {
		t.Fatalf("keys fetched again for a known kid (%d -> %d)", before, iss.JWKSFetches())
	}
}

func TestNewOIDCConfig(t *testing.T) {
	for _, tc := range []struct {
		issuer, audience, want string
	}{
		{"https://idp.example/realms/x", "", "--oidc-audience is required"},
		{"http://idp.example", "a", "https"},
		{"idp.example", "a", "--oidc-issuer"},
		{"https://idp.example/?x=1", "a", "--oidc-issuer"},
	} {
		_, err := auth.NewOIDC(auth.OIDCConfig{Issuer: tc.issuer, Audience: tc.audience})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: err = %v, want %q", tc.issuer, tc.audience, err, tc.want)
		}
	}
	for _, ok := range []string{"https://idp.example/realms/x", "http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:9"} {
		if _, err := auth.NewOIDC(auth.OIDCConfig{Issuer: ok, Audience: "a"}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// TestOIDCBadTokensDoNotFloodIssuer: tokens with unknown kids, tampered
// payloads or foreign keys, sent by someone holding no token at all, do
// not make the server fetch the issuer's keys once per request (go-oidc's
// own key set would: every failed signature refetched the JWKS); at most
// one fetch per RetryEvery.
func TestOIDCBadTokensDoNotFloodIssuer(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	now := time.Now()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	good := iss.Claims("eve", testAudience, "admin", time.Hour)
	if _, err := authenticate(o, iss.Token(t, good)); err != nil {
		t.Fatal(err)
	}
	before := iss.JWKSFetches()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(iss.Token(t, good), ".")
	for i := range 50 {
		forged := []string{
			testkit.SignJWT(t, jose.RS256, other, fmt.Sprintf("kid-%d", i), good), // unknown kid
			testkit.SignJWT(t, jose.RS256, other, iss.KeyID, good),                // known kid, wrong key
			testkit.SignJWT(t, jose.RS256, other, "", good),                       // no kid
			parts[0] + "." + parts[1] + "x." + parts[2],                           // tampered
		}
		for _, tok := range forged {
			if _, err := authenticate(o, tok); !errors.Is(err, auth.ErrRejected) {
				t.Fatalf("forged token: err = %v, want a refusal", err)
			}
		}
	}
	if n := iss.JWKSFetches() - before; n > 1 {
		t.Fatalf("200 forged tokens made %d key set fetches, want at most 1 per RetryEvery", n)
	}
}

// TestOIDCKeyRotation: a key the issuer publishes later is fetched when a
// token first names it (once RetryEvery has passed since the last fetch),
// without a restart.
func TestOIDCKeyRotation(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	now := time.Now()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(o, iss.Token(t, iss.Claims("fay", testAudience, "read", time.Hour))); err != nil {
		t.Fatal(err)
	}
	key, kid := iss.RotateKey(t)
	now = now.Add(2 * time.Minute)
	p, err := authenticate(o, testkit.SignJWT(t, jose.RS256, key, kid, iss.Claims("fay", testAudience, "read", time.Hour)))
	if err != nil || p.Name != "oidc:fay" {
		t.Fatalf("token signed with the rotated-in key: %+v %v", p, err)
	}
}

// TestOIDCWithdrawnKey: a key the issuer withdraws stops verifying tokens
// once the key set held is keysMaxAge old, though no token ever names an
// unknown key (which is what would otherwise make the server fetch again).
func TestOIDCWithdrawnKey(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	now := time.Now()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	old := iss.Token(t, iss.Claims("gus", testAudience, "read", 24*time.Hour))
	if _, err := authenticate(o, old); err != nil {
		t.Fatal(err)
	}
	iss.ReplaceKeys(t)
	now = now.Add(2 * time.Minute)
	if _, err := authenticate(o, old); err != nil {
		t.Fatalf("within the key set's max age the held key still verifies: %v", err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := authenticate(o, old); err == nil {
		t.Fatal("a token signed with a withdrawn key was accepted 12 minutes after the withdrawal")
	}
}

// TestOIDCHangingIssuer: while the key set endpoint hangs, 20 concurrent
// tokens naming an unknown key cost one fetch at the issuer, each answer
// comes within about one fetch timeout (not one timeout per request
// queued before it), and says the issuer, not the token, is the problem.
func TestOIDCHangingIssuer(t *testing.T) {
	iss := testkit.StartOIDCIssuer(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	const timeout = 500 * time.Millisecond
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute,
		DiscoveryTimeout: timeout, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(o, iss.Token(t, iss.Claims("gil", testAudience, "read", time.Hour))); err != nil {
		t.Fatal(err)
	}
	iss.HangJWKS(t)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	key, kid := iss.RotateKey(t)
	before := iss.JWKSFetches()
	tok := testkit.SignJWT(t, jose.RS256, key, kid, iss.Claims("gil", testAudience, "read", time.Hour))
	start := time.Now()
	errs := make(chan error, 20)
	for range 20 {
		go func() { _, err := authenticate(o, tok); errs <- err }()
	}
	for range 20 {
		if err := <-errs; !errors.Is(err, auth.ErrIssuerUnavailable) {
			t.Errorf("err = %v, want ErrIssuerUnavailable", err)
		}
	}
	if took := time.Since(start); took > 4*timeout {
		t.Errorf("20 requests took %s with a %s fetch timeout: they queued behind each other", took, timeout)
	}
	if n := iss.JWKSFetches() - before; n != 1 {
		t.Errorf("%d key set fetches, want 1", n)
	}
}
