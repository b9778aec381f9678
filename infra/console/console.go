package console

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
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
}

// Handler serves the console.
type Handler struct {
	opts   Options
	static fs.FS
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
	return &Handler{opts: opts, static: sub}
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
