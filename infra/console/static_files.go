package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// ContentSecurityPolicy is sent on every /ui/ response. Outputs are
// untrusted (an agent's): the page draws HTML and Plotly figures in
// sandboxed frames without allow-same-origin, and this policy keeps the
// page itself to its own scripts (no inline script, no eval, nothing from
// another origin), so an output that escaped a frame still could not run.
// NB: connect-src 'self' covers the same-origin /ws in Chromium and
// Firefox (CSP Level 3 matches ws: and wss: of the page's host).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; connect-src 'self'; frame-src 'self' blob: data:; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// securityHeaders sets the headers every /ui/ response carries.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// NB: the first load's address holds ?token=: no Referer may carry it
	// anywhere, not even to this server's own subresources.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// withSecurityHeaders wraps next so that every answer carries them.
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

// PlotlyPath is where the page loads plotly.js from.
const PlotlyPath = "/ui/vendor/plotly.js"

// MaxPlotlyBytes bounds the plotly.js file kept compressed in memory (the
// Debian one is about 8.6 MB, 2.6 MB gzipped); a larger file is served
// from disk as it is, uncompressed.
const MaxPlotlyBytes = 32 << 20

// staticRoutes serves the page: index.html at /ui/, the embedded scripts
// and styles, /ui/vendor/plotly.js from disk. Nothing here reads kernel
// data or needs a token. NB: Static is built once per server, so the
// caches below live once.
func (h *Handler) staticRoutes(mux *http.ServeMux) {
	page := &pageFiles{fs: h.static}
	plotly := &plotlyFile{path: h.opts.PlotlyJS, work: h.work, readHook: h.plotlyReadHook}
	mux.Handle("GET "+PlotlyPath, withSecurityHeaders(http.HandlerFunc(plotly.serve)))
	mux.Handle("GET /ui/", withSecurityHeaders(page))
	mux.Handle("/ui/", withSecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed: the console's page and scripts are read with GET; its commands are under /ui/api/.", http.StatusMethodNotAllowed)
	})))
}

// pageFiles serves the embedded page, each file's ETag computed once.
type pageFiles struct {
	fs    fs.FS
	mu    sync.Mutex
	files map[string]embeddedFile // NB: bounded: the embedded tree is fixed at build time
}

// embeddedFile is one file of the page with its validator.
type embeddedFile struct {
	data []byte
	etag string
	mime string
}

// embedded returns the embedded file at name (relative to static/), its
// ETag computed once.
func (p *pageFiles) embedded(name string) (embeddedFile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.files[name]; ok {
		return f, true
	}
	data, err := fs.ReadFile(p.fs, name)
	if err != nil {
		return embeddedFile{}, false
	}
	sum := sha256.Sum256(data)
	f := embeddedFile{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, mime: contentType(name)}
	if p.files == nil {
		p.files = map[string]embeddedFile{}
	}
	p.files[name] = f
	return f, true
}

// contentType is the Content-Type of a page file by its extension.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// ServeHTTP serves GET /ui/<file> from the embedded page.
func (p *pageFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	if strings.HasSuffix(name, "/") || strings.Contains(name, "..") || !fs.ValidPath(name) {
		http.Error(w, fmt.Sprintf("Not found: %s is no file of the console; open /ui/.", r.URL.Path), http.StatusNotFound)
		return
	}
	f, ok := p.embedded(name)
	if !ok {
		http.Error(w, fmt.Sprintf("Not found: %s is no file of the console; open /ui/.", r.URL.Path), http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.mime)
	hd.Set("ETag", f.etag)
	if name == "index.html" {
		// NB: its address may hold ?token=: kept out of every cache.
		hd.Set("Cache-Control", "no-store")
		hd.Del("ETag")
	} else {
		// Revalidated on each load (304 when unchanged): a new binary's
		// scripts are never mixed with an old page's.
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// plotlyFile serves Options.PlotlyJS, gzipped once per version of the file
// when it is at most MaxPlotlyBytes. NB: the compression runs beside the
// requests, never in front of them: Debian's 8.6 MB file takes about 0.7 s
// to compress (ten times that under the race detector), and the first page
// to ask must not wait for it; until it is done the file goes out plain.
type plotlyFile struct {
	path string
	work *lifetime // owns the compression; closed, none starts
	// readHook, when set (tests), runs before each read of the file
	// while compressing, with the compression's context.
	readHook func(ctx context.Context)

	mu     sync.Mutex
	key    string // size and mtime of the file gz was made from
	gz     []byte // one version only: the memory is bounded by MaxPlotlyBytes
	gzTag  string
	making string        // the key being compressed, "" when none
	made   chan struct{} // closed when that compression ends
}

func (p *plotlyFile) serve(w http.ResponseWriter, r *http.Request) {
	notFound := func(why string) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Not found: plotly.js is not available on this server ("+why+"). Install Debian's python3-plotly "+
			"(it ships /usr/share/python3-plotly/plotly.js) or start the server with --plotly-js pointing at a plotly.js file; "+
			"until then the console shows Plotly figures by their image or HTML fallback.", http.StatusNotFound)
	}
	if p.path == "" {
		notFound("--plotly-js is empty")
		return
	}
	f, err := os.Open(p.path)
	if err != nil {
		notFound(fmt.Sprintf("%s: %v", p.path, errors.Unwrap(err)))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		notFound(p.path + " is not a regular file")
		return
	}
	key := plotlyKey(st)
	hd := w.Header()
	hd.Set("Content-Type", "text/javascript; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) && r.Header.Get("Range") == "" && st.Size() <= MaxPlotlyBytes {
		if gz, tag, ok := p.compressed(key); ok {
			hd.Set("Content-Encoding", "gzip")
			hd.Set("ETag", tag)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(gz))
			return
		}
	}
	hd.Set("ETag", `"`+key+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// plotlyKey names a version of the file.
func plotlyKey(st os.FileInfo) string {
	return fmt.Sprintf("%x-%x", st.Size(), st.ModTime().UnixNano())
}

// compressed returns the gzip of the file's version key when it is made;
// otherwise it starts making it (one compression at a time) and reports
// false.
func (p *plotlyFile) compressed(key string) ([]byte, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == key && p.gz != nil {
		return p.gz, p.gzTag, true
	}
	if p.making == "" {
		made := make(chan struct{})
		// NB: owned by the handler's lifetime: Close cancels it (checked
		// between reads) and waits for it.
		if p.work.spawn(func(ctx context.Context) { p.compress(ctx, key, made) }) {
			p.making, p.made = key, made
		}
	}
	return nil, "", false
}

// compress gzips the file if it is still version key, and keeps it.
func (p *plotlyFile) compress(ctx context.Context, key string, done chan struct{}) {
	defer close(done)
	gz, err := gzipFile(ctx, p.path, key, p.readHook)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.making = ""
	if err == nil {
		p.key, p.gz, p.gzTag = key, gz, `"`+key+`-gz"`
	}
	// NB: a failure (the file changed or went) is retried by the next request.
}

// gzipFile compresses the file at path if its version is still key,
// stopping with ctx's error between two reads once ctx ends.
func gzipFile(ctx context.Context, path, key string, hook func(context.Context)) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if plotlyKey(st) != key {
		return nil, fmt.Errorf("compress %s: it changed", path)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	// NB: read at most the bound (the file may grow after the stat).
	n, err := io.Copy(zw, io.LimitReader(ctxReader{ctx: ctx, r: f, hook: hook}, MaxPlotlyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("compress %s: %w", path, err)
	}
	if n > MaxPlotlyBytes || n != st.Size() {
		return nil, fmt.Errorf("compress %s: it changed while read", path)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ctxReader reads r until ctx ends.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	hook func(context.Context)
}

func (c ctxReader) Read(b []byte) (int, error) {
	if c.hook != nil {
		c.hook(c.ctx)
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// acceptsGzip reports whether r's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}
