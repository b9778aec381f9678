package assetstore_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
)

func TestPutOpenDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "assets")
	st, err := assetstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, created, err := st.Put([]byte("hello"))
	if err != nil || !created || sum != assetstore.Sum([]byte("hello")) {
		t.Fatalf("put: %s %v %v", sum, created, err)
	}
	if _, created, err := st.Put([]byte("hello")); err != nil || created {
		t.Fatalf("second put created=%v err=%v, want a no-op", created, err)
	}
	data, err := st.ReadAll(sum)
	if err != nil || string(data) != "hello" {
		t.Fatalf("read: %q %v", data, err)
	}
	f, size, err := st.Open(sum)
	if err != nil || size != 5 {
		t.Fatalf("open: %d %v", size, err)
	}
	if err := st.Delete(sum); err != nil {
		t.Fatal(err)
	}
	// An open file stays readable after Delete.
	if b, _ := io.ReadAll(f); string(b) != "hello" {
		t.Fatalf("read after delete: %q", b)
	}
	f.Close()
	if _, err := st.ReadAll(sum); !errors.Is(err, assetstore.ErrNotFound) {
		t.Fatalf("read deleted: %v, want ErrNotFound", err)
	}
	if err := st.Delete(sum); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestOpenRemovesTempFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := assetstore.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
}

func TestBadSumsRefused(t *testing.T) {
	dir := t.TempDir()
	st, _ := assetstore.Open(filepath.Join(dir, "assets"))
	// A file outside the store that traversal would reach.
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range badSums() {
		var bse *assetstore.BadSumError
		if _, _, err := st.Open(bad); !errors.As(err, &bse) {
			t.Errorf("Open(%q): %v, want *BadSumError", bad, err)
		}
		if _, err := st.ReadAll(bad); !errors.As(err, &bse) {
			t.Errorf("ReadAll(%q): %v, want *BadSumError", bad, err)
		}
		if err := st.Delete(bad); !errors.As(err, &bse) {
			t.Errorf("Delete(%q): %v, want *BadSumError", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secret")); err != nil {
		t.Fatalf("file outside the store touched: %v", err)
	}
}

func badSums() []string {
	return []string{"", "abc", "../secret", "../../etc/passwd", strings.Repeat("A", 64),
		strings.Repeat("a", 63) + "/", strings.Repeat("a", 65), strings.Repeat("g", 64),
		"..%2fsecret", strings.Repeat("a", 62) + "..", "/" + strings.Repeat("a", 63)}
}

// reader serves straight from a store (the lease actor adds renewal).
type reader struct{ st *assetstore.Store }

func (r reader) ReadAsset(_ context.Context, sum string) (io.ReadSeekCloser, int64, string, error) {
	f, size, err := r.st.Open(sum)
	return f, size, "image/svg+xml", err
}

func TestHandler(t *testing.T) {
	st, _ := assetstore.Open(t.TempDir())
	sum, _, _ := st.Put([]byte("<svg/>"))
	srv := httptest.NewServer(assetstore.Handler("/assets/", reader{st}))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	res, body := get("/assets/" + sum)
	if res.StatusCode != 200 || body != "<svg/>" || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("get: %d %q %q", res.StatusCode, body, res.Header.Get("Content-Type"))
	}
	if res.Header.Get("Content-Security-Policy") != "sandbox" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("missing safety headers: %v", res.Header)
	}
	res, body = get("/assets/" + strings.Repeat("0", 64))
	if res.StatusCode != 404 || !strings.Contains(body, "not stored") {
		t.Fatalf("missing: %d %q", res.StatusCode, body)
	}
	for _, bad := range []string{"/assets/abc", "/assets/..%2f..%2fetc%2fpasswd", "/assets/" + strings.Repeat("A", 64)} {
		res, body = get(bad)
		if res.StatusCode != 400 || !strings.Contains(body, "not a sha256") {
			t.Errorf("GET %s: %d %q, want 400 naming the problem", bad, res.StatusCode, body)
		}
	}
}

func FuzzValidSum(f *testing.F) {
	for _, s := range badSums() {
		f.Add(s)
	}
	f.Add(strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, s string) {
		if !assetstore.ValidSum(s) {
			return
		}
		// A valid sum is one path element inside the store.
		if filepath.Base(s) != s || strings.ContainsAny(s, "/.\\") || len(s) != 64 {
			t.Fatalf("ValidSum accepted %q", s)
		}
	})
}
