package checkpointfile

import (
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkLoadPrivateCopy250MB: what a load costs the server beside
// reading the file. Format 1: Load verifies a 250 MB unencrypted
// checkpoint through one descriptor while copying its payload into a
// nameless file (what the kernel then reads); the baseline is verifying it
// in place (Verify: the same read and HMAC, no copy). Reports ratio-copy.
// Format 2: Load streams the checked chunks through a pipe that a reader
// drains (what the kernel reads), against reading the file plainly
// (read-s): ratio-stream; and mac-GBps, the chunk MAC's throughput.
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
	saveV2(b, s, "big2", payload)
	payload = nil
	var inPlace, copied, streamed, plain time.Duration
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
		t0 = time.Now()
		if err := s.Load("big2", func(f *os.File, _ []byte, _ int64) error {
			_, err := io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		streamed += time.Since(t0)
		t0 = time.Now()
		f, err := os.Open(s.Path("big2"))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
		f.Close()
		plain += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(inPlace.Seconds()/n, "verify-in-place-s")
	b.ReportMetric(copied.Seconds()/n, "verify-and-copy-s")
	b.ReportMetric(copied.Seconds()/inPlace.Seconds(), "ratio-copy")
	b.ReportMetric(streamed.Seconds()/n, "stream-s")
	b.ReportMetric(plain.Seconds()/n, "read-s")
	b.ReportMetric(streamed.Seconds()/plain.Seconds(), "ratio-stream")
	b.ReportMetric(ChunkMACRate(256<<20), "mac-GBps")
}

// BenchmarkSave250MB: the server's side of a format 2 save. A writer
// streams 250 MB of frames into the stage's pipe (as the kernel does)
// while the stage tags and writes the chunks; Seal then fsyncs and
// commits. The baseline writes the same bytes to a file in the same
// directory without syncing (what a raw dill.dump does). Reports save-s,
// write-s and ratio-save-server.
func BenchmarkSave250MB(b *testing.B) {
	s := newStore(b, false)
	payload := make([]byte, 250<<20)
	_, _ = rand.Read(payload)
	var stream []byte
	for rest := payload; len(rest) > 0; {
		n := min(len(rest), 16<<20)
		stream = append(stream, dataFrame(rest[:n])...)
		rest = rest[n:]
	}
	stream = append(stream, endFrame...)
	var saved, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := os.WriteFile(s.Path("raw"), payload, 0o600); err != nil {
			b.Fatal(err)
		}
		raw += time.Since(t0)
		t0 = time.Now()
		if _, err := saveStream(b, s, "big", stream); err != nil {
			b.Fatal(err)
		}
		saved += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(saved.Seconds()/n, "save-s")
	b.ReportMetric(raw.Seconds()/n, "write-s")
	b.ReportMetric(saved.Seconds()/raw.Seconds(), "ratio-save-server")
}
