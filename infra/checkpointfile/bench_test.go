package checkpointfile

import (
	"crypto/rand"
	"os"
	"testing"
	"time"
)

// BenchmarkLoadPrivateCopy250MB: what the private copy of a load costs.
// Load verifies a 250 MB unencrypted checkpoint through one descriptor
// while copying its payload into a nameless file (what the kernel then
// reads); the baseline is verifying it in place (Verify: the same read
// and HMAC, no copy), as loads did before the copy. Reports ratio-copy.
func BenchmarkLoadPrivateCopy250MB(b *testing.B) {
	keys, err := OpenKeyring(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(b.TempDir(), keys, false)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 250<<20)
	_, _ = rand.Read(payload)
	if err := os.WriteFile(s.Path("big"), sealed(b, keys.Current(), payload, false), 0o600); err != nil {
		b.Fatal(err)
	}
	payload = nil
	var inPlace, copied time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, _, err := s.Verify("big"); err != nil {
			b.Fatal(err)
		}
		inPlace += time.Since(t0)
		t0 = time.Now()
		if err := s.Load("big", func(*os.File, []byte, int64) error { return nil }); err != nil {
			b.Fatal(err)
		}
		copied += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(inPlace.Seconds()/n, "verify-in-place-s")
	b.ReportMetric(copied.Seconds()/n, "verify-and-copy-s")
	b.ReportMetric(copied.Seconds()/inPlace.Seconds(), "ratio-copy")
}
