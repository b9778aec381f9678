package console

import (
	"net/http"
)

// frameCSP is the policy of /ui/frame.html, the document every HTML and
// Plotly output is shown in (static/outputs.js, static/frame.js). The page's
// own policy allows no inline script, and documents made from the page
// (srcdoc, blob:, data:) inherit it, so an output's scripts — a Plotly
// figure's drawing, an HTML output's widgets — need a document served with
// a policy of its own. This one:
//   - sandbox allow-scripts: an opaque origin even if opened on its own
//     (not only when framed with the sandbox attribute), so nothing in it
//     reads the console's token, cookies or API, or navigates the page;
//   - scripts inline and from this server only ('self': plotly.js at
//     /ui/vendor/plotly.js), no network (connect-src 'none': an output
//     cannot send what it shows anywhere), no forms, no plugins;
//   - framed by the console only (frame-ancestors 'self').
//
// NB: keep this policy on this one document: the page's policy must stay
// strict.
const frameCSP = "sandbox allow-scripts; default-src 'none'; " +
	"script-src 'self' 'unsafe-inline' 'unsafe-eval' blob: data:; " +
	"style-src 'self' 'unsafe-inline' data:; img-src 'self' data: blob:; font-src 'self' data:; " +
	"media-src 'self' data: blob:; connect-src 'none'; frame-src 'none'; worker-src blob:; " +
	"form-action 'none'; base-uri 'none'; frame-ancestors 'self'"

// frameRoutes serves /ui/frame.html with frameCSP (owned by consoleout;
// the rest of /ui/ is staticRoutes').
func (h *Handler) frameRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/frame.html", h.serveFrame)
}

func (h *Handler) serveFrame(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", frameCSP)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, h.static, "frame.html")
}
