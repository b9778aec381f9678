package auth

import (
	"bytes"
	"testing"
	"time"
)

// FuzzPrincipalsFile: whatever the bytes, the parser returns records or an
// error (no panic), and what it accepts survives a write and a re-read
// unchanged.
func FuzzPrincipalsFile(f *testing.F) {
	good, _ := encodePrincipalsFile([]Record{
		{Name: "alice", Scopes: ScopeRead | ScopeExecute, MaxKernels: 2, Hash: HashToken("a"), Created: time.Unix(1e9, 0)},
		{Name: "bob", Scopes: ScopeAdmin, Hash: HashToken("b"), Created: time.Unix(1e9, 0), Rotated: time.Unix(1e9+5, 0), Revoked: time.Unix(1e9+9, 0)},
	})
	for _, seed := range [][]byte{
		good, nil, []byte("{}"), []byte(`{"version":1,"principals":[]}`), []byte(`{"version":2,"principals":[]}`),
		[]byte(`{"version":1,"principals":[{"name":"admin","token_sha256":"` + HashToken("x").String() + `","scopes":"read","created":"2026-01-01T00:00:00Z"}]}`),
		[]byte(`{"version":1,"principals":[{"name":"a","token_sha256":"zz","scopes":"read","created":"2026-01-01T00:00:00Z"}]}`),
		[]byte(`{"version":1,"principals":[{"name":"a","token_sha256":"` + HashToken("x").String() + `","scopes":"fly","created":"2026-01-01T00:00:00Z"}]}`),
		[]byte(`{"version":1,"principals":[{"name":"a","token_sha256":"` + HashToken("x").String() + `","scopes":"read","created":"2026-01-01T00:00:00Z","max_kernels":-1}]}`),
		[]byte(`{"version":1,"extra":1}`), []byte(`{"version":1}{"version":1}`), []byte("\x00\xff"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParsePrincipalsFile(data)
		if err != nil {
			return
		}
		out, err := encodePrincipalsFile(recs)
		if err != nil {
			t.Fatalf("accepted records do not encode: %v", err)
		}
		again, err := ParsePrincipalsFile(out)
		if err != nil {
			t.Fatalf("the parser refuses what the store writes: %v\n%s", err, out)
		}
		out2, _ := encodePrincipalsFile(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("a write and re-read changed the file:\n%s\n%s", out, out2)
		}
	})
}

// TestPrincipalsFileFaults: each fault of a hand-edited file is refused,
// saying where.
func TestPrincipalsFileFaults(t *testing.T) {
	h := HashToken("x").String()
	rec := func(fields string) []byte {
		return []byte(`{"version":1,"principals":[` + fields + `]}`)
	}
	for _, c := range []struct {
		data []byte
		want string
	}{
		{rec(`{"name":"admin","token_sha256":"` + h + `","scopes":"read","created":"2026-01-01T00:00:00Z"}`), "reserved"},
		{rec(`{"name":"a","token_sha256":"` + h + `","scopes":"read","created":"2026-01-01T00:00:00Z"},{"name":"b","token_sha256":"` + h + `","scopes":"read","created":"2026-01-01T00:00:00Z"}`), "same token hash"},
		{rec(`{"name":"a","token_sha256":"` + h + `","scopes":"read","created":"2026-01-01T00:00:00Z"},{"name":"a","token_sha256":"` + HashToken("y").String() + `","scopes":"read","created":"2026-01-01T00:00:00Z"}`), "twice"},
		{rec(`{"name":"a","token_sha256":"abc","scopes":"read","created":"2026-01-01T00:00:00Z"}`), "hex digits"},
		{rec(`{"name":"a","token_sha256":"` + h + `","scopes":"fly","created":"2026-01-01T00:00:00Z"}`), "unknown scope"},
		{rec(`{"name":"A","token_sha256":"` + h + `","scopes":"read","created":"2026-01-01T00:00:00Z"}`), "not allowed"},
		{rec(`{"name":"a","token":"` + h + `"}`), "unknown field"},
		{[]byte(`{"version":9,"principals":[]}`), "version 9"},
	} {
		if _, err := ParsePrincipalsFile(c.data); err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: %v, want an error saying %q", c.data, err, c.want)
		}
	}
}
