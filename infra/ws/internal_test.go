package ws

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

func TestQueueBound(t *testing.T) {
	q := newQueue(3, 100)
	for i := range 3 {
		if !q.push(frame{seq: uint64(i + 1), data: []byte("x")}) {
			t.Fatalf("push %d refused under the bound", i)
		}
	}
	if q.push(frame{seq: 4, data: []byte("x")}) {
		t.Fatal("push past the message bound accepted")
	}
	if n, b := q.size(); n != 0 || b != 0 {
		t.Fatalf("overflowed queue still holds %d frames, %d bytes", n, b)
	}
	if _, over := q.take(nil); !over {
		t.Fatal("overflow not reported")
	}
	q = newQueue(100, 10)
	if !q.push(frame{seq: 1, data: make([]byte, 6)}) || q.push(frame{seq: 2, data: make([]byte, 6)}) {
		t.Fatal("byte bound not enforced")
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		q    string
		ok   bool
		want request
	}{
		{"", true, request{}},
		{"kernel=k-1_a&since=5&token=t", true, request{kernel: "k-1_a", since: 5, hasSince: true}},
		{"since=0", true, request{hasSince: true}},
		{"since=-1", false, request{}},
		{"since=18446744073709551616", false, request{}},
		{"kernel=", false, request{}},
		{"kernel=" + strings.Repeat("a", 129), false, request{}},
		{"kernel=a%2F..", false, request{}},
		{"foo=1", false, request{}},
	} {
		v, _ := url.ParseQuery(tc.q)
		got, err := parseRequest(v)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%q: %+v %v", tc.q, got, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"", "since=1", "kernel=k&since=2", "since=x", "kernel=../..", "a=b&a=c", "since=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := parseRequest(v)
		if err != nil {
			return
		}
		if r.kernel != "" && !validKernel(r.kernel) {
			t.Fatalf("accepted kernel %q", r.kernel)
		}
	})
}

func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"type":"pong"}`, `{`, `[]`, `{"type":"ping"}{"type":"ping"}`, `null`, `{"type":"ping","x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := parseClientMessage(b); err == nil && !strings.Contains(string(b), "ping") {
			t.Fatalf("accepted %q", b)
		}
	})
}

// TestKernelParameterTakesTheUUIDForm: /ws?kernel= names a kernel in
// either form of its id (frontends show the UUID one).
func TestKernelParameterTakesTheUUIDForm(t *testing.T) {
	id := events.NewID(time.Now())
	uuid, _ := events.UUIDForm(id)
	for _, given := range []string{id, uuid} {
		r, err := parseRequest(url.Values{"kernel": {given}})
		if err != nil || r.kernel != id {
			t.Fatalf("kernel=%s: %q %v, want %s", given, r.kernel, err, id)
		}
	}
}
