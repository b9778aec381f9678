package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzOIDCClaims: whatever a token's payload holds, reading the
// principal from it never panics, and what it accepts is a principal
// named "oidc:<sub>" with a printable subject and only our scopes.
func FuzzOIDCClaims(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"alice","scope":"read execute"}`,
		`{"sub":"a","scp":["read","admin"]}`,
		`{"sub":"a","scp":"manage"}`,
		`{"sub":"a","scp":["read admin"]}`,
		`{"sub":"a","scope":["read"],"scp":null}`,
		`{"sub":"a","aud":["x","y"],"nbf":1e300}`,
		`{"sub":"a","aud":7}`,
		`{"sub":"","scope":"admin"}`,
		`{"sub":12,"scope":"admin"}`,
		`{"sub":"a\u0000b"}`,
		`{"sub":"a","scope":"mcp-jupyter:ADMIN, read"}`,
		`[]`, `null`, ``, `{"sub":"a","nbf":"soon"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := parseAccessClaims(payload)
		if err != nil {
			if _, ok := err.(*TokenError); !ok {
				t.Fatalf("error %T %v is not a *TokenError", err, err)
			}
			return
		}
		p := c.principal()
		sub := strings.TrimPrefix(p.Name, OIDCNamePrefix)
		if sub == "" || len(sub) > maxSubjectBytes || !utf8.ValidString(sub) || strings.ContainsAny(sub, " \t\r\n\x00\x7f") {
			t.Fatalf("accepted subject %q", sub)
		}
		if p.Scopes&^(ScopeRead|ScopeExecute|ScopeManage|ScopeAdmin) != 0 {
			t.Fatalf("scopes %b outside ours", p.Scopes)
		}
	})
}

// FuzzLooksLikeJWT: the shape check (token.go) and the header parse never
// panic; a token judged JWT-shaped has exactly two dots and no character
// outside base64url; a header is parsed only from a JWT-shaped token.
func FuzzLooksLikeJWT(f *testing.F) {
	enc := base64.RawURLEncoding
	for _, seed := range []string{
		enc.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`)) + ".e30.c2ln",
		enc.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.",
		"a.b", "a..c", ".b.c", "a.b.c.d", "0123abcd", "a.b.c", "eyJ.eyJ.!",
		enc.EncodeToString([]byte(`{"alg":7}`)) + ".e30.c2ln",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		shaped := LooksLikeJWT(tok)
		if shaped {
			if strings.Count(tok, ".") != 2 || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
				t.Fatalf("%q judged a JWT", tok)
			}
		}
		if _, err := parseJWTHeader(tok); err != nil {
			if _, ok := err.(*TokenError); !ok {
				t.Fatalf("error %T is not a *TokenError", err)
			}
		} else if !shaped {
			t.Fatalf("%q parsed though not JWT-shaped", tok)
		}
	})
}

// FuzzJWKS: whatever the issuer's key set document holds, parsing it
// never panics and keeps only public keys (never a symmetric one).
func FuzzJWKS(f *testing.F) {
	for _, seed := range []string{
		`{"keys":[{"kty":"RSA","kid":"k","use":"sig","n":"sXch","e":"AQAB"}]}`,
		`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","use":"enc"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":null}`, `[]`, ``, `{"keys":[1,"a",{}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if !k.IsPublic() {
				t.Fatalf("kept a non-public key %+v", k)
			}
		}
	})
}
