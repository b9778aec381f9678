package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every token `principal add` and `principal rotate`
// print, so that a leaked one is recognisable (secret scanners, logs) and
// never mistaken for the data dir's token or an OAuth JWT.
const TokenPrefix = "mcpj_"

// tokenBytes is how much randomness a principal's token carries.
const tokenBytes = 32

// NewToken returns a fresh principal token: TokenPrefix and 32 random bytes
// in hex.
func NewToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(b[:]), nil
}

// TokenHash is what the principals file keeps of a token.
//
// NB: a plain SHA-256, not a slow password KDF (bcrypt, scrypt, argon2).
// A slow KDF exists to make guessing a low-entropy password expensive.
// Our tokens are 256 random bits: nobody can enumerate them, fast hash or
// slow, so stretching buys no security. It would cost a lot: every request
// hashes its token, and a KDF tuned to ~50 ms would turn each MCP call into
// a CPU burn an unauthenticated client could trigger at will. SHA-256 is
// one-way (the file does not give the tokens back) and exact, so it can
// key a map: a lookup costs the same with one principal or a thousand.
type TokenHash [sha256.Size]byte

// HashToken returns the hash the principals file keeps of tok.
func HashToken(tok string) TokenHash { return sha256.Sum256([]byte(tok)) }

// String renders h in hex, as the file stores it.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// parseTokenHash reads a hash in the file's hex form.
func parseTokenHash(s string) (TokenHash, error) {
	var h TokenHash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("token_sha256 has %d characters, want %d hex digits", len(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("token_sha256 is not hex: %w", err)
	}
	return h, nil
}

// LooksLikeJWT reports whether tok has a JWT's shape: three base64url
// parts separated by dots. The token directory leaves such tokens it does
// not know to the next authenticator (OAuth), and answers the others.
func LooksLikeJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for _, r := range p {
			if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// ValidateName checks a principal's name for `principal add`: 1–64
// characters of [a-z0-9._-] starting with a letter or digit, and not one
// the server keeps for itself ("admin", "oidc:…").
func ValidateName(name string) error {
	if name == AdminName {
		return fmt.Errorf("the name %q is reserved for the data dir's token (mcp-token, --token) and stdio: choose another name", name)
	}
	if strings.HasPrefix(name, "oidc:") {
		return fmt.Errorf("names starting \"oidc:\" are reserved for OAuth subjects: choose another name")
	}
	if err := checkNameChars(name); err != nil {
		return err
	}
	return nil
}

func checkNameChars(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("principal name %q has %d characters: give 1 to 64 of a-z, 0-9, '.', '_', '-'", name, len(name))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '.' || r == '_' || r == '-'
		}
		if !ok {
			return fmt.Errorf("principal name %q: %q at position %d is not allowed: use a-z, 0-9, '.', '_', '-', starting with a letter or digit", name, r, i+1)
		}
	}
	return nil
}
