package checkpointfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// Import takes in a checkpoint file made elsewhere (another node of a
// cluster): fetch writes it to dst, a new path in the store's temp
// directory; Import verifies it in full exactly as Load does (regular file,
// header, key, HMAC over header, tags and metadata, every chunk against its
// tag), hands the signed metadata and size to check, and only when both
// accept commits it as name's file (rename, directory synced) with its
// readable metadata copy. A file refused leaves name's previous file, if
// any, untouched and nothing in the temp directory; the refusal is a
// *RejectError (errors.Is ErrRejected).
func (s *Store) Import(name string, fetch func(dst string) error, check func(meta []byte, size int64) error) ([]byte, int64, error) {
	rnd := make([]byte, 8)
	if _, err := rand.Read(rnd); err != nil {
		return nil, 0, fmt.Errorf("import checkpoint %s: %w", name, err)
	}
	dst := filepath.Join(s.tmp, name+"."+hex.EncodeToString(rnd)+".import")
	defer os.Remove(dst) // NB: a no-op once committed (renamed away)
	if err := fetch(dst); err != nil {
		return nil, 0, err
	}
	mj, size, err := s.verifyPath(dst, io.Discard)
	if err != nil {
		return nil, 0, err
	}
	if err := check(mj, size); err != nil {
		return nil, 0, err
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return nil, 0, fmt.Errorf("import checkpoint %s: %w", name, err)
	}
	if err := os.Rename(dst, s.Path(name)); err != nil {
		return nil, 0, fmt.Errorf("commit checkpoint %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return mj, size, fmt.Errorf("sync checkpoint dir: %w", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, mj, "", "  "); err != nil {
		return mj, size, fmt.Errorf("indent checkpoint metadata: %w", err)
	}
	pretty.WriteByte('\n')
	if err := atomicfile.Write(s.metaPath(name), pretty.Bytes()); err != nil {
		return mj, size, fmt.Errorf("write checkpoint metadata: %w", err)
	}
	return mj, size, nil
}
