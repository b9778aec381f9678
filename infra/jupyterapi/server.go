package jupyterapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Options configure a Server. A nil backend leaves its routes unmounted.
type Options struct {
	Kernels  Kernels
	Channels Channels
	Contents Contents
	// ChannelsWriteTimeout bounds one write to a channels WebSocket (0:
	// 30 s).
	ChannelsWriteTimeout time.Duration
	// ContentsMaxBody bounds a /api/contents request body in bytes
	// (0: DefaultContentsMaxBody); a bigger one is refused with 413.
	ContentsMaxBody int64
	// Version is what GET /api answers as {"version": ...}.
	Version string
	Logger  *slog.Logger
}

// Server is the Jupyter Server API edge.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	ch   channelsState // the channels WebSockets (channels.go)
}

// New builds the Server.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if opts.Kernels != nil {
		s.routesKernels(s.mux)
	}
	if opts.Channels != nil {
		s.routesChannels(s.mux)
	}
	if opts.Contents != nil {
		s.routesContents(s.mux)
	}
	return s
}

// Handler serves /api/... and /kernelspecs/...; mount it at both prefixes.
func (s *Server) Handler() http.Handler { return s.mux }

// apiError is jupyter_server's error body.
type apiError struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// writeError answers as jupyter_server does: {"message", "reason"}, where
// reason is the status's text unless given.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, apiError{Message: message, Reason: http.StatusText(status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
