package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// StatusError is an error the API answers with its own status: what a
// Source, Steerer or Replayer returns for bad input (400), a missing scope
// (403), an unknown or foreign id (404), a wrong state (409), a body too
// large (413), or a server that is starting or draining (503). Any other
// error answers 500 with its text.
type StatusError struct {
	Status int
	Msg    string // what was wrong and what to do
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf returns a *StatusError with status and the formatted message.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// MaxBodyBytes bounds a request body of the API: the largest legitimate one
// is a checkpoint name or a confirm flag, a few hundred bytes.
const MaxBodyBytes = 64 << 10

// errorBody is every error's JSON.
type errorBody struct {
	Error string `json:"error"`
}

// respondJSON writes v as the JSON answer. API answers are never cached:
// they hold kernel data.
func respondJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respondError writes err as {"error": ...} with its status (500 for an
// error that carries none).
func respondError(w http.ResponseWriter, err error) {
	var se *StatusError
	if errors.As(err, &se) {
		respondJSON(w, se.Status, errorBody{Error: se.Msg})
		return
	}
	respondJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
}

// decodeBody reads r's JSON body into v, at most MaxBodyBytes of it. An
// empty body leaves v as it is (every field of our bodies is optional or
// checked by the caller). Errors are *StatusError: 413 for a body over the
// bound, 400 for anything that is not one JSON object of v's shape.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return Errorf(http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json), not %q", clip(ct, 60))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return Errorf(http.StatusRequestEntityTooLarge, "request body too large: the console's API accepts at most %d bytes per request; send only the fields the endpoint names", MaxBodyBytes)
		}
		return Errorf(http.StatusBadRequest, "read the request body: %v", err)
	}
	return parseBody(body, v)
}

// parseBody decodes one JSON object of v's shape from body; unknown fields
// are refused (a typo such as "confirmed" must not pass as a missing flag).
func parseBody(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "the body is not the JSON this endpoint takes (%s): see docs/console.md for its fields", clip(err.Error(), 160))
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "the body holds more than one JSON value: send one object")
	}
	return nil
}

// principal is the caller the Guard put in the request's context; none is
// a server bug (the API is mounted behind the Guard), answered 401.
func principal(r *http.Request) (auth.Principal, error) {
	p, ok := auth.FromContext(r.Context())
	if !ok || p.Name == "" {
		return auth.Principal{}, Errorf(http.StatusUnauthorized, "no principal: send \"Authorization: Bearer <token>\"")
	}
	return p, nil
}
