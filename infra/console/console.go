package console

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

//go:embed static
var staticFiles embed.FS

// Options say what the console reads and does.
type Options struct {
	// Source answers the "now" reads (now.go).
	Source Source
	// Steerer carries out the person's commands (steer.go).
	Steerer Steerer
	// Replay answers the "then" reads: the server's own replay (then.go).
	Replay Replayer
	// PlotlyJS is the path of plotly.js served at /ui/vendor/plotly.js
	// (Debian's python3-plotly ships /usr/share/python3-plotly/plotly.js).
	// Empty or missing: Plotly figures are shown by their static fallback.
	PlotlyJS string
	Logger   *slog.Logger
	// Context bounds the handler's own background work (compressing
	// plotly.js); nil is context.Background(). Close ends it as well.
	Context context.Context
}

// Handler serves the console. Its background work (plotly.js gzipped
// beside the requests) is its own: Close stops it and waits for it.
type Handler struct {
	opts   Options
	static fs.FS
	work   *lifetime
	// plotlyReadHook, when set (tests, before Static), runs before each
	// read of plotly.js while it is compressed.
	plotlyReadHook func(ctx context.Context)
}

// lifetime owns the handler's goroutines: they run under ctx and are
// counted in wg; once closed no new one starts.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// running counts the goroutines under way (tests read it).
	running atomic.Int32
}

// newLifetime is a lifetime ending with parent or at close.
func newLifetime(parent context.Context) *lifetime {
	ctx, cancel := context.WithCancel(parent)
	return &lifetime{ctx: ctx, cancel: cancel}
}

// spawn runs fn in a goroutine the lifetime owns, unless it is closed
// (then it reports false and fn never runs).
func (l *lifetime) spawn(fn func(ctx context.Context)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	l.running.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.running.Add(-1)
		fn(l.ctx)
	}()
	return true
}

// Close stops the handler's background work and returns once it has
// ended, or with ctx's error when ctx ends first. Requests served after
// Close still work; they start no background work.
func (h *Handler) Close(ctx context.Context) error {
	l := h.work
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close the console: its background work did not end: %w", ctx.Err())
	}
}

// New returns the console's handlers.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // NB: the embedded tree always has static/
	}
	parent := opts.Context
	if parent == nil {
		parent = context.Background()
	}
	return &Handler{opts: opts, static: sub, work: newLifetime(parent)}
}

// API serves /ui/api/: mount it behind mcpserver.Guard.
func (h *Handler) API() http.Handler {
	mux := http.NewServeMux()
	h.nowRoutes(mux)
	h.steerRoutes(mux)
	h.thenRoutes(mux)
	return mux
}

// Static serves /ui/ (the page, its scripts, styles and vendor files):
// no token, nothing of the kernels.
func (h *Handler) Static() http.Handler {
	mux := http.NewServeMux()
	h.staticRoutes(mux)
	h.frameRoutes(mux) // frame.go: the output frame's own CSP
	return mux
}
