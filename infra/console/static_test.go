package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// get sends a request to h and returns the recorded answer.
func get(t *testing.T, h http.Handler, method, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStaticServesThePageWithItsPolicy: /ui/ is index.html, every file of
// the page is served with the CSP of the design and the other security
// headers, the right type, and a validator (a 304 on revalidation);
// index.html is never stored (its address may hold ?token=); unknown
// files and directories are 404, other methods 405 — each with the same
// headers.
func TestStaticServesThePageWithItsPolicy(t *testing.T) {
	h := New(Options{}).Static()
	checkHeaders := func(path string, r *http.Response) {
		t.Helper()
		for k, want := range map[string]string{"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	r := get(t, h, "GET", "/ui/", nil)
	idx := body(t, r)
	if r.StatusCode != 200 || !bytes.Contains(idx, []byte("<html")) || r.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /ui/: %d %v", r.StatusCode, r.Header)
	}
	checkHeaders("/ui/", r)
	if bytes.Contains(bytes.ToLower(idx), []byte("<script>")) {
		t.Errorf("index.html holds an inline script: the CSP (script-src 'self') would block it")
	}
	for _, name := range []string{"api.js", "app.js", "outputs.js", "then.js", "style.css", "outputs.css"} {
		r := get(t, h, "GET", "/ui/"+name, nil)
		if r.StatusCode != 200 {
			t.Fatalf("GET /ui/%s: %d", name, r.StatusCode)
		}
		checkHeaders(name, r)
		want := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".css") {
			want = "text/css; charset=utf-8"
		}
		if r.Header.Get("Content-Type") != want || r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("ETag") == "" {
			t.Errorf("GET /ui/%s: %v", name, r.Header)
		}
		again := get(t, h, "GET", "/ui/"+name, map[string]string{"If-None-Match": r.Header.Get("ETag")})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("revalidating /ui/%s: %d, want 304", name, again.StatusCode)
		}
	}
	for _, path := range []string{"/ui/nosuch.js", "/ui/static/", "/ui/vendor/", "/ui/api.js/", "/ui/%2e%2e%2fconsole.go"} {
		r := get(t, h, "GET", path, nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.StatusCode)
		}
		checkHeaders(path, r)
	}
	r = get(t, h, "POST", "/ui/index.html", nil)
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/index.html: %d %v", r.StatusCode, r.Header)
	}
	checkHeaders("POST", r)
	if r := get(t, h, "HEAD", "/ui/app.js", nil); r.StatusCode != 200 || len(body(t, r)) != 0 {
		t.Errorf("HEAD /ui/app.js: %d", r.StatusCode)
	}
}

// gzipped asks for plotly.js with gzip until it comes compressed: the
// first request of a version gets it plain at once and starts the
// compression; this waits for that, never for a time.
func gzipped(t *testing.T, p *plotlyFile, h http.Handler) (*http.Response, []byte) {
	t.Helper()
	r, b, err := tryGzipped(t, p, h)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

// tryGzipped is gzipped's work: an error, at once, when plotly.js came
// plain and no compression was started (nothing to wait for).
func tryGzipped(t *testing.T, p *plotlyFile, h http.Handler) (*http.Response, []byte, error) {
	t.Helper()
	for range 3 {
		r := get(t, h, "GET", PlotlyPath, map[string]string{"Accept-Encoding": "br, gzip"})
		b := body(t, r)
		if r.Header.Get("Content-Encoding") == "gzip" {
			return r, b, nil
		}
		if r.StatusCode != 200 {
			return nil, nil, fmt.Errorf("plotly.js: %d %s", r.StatusCode, b)
		}
		p.mu.Lock()
		made := p.made
		p.mu.Unlock()
		if made == nil {
			// NB: a nil channel would block the select below for good.
			return nil, nil, fmt.Errorf("plotly.js came plain and no compression was started")
		}
		select {
		case <-made:
		case <-time.After(2 * time.Minute):
			return nil, nil, fmt.Errorf("the compression did not end")
		}
	}
	return nil, nil, fmt.Errorf("plotly.js never came gzipped")
}

// TestGzippedFailsAtOnceWithoutACompression: when no compression starts
// (a file over the bound), the helper says so at once instead of waiting
// on a nil channel.
func TestGzippedFailsAtOnceWithoutACompression(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plotly.js")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, MaxPlotlyBytes+1); err != nil { // sparse: no disk cost
		t.Fatal(err)
	}
	p := &plotlyFile{path: file, work: newLifetime(t.Context())}
	done := make(chan error, 1)
	go func() {
		_, _, err := tryGzipped(t, p, http.HandlerFunc(p.serve))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no compression") {
			t.Fatalf("tryGzipped: %v, want no compression started", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tryGzipped still waits on a compression that never started")
	}
}

// TestPlotlyServedGzippedOnce: /ui/vendor/plotly.js is the file of
// --plotly-js. The first request gets it plain at once (the compression
// runs beside it), later ones gzipped (the same bytes once inflated),
// compressed once per version of the file (a changed file is compressed
// again), with a validator; plain for a client that does not accept gzip;
// missing or unset, a 404 that says what to install or set.
func TestPlotlyServedGzippedOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plotly.js")
	js := bytes.Repeat([]byte("/* plotly */ var Plotly = {newPlot: function(){}};\n"), 20000) // ~1 MB
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &plotlyFile{path: file, work: newLifetime(t.Context())}
	h := withSecurityHeaders(http.HandlerFunc(p.serve))
	first := get(t, h, "GET", PlotlyPath, map[string]string{"Accept-Encoding": "gzip"})
	if b := body(t, first); first.StatusCode != 200 || first.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, js) {
		t.Fatalf("the first request: %d %v, %d bytes", first.StatusCode, first.Header, len(b))
	}
	gz, zipped := gzipped(t, p, h)
	if gz.Header.Get("Vary") != "Accept-Encoding" || gz.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || len(zipped) >= len(js)/10 {
		t.Fatalf("gzip: %d %v, %d bytes of %d", gz.StatusCode, gz.Header, len(zipped), len(js))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	if inflated, _ := io.ReadAll(zr); !bytes.Equal(inflated, js) {
		t.Fatalf("inflated: %d bytes, not the file", len(inflated))
	}
	kept := p.gz
	if r, _ := gzipped(t, p, h); r == nil || &p.gz[0] != &kept[0] || p.making != "" {
		t.Fatalf("compressed again for an unchanged file")
	}
	if r := get(t, h, "GET", PlotlyPath, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gz.Header.Get("ETag")}); r.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", r.StatusCode)
	}
	plain := get(t, h, "GET", PlotlyPath, nil)
	if b := body(t, plain); plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, js) {
		t.Fatalf("plain: %d %v %d bytes", plain.StatusCode, plain.Header, len(b))
	}
	if r := get(t, h, "GET", PlotlyPath, map[string]string{"Accept-Encoding": "gzip;q=0"}); r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("gzip;q=0 got gzip")
	}
	// A new version of the file is compressed again.
	js2 := append(js, []byte("var v2 = 1;\n")...)
	if err := os.WriteFile(file, js2, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, zipped := gzipped(t, p, h)
	zr, _ = gzip.NewReader(bytes.NewReader(zipped))
	if inflated, _ := io.ReadAll(zr); !bytes.Equal(inflated, js2) || r.Header.Get("ETag") == gz.Header.Get("ETag") {
		t.Fatalf("after the file changed: %d bytes, etag %s", len(inflated), r.Header.Get("ETag"))
	}
	// Missing, unset: a 404 saying what to do.
	for _, path := range []string{filepath.Join(dir, "missing.js"), "", dir} {
		p := &plotlyFile{path: path, work: newLifetime(t.Context())}
		r := get(t, withSecurityHeaders(http.HandlerFunc(p.serve)), "GET", PlotlyPath, nil)
		if b := string(body(t, r)); r.StatusCode != http.StatusNotFound || !strings.Contains(b, "python3-plotly") || !strings.Contains(b, "--plotly-js") {
			t.Errorf("plotly.js at %q: %d %s", path, r.StatusCode, b)
		}
		if r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("404 without the CSP")
		}
	}
}

// TestPlotlyOverTheBoundIsNotKeptInMemory: a plotly.js larger than
// MaxPlotlyBytes is served plain from disk, never compressed into memory.
func TestPlotlyOverTheBoundIsNotKeptInMemory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plotly.js")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxPlotlyBytes + 1); err != nil { // sparse: no disk cost
		t.Fatal(err)
	}
	f.Close()
	p := &plotlyFile{path: file, work: newLifetime(t.Context())}
	r := get(t, http.HandlerFunc(p.serve), "GET", PlotlyPath, map[string]string{"Accept-Encoding": "gzip"})
	if n, _ := io.Copy(io.Discard, r.Body); r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "" || n != MaxPlotlyBytes+1 || p.gz != nil || p.making != "" {
		t.Fatalf("over the bound: %d %v %d bytes, kept %d", r.StatusCode, r.Header, n, len(p.gz))
	}
}

// TestCloseStopsThePlotlyCompression: the compression a gzip request of
// plotly.js starts belongs to the handler: Close cancels it between two
// reads and returns only once it has ended; after Close a request still
// gets plotly.js (plain) and starts no compression.
func TestCloseStopsThePlotlyCompression(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plotly.js")
	js := bytes.Repeat([]byte("/* plotly */ var Plotly = {newPlot: function(){}};\n"), 20000) // ~1 MB: many reads
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	hd := New(Options{PlotlyJS: file})
	reading := make(chan struct{})
	var reads atomic.Int32
	hd.plotlyReadHook = func(ctx context.Context) {
		if reads.Add(1) == 1 {
			close(reading)
		}
		<-ctx.Done() // the compression goes on only when Close lets it
	}
	h := hd.Static()
	gzipHeader := map[string]string{"Accept-Encoding": "gzip"}
	if r := get(t, h, "GET", PlotlyPath, gzipHeader); r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("the first request: %d %v", r.StatusCode, r.Header)
	}
	select {
	case <-reading:
	case <-time.After(time.Minute):
		t.Fatalf("no compression started")
	}
	if n := hd.work.running.Load(); n != 1 {
		t.Fatalf("%d compressions running, want 1", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := hd.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := hd.work.running.Load(); n != 0 {
		t.Fatalf("Close returned with %d compressions still running", n)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("the compression read %d times after its context ended, want it to stop at the first", n)
	}
	r := get(t, h, "GET", PlotlyPath, gzipHeader)
	if b := body(t, r); r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, js) {
		t.Fatalf("after Close: %d %v, %d bytes", r.StatusCode, r.Header, len(b))
	}
	if n := hd.work.running.Load(); n != 0 || reads.Load() != 1 {
		t.Fatalf("a request after Close started a compression (%d running, %d reads)", n, reads.Load())
	}
}
