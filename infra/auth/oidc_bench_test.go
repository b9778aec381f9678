package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkOIDCAuthenticate: what checking a JWT access token (RS256,
// 2048-bit key, keys cached) costs per request, and how many key set
// fetches 1,000 forged tokens with fresh kids cause (at most one:
// they must not turn into requests at the issuer).
func BenchmarkOIDCAuthenticate(b *testing.B) {
	iss := testkit.StartOIDCIssuer(b)
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: testAudience, RetryEvery: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	const checks = 2000
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+iss.Token(b, iss.Claims("bench", testAudience, "read execute", time.Hour)))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	forged := make([]string, 1000)
	for i := range forged {
		forged[i] = testkit.SignJWT(b, jose.RS256, other, fmt.Sprintf("kid-%d", i), iss.Claims("bench", testAudience, "admin", time.Hour))
	}
	var perCheck float64
	var fetches int64
	for b.Loop() {
		if _, err := o.Authenticate(r); err != nil { // warm: discovery and keys
			b.Fatal(err)
		}
		start := time.Now()
		for range checks {
			if _, err := o.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
		perCheck = float64(time.Since(start).Microseconds()) / checks
		before := iss.JWKSFetches()
		for _, tok := range forged {
			if _, err := o.AuthenticateToken(r.Context(), tok); !errors.Is(err, auth.ErrRejected) {
				b.Fatalf("forged token: %v", err)
			}
		}
		fetches = iss.JWKSFetches() - before
	}
	b.ReportMetric(perCheck, "µs/check")
	b.ReportMetric(float64(fetches), "fetches-per-1000-forged")
}
