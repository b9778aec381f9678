package testkit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OIDCIssuer is an OpenID provider on loopback for tests: it serves
// /.well-known/openid-configuration and a JWKS holding one RSA key, and
// signs access tokens with it. Tests that need a token the real issuer
// would never sign use SignJWT, UnsignedJWT and HS256JWT.
type OIDCIssuer struct {
	// URL is the issuer identifier (http://127.0.0.1:port): tokens carry
	// it as "iss" and the server is pointed at it with --oidc-issuer.
	URL   string
	Key   *rsa.PrivateKey
	KeyID string

	mu       sync.Mutex
	keys     []jose.JSONWebKey // published in the JWKS
	rotation int
	hang     chan struct{} // non-nil: the JWKS answers only once it is closed

	down        atomic.Bool
	discoveries atomic.Int64
	jwksFetches atomic.Int64
	issued      atomic.Int64
}

// StartOIDCIssuer starts an issuer on a loopback port, stopped when t ends.
func StartOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &OIDCIssuer{Key: key, KeyID: "test-key-1"}
	iss.keys = []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: iss.KeyID, Algorithm: string(jose.RS256), Use: "sig"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveries.Add(1)
		if iss.down.Load() {
			http.Error(w, "issuer down (test)", http.StatusServiceUnavailable)
			return
		}
		writeTestJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"authorization_endpoint":                iss.URL + "/authorize",
			"token_endpoint":                        iss.URL + "/token",
			"jwks_uri":                              iss.URL + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksFetches.Add(1)
		iss.mu.Lock()
		hang := iss.hang
		iss.mu.Unlock()
		if hang != nil {
			select { // an issuer that accepts the connection and never answers
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		if iss.down.Load() {
			http.Error(w, "issuer down (test)", http.StatusServiceUnavailable)
			return
		}
		iss.mu.Lock()
		set := jose.JSONWebKeySet{Keys: slices.Clone(iss.keys)}
		iss.mu.Unlock()
		writeTestJSON(w, set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return iss
}

// RotateKey publishes a new signing key beside the old one and returns
// its key and kid (the issuer's Token still signs with the first).
func (i *OIDCIssuer) RotateKey(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rotation++
	kid := fmt.Sprintf("test-key-rotated-%d", i.rotation)
	i.keys = append(i.keys, jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"})
	return key, kid
}

// ReplaceKeys withdraws every published key and publishes a new one in
// their place (a leaked key retired); it returns the new key and its kid.
func (i *OIDCIssuer) ReplaceKeys(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	key, kid := i.RotateKey(t)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = i.keys[len(i.keys)-1:]
	return key, kid
}

// HangJWKS makes the key set endpoint accept requests and not answer
// until the test ends.
func (i *OIDCIssuer) HangJWKS(t testing.TB) {
	t.Helper()
	ch := make(chan struct{})
	i.mu.Lock()
	i.hang = ch
	i.mu.Unlock()
	t.Cleanup(func() { close(ch) })
}

// SetDown makes discovery and the JWKS answer 503 (true) or work again.
func (i *OIDCIssuer) SetDown(down bool) { i.down.Store(down) }

// Discoveries is how many times the discovery document was asked for.
func (i *OIDCIssuer) Discoveries() int64 { return i.discoveries.Load() }

// JWKSFetches is how many times the key set was asked for.
func (i *OIDCIssuer) JWKSFetches() int64 { return i.jwksFetches.Load() }

// Claims returns the claims of an access token from this issuer for sub,
// meant for aud, with the given space-separated scope, valid from a minute
// ago for ttl.
func (i *OIDCIssuer) Claims(sub, aud, scope string, ttl time.Duration) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": i.URL, "sub": sub, "aud": aud,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(ttl).Unix(), "jti": fmt.Sprintf("jti-%d", i.issued.Add(1)),
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

// Token signs claims with the issuer's key (RS256, the JWKS's kid).
func (i *OIDCIssuer) Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	return SignJWT(t, jose.RS256, i.Key, i.KeyID, claims)
}

// SignJWT signs claims as a compact JWS with key under alg, naming kid.
func SignJWT(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// UnsignedJWT is claims under {"alg":"none"} with an empty signature: what
// an attacker sends hoping the verifier skips the signature.
func UnsignedJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	return rawJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, nil)
}

// HS256JWT signs claims with HMAC-SHA256 keyed by secret (by hand: go-jose
// refuses short keys). Keyed by the issuer's public key bytes it is the
// algorithm-confusion attack on verifiers that let the token pick the alg.
func HS256JWT(t testing.TB, secret []byte, kid string, claims map[string]any) string {
	t.Helper()
	return rawJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims, secret)
}

func rawJWT(t testing.TB, header, claims map[string]any, hmacKey []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	if hmacKey == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
