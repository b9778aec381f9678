package mcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxRequestBytes bounds a request body when Options.MaxRequestBytes
// is zero. The largest legitimate body is an execute call with
// DefaultMaxCodeBytes (1 MiB) of code; JSON escaping can make that up to six
// times larger (every '<' becomes \u003c), so 8 MiB leaves room without
// letting a client make the server hold tens of megabytes per request.
const DefaultMaxRequestBytes = 8 << 20

// BodyLimit bounds request bodies, for /mcp and any other route that reads
// one (a Jupyter API's PUTs later). It refuses with 413 and says the limit:
//
//   - a declared Content-Length over Max is refused before a byte of the
//     body is read (the connection is then closed, so the rest is never
//     received either);
//   - a body without a length (chunked) is read by the handler through a
//     reader that stops at Max; once it has stopped, whatever the handler
//     answers is replaced by the 413.
//
// Nothing is buffered here: the handler reads as it always did, at most Max
// bytes. With JSONRPC the refusal is a JSON-RPC error object (the shape an
// MCP client parses); otherwise plain text.
type BodyLimit struct {
	Max     int64
	JSONRPC bool
	// Setting names what raises the limit, for the message
	// ("--max-request-bytes").
	Setting string
	Logger  *slog.Logger
	// Unsized, when set, bounds how many bodies without a declared length
	// are read at once (shared by every BodyLimit given the same value).
	Unsized *UnsizedBodies
}

// UnsizedBodies bounds the bodies without a Content-Length (chunked) that
// are being read at once. NB: a handler such as mcp-go's reads a body whole
// into memory, and a chunked one can only be refused once the limit has
// been read: without this bound, n chunked bodies cost about 2·n·Max at
// once. MCP clients send Content-Length, so waiting here costs them nothing.
type UnsizedBodies struct {
	slots chan struct{}
	wait  time.Duration
}

// NewUnsizedBodies allows n bodies without a length to be read at once; a
// further one waits up to wait, then gets 503.
func NewUnsizedBodies(n int, wait time.Duration) *UnsizedBodies {
	return &UnsizedBodies{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

// acquire takes a slot, or reports false when none freed within the wait
// or the request ended.
func (u *UnsizedBodies) acquire(r *http.Request) (release func(), ok bool) {
	t := time.NewTimer(u.wait)
	defer t.Stop()
	select {
	case u.slots <- struct{}{}:
	case <-t.C:
		return nil, false
	case <-r.Context().Done():
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { <-u.slots }) }, true
}

// Wrap returns next behind the limit.
func (l BodyLimit) Wrap(next http.Handler) http.Handler {
	if l.Max <= 0 {
		l.Max = DefaultMaxRequestBytes
	}
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > l.Max {
			log.Warn("http: refused a request body over the limit", "path", r.URL.Path, "remote", r.RemoteAddr,
				"content_length", r.ContentLength, "limit", l.Max)
			l.refuse(w, r.ContentLength)
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		release := func() {}
		if r.ContentLength < 0 && l.Unsized != nil {
			var ok bool
			if release, ok = l.Unsized.acquire(r); !ok {
				log.Warn("http: too many bodies without a length at once", "path", r.URL.Path, "remote", r.RemoteAddr)
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Connection", "close")
				http.Error(w, "Service busy: too many request bodies without a Content-Length are being read at once. "+
					"Send a Content-Length, or retry.", http.StatusServiceUnavailable)
				return
			}
			defer release()
		}
		lw := &limitedWriter{ResponseWriter: w, limit: l}
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, l.Max), w: lw, done: release}
		next.ServeHTTP(lw, r)
		if lw.exceeded() {
			lw.refuseOnce() // in case the handler stopped at the limit and wrote nothing
			log.Warn("http: refused a request body over the limit", "path", r.URL.Path, "remote", r.RemoteAddr, "limit", l.Max)
		}
	})
}

// refuse writes the 413. NB: Connection: close makes the server drop the
// connection instead of reading the rest of the body to reuse it.
func (l BodyLimit) refuse(w http.ResponseWriter, declared int64) {
	msg := fmt.Sprintf("Request body too large: this server accepts at most %d bytes per request", l.Max)
	if declared > 0 {
		msg = fmt.Sprintf("Request body too large: %d bytes, and this server accepts at most %d bytes per request", declared, l.Max)
	}
	if l.Setting != "" {
		msg += " (" + l.Setting + ")"
	}
	msg += ". Send less per call: split code over several execute calls, or write large data to a file in pieces."
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Cache-Control", "no-store")
	if !l.JSONRPC {
		http.Error(w, msg, http.StatusRequestEntityTooLarge)
		return
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": -32600, "message": msg, "data": map[string]any{"max_request_bytes": l.Max}}})
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = w.Write(append(body, '\n'))
}

// limitedBody notes when the handler's read hit the limit, and calls done
// once the body has been read to its end or failed (an unsized body's slot
// is free from then on).
type limitedBody struct {
	io.ReadCloser
	w    *limitedWriter
	done func()
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.w.markExceeded()
		}
		b.done()
	}
	return n, err
}

// limitedWriter passes the handler's answer through until the body went
// over the limit; from then on it answers the 413 and drops the handler's.
type limitedWriter struct {
	http.ResponseWriter
	limit BodyLimit

	mu      sync.Mutex
	over    bool
	wrote   bool // the handler's answer went out before the limit was hit
	refused bool
}

func (w *limitedWriter) markExceeded() {
	w.mu.Lock()
	w.over = true
	w.mu.Unlock()
}

func (w *limitedWriter) exceeded() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.over
}

// refuseOnce writes the 413 unless something was written already; it
// reports whether the handler's output must be dropped.
func (w *limitedWriter) refuseOnce() bool {
	w.mu.Lock()
	if w.wrote {
		w.mu.Unlock()
		return false
	}
	if w.refused {
		w.mu.Unlock()
		return true
	}
	w.refused = true
	w.mu.Unlock()
	w.limit.refuse(w.ResponseWriter, 0)
	return true
}

// intercept decides, before the handler's first header or byte goes out,
// whether it goes out at all.
func (w *limitedWriter) intercept() bool {
	w.mu.Lock()
	over, wrote := w.over, w.wrote
	if !over {
		w.wrote = true
	}
	w.mu.Unlock()
	if !over || wrote {
		return false
	}
	return w.refuseOnce()
}

func (w *limitedWriter) WriteHeader(code int) {
	if w.intercept() {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.intercept() {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets streaming handlers (SSE) flush through the wrapper.
func (w *limitedWriter) Flush() {
	if w.intercept() {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *limitedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
