package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// CheckpointBucket is the JetStream object store holding the cluster's
// checkpoints: one object per checkpoint, named by its stored name
// ("<owner>~<name>" or "<name>"). NB: a name on the wire: it must not
// change once released (docs/cluster.md).
const CheckpointBucket = "MCPJUPYTER_CHECKPOINTS"

// ErrNoCheckpoint: the object store has no checkpoint of that name.
var ErrNoCheckpoint = errors.New("natsbus: no such checkpoint in the cluster's object store")

// maxCheckpointChunk bounds one chunk message of an object: larger chunks
// mean fewer acks per MiB (BenchmarkCheckpointObjects compares), but a
// chunk must fit the server's max_payload with room for its headers.
const maxCheckpointChunk = 1 << 20

// Checkpoints is the cluster's copy of the checkpoint files, in the object
// store CheckpointBucket with the cluster's replicas. It moves bytes only:
// what a file holds and whether it is genuine is the checkpoint file
// format's business (infra/checkpointfile verifies every file fetched, as it
// verifies a local one). The object store checks each object's SHA-256
// digest on read, which catches a damaged store, not a forger.
type Checkpoints struct {
	obs   jetstream.ObjectStore
	chunk uint32
}

// CheckpointObject is what the object store says of one checkpoint.
type CheckpointObject struct {
	Name     string
	Size     uint64
	Digest   string // "SHA-256=<base64>" of the file, as the store computed it
	Modified time.Time
	// Meta is what the putter attached (the checkpoint's signed metadata,
	// in short, for listings): not verified until the file is fetched.
	Meta map[string]string
}

// OpenCheckpoints creates (or updates to replicas) the checkpoint object
// store and returns it. replicas is the cluster's replica count (1 on a
// single JetStream server).
func OpenCheckpoints(ctx context.Context, js jetstream.JetStream, replicas int) (*Checkpoints, error) {
	if replicas < 1 {
		replicas = 1
	}
	cfg := jetstream.ObjectStoreConfig{
		Bucket:      CheckpointBucket,
		Description: "mcp-jupyter checkpoints (signed files; verified by each node on fetch)",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
	// NB: Ensure: every node creates it at once at the cluster's start.
	obs, err := Ensure(ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return js.CreateOrUpdateObjectStore(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("open object store %s (%d replicas): %w", CheckpointBucket, replicas, err)
	}
	chunk := uint32(maxCheckpointChunk)
	// NB: 4 KiB of the server's max_payload left for the chunk's headers.
	if mp := js.Conn().MaxPayload(); mp > 0 && mp-4096 < int64(chunk) {
		chunk = uint32(max(mp-4096, 64<<10))
	}
	return &Checkpoints{obs: obs, chunk: chunk}, nil
}

// OpenCheckpoints opens the checkpoint object store over the server's own
// connection (the server must run JetStream).
func (s *Server) OpenCheckpoints(ctx context.Context, replicas int) (*Checkpoints, error) {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	return OpenCheckpoints(ctx, js, replicas)
}

// Put stores the file at path as the object stored, replacing any previous
// one once the whole new one is acknowledged (a put cut half way leaves the
// previous object whole). meta is attached for listings.
func (c *Checkpoints) Put(ctx context.Context, stored, path string, meta map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put checkpoint %s: %w", stored, err)
	}
	defer f.Close()
	_, err = c.obs.Put(ctx, jetstream.ObjectMeta{Name: stored, Metadata: meta,
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: c.chunk}}, f)
	if err != nil {
		return fmt.Errorf("put checkpoint %s in %s: %w", stored, CheckpointBucket, err)
	}
	return nil
}

// Get writes the object stored to dst atomically: into a temporary file
// beside it, synced, then renamed over dst (the directory synced too). A
// get that fails — the store's digest does not match, the connection
// dropped, ctx ended — leaves dst as it was. A missing object wraps
// ErrNoCheckpoint.
func (c *Checkpoints) Get(ctx context.Context, stored, dst string) (err error) {
	res, err := c.obs.Get(ctx, stored)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("get checkpoint %s: %w", stored, ErrNoCheckpoint)
	}
	if err != nil {
		return fmt.Errorf("get checkpoint %s from %s: %w", stored, CheckpointBucket, err)
	}
	defer res.Close()
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+"."+hex.EncodeToString(rnd)+".get")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("get checkpoint %s: %w", stored, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// NB: the object's digest is checked when the reader reaches its end:
	// io.Copy returns ErrDigestMismatch there, before the rename.
	if _, err = io.Copy(f, res); err != nil {
		return fmt.Errorf("get checkpoint %s from %s: %w", stored, CheckpointBucket, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("get checkpoint %s: sync: %w", stored, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("get checkpoint %s: %w", stored, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("get checkpoint %s: %w", stored, err)
	}
	if err = atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("get checkpoint %s: %w", stored, err)
	}
	return nil
}

// Delete removes the object stored; a missing one is not an error.
func (c *Checkpoints) Delete(ctx context.Context, stored string) error {
	err := c.obs.Delete(ctx, stored)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete checkpoint %s from %s: %w", stored, CheckpointBucket, err)
	}
	return nil
}

// Info describes the object stored; a missing one wraps ErrNoCheckpoint.
func (c *Checkpoints) Info(ctx context.Context, stored string) (CheckpointObject, error) {
	i, err := c.obs.GetInfo(ctx, stored)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return CheckpointObject{}, fmt.Errorf("checkpoint %s: %w", stored, ErrNoCheckpoint)
	}
	if err != nil {
		return CheckpointObject{}, fmt.Errorf("checkpoint %s in %s: %w", stored, CheckpointBucket, err)
	}
	return objectOf(i), nil
}

// List describes every checkpoint in the store, in the store's order.
func (c *Checkpoints) List(ctx context.Context) ([]CheckpointObject, error) {
	is, err := c.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", CheckpointBucket, err)
	}
	out := make([]CheckpointObject, 0, len(is))
	for _, i := range is {
		out = append(out, objectOf(i))
	}
	return out, nil
}

func objectOf(i *jetstream.ObjectInfo) CheckpointObject {
	return CheckpointObject{Name: i.Name, Size: i.Size, Digest: i.Digest, Modified: i.ModTime, Meta: i.Metadata}
}
