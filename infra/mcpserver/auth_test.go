package mcpserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	const token = "s3cret"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "passed") })
	h := Guard{Token: token, AllowedHosts: []string{"jupyter.internal", "box:8888"}}.Wrap(ok)
	for _, tc := range []struct {
		name     string
		host     string
		origin   string
		auth     string
		want     int
		wantBody string
	}{
		{"good", "127.0.0.1:9999", "", "Bearer s3cret", 200, "passed"},
		{"good localhost origin", "localhost:9999", "http://localhost:3000", "Bearer s3cret", 200, "passed"},
		{"ipv6 loopback", "[::1]:9999", "", "bearer s3cret", 200, "passed"},
		{"allowed host any port", "jupyter.internal:443", "https://jupyter.internal", "Bearer s3cret", 200, "passed"},
		{"allowed host:port", "box:8888", "", "Bearer s3cret", 200, "passed"},
		{"allowed host wrong port", "box:9999", "", "Bearer s3cret", 403, "Host"},
		{"missing token", "127.0.0.1:9999", "", "", 401, "Authorization: Bearer"},
		{"wrong token", "127.0.0.1:9999", "", "Bearer nope", 401, "token is wrong"},
		{"basic auth", "127.0.0.1:9999", "", "Basic czNjcmV0", 401, "Authorization: Bearer"},
		// Jupyter's scheme (jupyter_server, @jupyterlab/services, VS Code).
		{"jupyter token scheme", "127.0.0.1:9999", "", "token s3cret", 200, "passed"},
		{"jupyter Token scheme", "127.0.0.1:9999", "", "Token  s3cret ", 200, "passed"},
		{"jupyter token wrong", "127.0.0.1:9999", "", "token nope", 401, "token is wrong"},
		{"jupyter token empty", "127.0.0.1:9999", "", "token ", 401, "Authorization: Bearer"},
		{"token prefix", "127.0.0.1:9999", "", "Bearer s3cre", 401, "token is wrong"},
		{"bad host (rebinding)", "evil.example:9999", "", "Bearer s3cret", 403, "Host"},
		{"wrong origin", "127.0.0.1:9999", "https://evil.example", "Bearer s3cret", 403, "Origin"},
		{"null origin", "127.0.0.1:9999", "null", "Bearer s3cret", 403, "Origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/mcp", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tc.want, tc.wantBody)
			}
			if tc.want == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGuardEmptyTokenRefusesAll(t *testing.T) {
	h := Guard{}.Wrap(http.NotFoundHandler())
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.Host = "localhost"
	r.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("got %d", w.Code)
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, created, err := LoadOrCreateToken(dir)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("first start: %q %v %v", tok, created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("second start: %q %v %v", again, created, err)
	}
	// A token file others can read is tightened.
	if err := os.Chmod(filepath.Join(dir, TokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateToken(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, TokenFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after load: %v", fi.Mode())
	}
	// An empty file is an error that says what to do.
	if err := os.WriteFile(filepath.Join(dir, TokenFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("empty token file: %v", err)
	}
}
