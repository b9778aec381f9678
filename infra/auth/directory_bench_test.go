package auth

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// BenchmarkAuthenticate1000Principals: a token check with 1,000 principals
// costs what it costs with one (a map keyed by the token's hash, never a
// walk of the table). Reports ns per check at 1 and 1,000 principals and
// their ratio.
func BenchmarkAuthenticate1000Principals(b *testing.B) {
	const checks = 200_000
	perCheck := func(n int) float64 {
		dir := b.TempDir()
		reqs := make([]*http.Request, 0, n)
		recs := make([]Record, 0, n)
		for i := range n {
			tok, err := NewToken()
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, Record{Name: fmt.Sprintf("p%d", i), Scopes: ScopeRead, Hash: HashToken(tok), Created: time.Now()})
			reqs = append(reqs, bearerRequest(tok))
		}
		data, err := encodePrincipalsFile(recs)
		if err != nil {
			b.Fatal(err)
		}
		if err := atomicfile.Write(filepath.Join(dir, PrincipalsFile), data); err != nil {
			b.Fatal(err)
		}
		d, err := OpenTokenDirectory(DirectoryOptions{DataDir: dir, AdminToken: "admin-token-0123456789", PollEvery: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		for i := range checks / 10 { // warm-up
			d.Authenticate(reqs[i%n])
		}
		start := time.Now()
		for i := range checks {
			if _, err := d.Authenticate(reqs[i%n]); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / checks
	}
	var one, thousand float64
	for b.Loop() {
		one, thousand = perCheck(1), perCheck(1000)
	}
	b.ReportMetric(one, "ns/check-1")
	b.ReportMetric(thousand, "ns/check-1000")
	b.ReportMetric(thousand/one, "ratio-1000-vs-1")
}
