package assetstore

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// Reader is what the HTTP handler serves from: actors/lease implements it,
// so every fetch renews the asset's lease. Read returns an open file (the
// caller closes it), its size and its MIME type; errors wrapping ErrNotFound
// or *BadSumError become 404 and 400.
type Reader interface {
	ReadAsset(ctx context.Context, sum string) (io.ReadSeekCloser, int64, string, error)
}

// Handler serves GET <prefix><sha256> from r with the asset's Content-Type.
// Mount it behind the same auth as the rest of the server.
func Handler(prefix string, r Reader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed: fetch assets with GET.", http.StatusMethodNotAllowed)
			return
		}
		sum := strings.TrimPrefix(req.URL.Path, prefix)
		if !ValidSum(sum) {
			http.Error(w, (&BadSumError{Sum: sum}).Error(), http.StatusBadRequest)
			return
		}
		f, _, mime, err := r.ReadAsset(req.Context(), sum)
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "Not found: asset "+sum+" is not stored (never produced, or collected after its lease expired).", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "Could not read asset "+sum+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", mime)
		h.Set("X-Content-Type-Options", "nosniff")
		// NB: an HTML or SVG asset is kernel output: never let it run as
		// this origin's script.
		h.Set("Content-Security-Policy", "sandbox")
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
		h.Set("ETag", `"`+sum+`"`)
		http.ServeContent(w, req, "", time.Time{}, f)
	})
}
