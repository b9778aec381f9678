package natsbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// openObjects starts one JetStream server and opens the checkpoint object
// store on it (a single-server cluster: 1 replica).
func openObjects(t testing.TB) (*natsbus.Server, *natsbus.Checkpoints) {
	t.Helper()
	s, err := natsbus.Open(natsbus.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.OpenCheckpoints(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func randomFile(t testing.TB, dir, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestCheckpointObjectsPutGetDelete(t *testing.T) {
	_, c := openObjects(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	src, want := randomFile(t, dir, "src", 3<<20+17) // several chunks, the last short

	if err := c.Put(ctx, "alice~friday", src, map[string]string{"sha256": "abc"}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx, "alice~friday")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != uint64(len(want)) || info.Meta["sha256"] != "abc" || info.Digest == "" {
		t.Fatalf("info = %+v, want size %d, meta sha256 abc, a digest", info, len(want))
	}
	dst := filepath.Join(dir, "dst")
	if err := os.WriteFile(dst, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "alice~friday", dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, not the %d put", len(got), len(want))
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
		t.Fatalf("dst mode %v, want 0600", fi.Mode().Perm())
	}

	// A replaced object: the new bytes, nothing of the old.
	src2, want2 := randomFile(t, dir, "src2", 100)
	if err := c.Put(ctx, "alice~friday", src2, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "alice~friday", dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want2) {
		t.Fatalf("after a replacing put got %d bytes, want the new %d", len(got), len(want2))
	}

	l, err := c.List(ctx)
	if err != nil || len(l) != 1 || l[0].Name != "alice~friday" {
		t.Fatalf("list = %+v, %v; want alice~friday alone", l, err)
	}
	if err := c.Delete(ctx, "alice~friday"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "alice~friday"); err != nil {
		t.Fatalf("a second delete: %v, want nil (already gone)", err)
	}
	if _, err := c.Info(ctx, "alice~friday"); !errors.Is(err, natsbus.ErrNoCheckpoint) {
		t.Fatalf("info after delete: %v, want ErrNoCheckpoint", err)
	}
	if err := c.Get(ctx, "alice~friday", dst); !errors.Is(err, natsbus.ErrNoCheckpoint) {
		t.Fatalf("get after delete: %v, want ErrNoCheckpoint", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want2) {
		t.Fatal("a failed get changed dst")
	}
	if l, err := c.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("list of an empty store = %+v, %v; want none, nil", l, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 { // src, src2, dst: no temporary left
		t.Fatalf("dir holds %d entries, want 3 (no temporary file left)", len(ents))
	}
}

// A get whose context ends leaves the destination as it was and no
// temporary file.
func TestCheckpointObjectsGetCutLeavesDst(t *testing.T) {
	_, c := openObjects(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "src", 2<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Put(ctx, "x", src, nil); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	_ = os.WriteFile(dst, []byte("previous"), 0o600)
	cut, stop := context.WithCancel(context.Background())
	stop()
	if err := c.Get(cut, "x", dst); err == nil {
		t.Fatal("a get with an ended context succeeded")
	}
	if got, _ := os.ReadFile(dst); string(got) != "previous" {
		t.Fatalf("dst = %q after a cut get, want it unchanged", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("dir holds %d entries after a cut get, want 2", len(ents))
	}
}

// BenchmarkCheckpointObjects: Put and Get of a 10 MiB checkpoint file
// (atomic, fsynced write of the copy) beside the raw object store's Put and
// GetBytes of the same bytes in memory, at the client's default chunk size
// and at ours.
func BenchmarkCheckpointObjects(b *testing.B) {
	s, c := openObjects(b)
	dir := b.TempDir()
	src, data := randomFile(b, dir, "src", 10<<20)
	ctx := context.Background()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "RAW", Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	b.Run("checkpoints", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			if err := c.Put(ctx, "bench", src, nil); err != nil {
				b.Fatal(err)
			}
			if err := c.Get(ctx, "bench", dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, chunk := range []uint32{0, 1 << 20} { // 0: the client's default (128 KiB)
		name := "raw-default-chunk"
		if chunk > 0 {
			name = "raw-1MiB-chunk"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				meta := jetstream.ObjectMeta{Name: "bench", Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunk}}
				if _, err := raw.Put(ctx, meta, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if _, err := raw.GetBytes(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
