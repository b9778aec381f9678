package console

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
)

// frameCSP is the policy of /ui/frame.html, the document every HTML and
// Plotly output of the console page is shown in (static/outputs.js). The
// page's own policy allows no inline script, and documents made from the
// page (srcdoc, blob:, data:) inherit it, so an output's scripts — a Plotly
// figure's drawing, an HTML output's own — need a document served with a
// policy of its own. This one:
//   - sandbox allow-scripts: an opaque origin even when opened on its own
//     (not only when framed with the sandbox attribute), so nothing in it
//     reads the console's token, cookies or API, or navigates the page;
//   - inline scripts only: the frame loads nothing (the page sends it the
//     output and plotly.js by postMessage; a sandboxed document's requests
//     carry Origin: null, which the server's Host/Origin check refuses);
//   - no requests of its own: no fetch, XHR, WebSocket or EventSource
//     (connect-src 'none'), images, styles, fonts and media from data:
//     and blob: only, no forms (form-action 'none'), plugins or nested
//     frames (frame-src 'none');
//   - framed by the console only (frame-ancestors 'self').
//
// What keeps a frame from becoming someone else's page: the sandbox has
// no allow-top-navigation and no allow-popups (it cannot navigate the
// console or open a window), and the console page's own frame-src
// ('self' blob: data:, static_files.go) refuses a navigation of the
// frame itself to another origin (location.href, <meta http-equiv=
// refresh>): the remote page is never requested
// (TestConsoleOutputsHostile/frame_cannot_navigate_itself). This policy
// cannot do that part (Chromium does not implement navigate-to).
//
// What this does NOT block: WebRTC (no CSP directive governs
// RTCPeerConnection: a script can reach a STUN/TURN host of its choice,
// so what an output shows can leave through it), DNS resolution of names
// a script or prefetch asks for, navigating itself to another /ui/
// address of this server (same origin: it loads sandboxed, without the
// token, so the API answers 401), and CPU or memory (the page bounds how
// many frames it runs: FRAME_BUDGET in outputs.js).
//
// NB: this policy is for this one document: the page's must stay strict.
const frameCSP = "sandbox allow-scripts; default-src 'none'; " +
	"script-src 'unsafe-inline' 'unsafe-eval' blob:; style-src 'unsafe-inline' data: blob:; " +
	"img-src data: blob:; font-src data:; media-src data: blob:; connect-src 'none'; frame-src 'none'; " +
	"worker-src blob:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"

// Markers around frameBootstrap in static/outputs.js: the frame's only
// script is that function, so the page (frameURL) and the MCP Apps view
// (srcdoc) start their frames with the same code.
var (
	bootstrapStart = []byte("// <frame-bootstrap>")
	bootstrapEnd   = []byte("// </frame-bootstrap>")
)

// frameRoutes serves /ui/frame.html with frameCSP (owned by consoleout;
// the rest of /ui/ is staticRoutes').
func (h *Handler) frameRoutes(mux *http.ServeMux) {
	page := sync.OnceValues(func() ([]byte, error) { return framePage(h.static) })
	mux.HandleFunc("GET /ui/frame.html", func(w http.ResponseWriter, r *http.Request) {
		body, err := page()
		if err != nil {
			h.opts.Logger.Error("console: build frame.html", "err", err)
			http.Error(w, "the output frame is missing from this build: "+err.Error(), http.StatusInternalServerError)
			return
		}
		hd := w.Header()
		hd.Set("Content-Security-Policy", frameCSP)
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}

// framePage is /ui/frame.html: frameBootstrap from outputs.js, run.
func framePage(static fs.FS) ([]byte, error) {
	src, err := fs.ReadFile(static, "outputs.js")
	if err != nil {
		return nil, fmt.Errorf("read outputs.js: %w", err)
	}
	i := bytes.Index(src, bootstrapStart)
	j := bytes.Index(src, bootstrapEnd)
	if i < 0 || j < i {
		return nil, fmt.Errorf("outputs.js has no %s … %s section", bootstrapStart, bootstrapEnd)
	}
	code := src[i+len(bootstrapStart) : j]
	if k := bytes.Index(code, []byte("function frameBootstrap")); k >= 0 {
		code = code[k:] // drop the marker line's comment
	}
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>output</title>\n<script>\n")
	b.Write(code)
	b.WriteString("frameBootstrap();\n</script>\n</head>\n<body></body>\n</html>\n")
	return b.Bytes(), nil
}
