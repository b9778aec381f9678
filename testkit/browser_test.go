package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBrowserDrivesARealPage: the driver loads a page from a Go server,
// waits for script-made text, clicks, evaluates, and records a script error
// the page throws (and only that one).
func TestBrowserDrivesARealPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><button id=b>go</button><p id=out></p>
<script>
document.getElementById('b').onclick = () => { document.getElementById('out').textContent = 'clicked ' + location.search; };
setTimeout(() => { throw new Error('deliberate failure'); }, 10);
</script>`))
	}))
	defer srv.Close()
	b := StartBrowser(t)
	if !strings.Contains(b.Version, ".") {
		t.Fatalf("browser version %q", b.Version)
	}
	p := b.NewPage(390, 844)
	if st := p.Goto(t, srv.URL+"/?x=1"); st != 200 {
		t.Fatalf("status %d", st)
	}
	p.Click(t, "#b")
	p.WaitFor(t, "#out", "clicked ?x=1", 10*time.Second)
	var width int
	p.Eval(t, "() => window.innerWidth", nil, &width)
	if width != 390 {
		t.Fatalf("innerWidth %d, want 390", width)
	}
	if err := p.TryWaitFor("#nothing", "", 300*time.Millisecond); err == nil {
		t.Fatal("waiting for an element that is not there succeeded")
	}
	WaitUntil(t, 10*time.Second, "the thrown error is recorded", func() (bool, string) {
		errs := p.Errors(t)
		return len(errs) == 1 && strings.Contains(errs[0].Text, "deliberate failure"), ""
	})
	if m := p.Metrics(t, true); m["JSHeapUsedSize"] <= 0 {
		t.Fatalf("no JSHeapUsedSize in %v", m)
	}
}
