package httpapi_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/httpapi"
)

func TestProbes(t *testing.T) {
	var ready atomic.Bool
	mux := http.NewServeMux()
	httpapi.Probes(mux, func() error {
		if !ready.Load() {
			return errors.New("projections catching up: 10 of 20 events")
		}
		return nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/health", "/livez"} {
		if code, body := get(p); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
			t.Fatalf("%s = %d %s", p, code, body)
		}
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "catching up") {
		t.Fatalf("/readyz before ready = %d %s", code, body)
	}
	ready.Store(true)
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz when ready = %d %s", code, body)
	}
}
