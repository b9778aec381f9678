package checkpointfile

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// SecretEnv is the environment variable a deployment sets to give every
// server replica the same checkpoint secret.
const SecretEnv = "MCP_CHECKPOINT_SECRET"

// PlaceholderMarker marks the example values of the documentation (e.g.
// "replace-with-openssl-rand-hex-32"): a secret containing it is public
// knowledge, so the server refuses it rather than sign with it.
const PlaceholderMarker = "replace-with"

const (
	currentFile = "current"
	keySuffix   = ".key"
)

// Keyring holds the secrets that sign checkpoints: the current one signs,
// every one kept verifies (so a rotation does not orphan older files).
//
// On disk it is a directory (0700) of <key id>.key files (0600, hex) and a
// file "current" naming the signing key. A secret from MCP_CHECKPOINT_SECRET
// is never written: its id is derived from it, and it signs while it is set.
// NB: the directory must not be reachable from the checkpoints directory
// the kernels read and write (see docs/CHECKPOINTS.md).
type Keyring struct {
	dir string

	mu      sync.RWMutex
	keys    map[string]Key
	current string
}

// OpenKeyring loads the keyring in dir, creating it with a fresh key on
// first start. envSecret, when not empty, becomes the signing key.
func OpenKeyring(dir, envSecret string) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create checkpoint key dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict checkpoint key dir: %w", err)
	}
	r := &Keyring{dir: dir, keys: map[string]Key{}}
	names, err := filepath.Glob(filepath.Join(dir, "*"+keySuffix))
	if err != nil {
		return nil, fmt.Errorf("list checkpoint keys: %w", err)
	}
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), keySuffix)
		// NB: a key must be a regular file: a named pipe put there
		// would block the server's start for good.
		b, err := readRegularFile(n, 4096)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint key %s: %w", id, err)
		}
		secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(secret) < 32 {
			return nil, fmt.Errorf("checkpoint key %s is damaged: restore it from a backup or remove it (checkpoints it signed can then no longer be loaded)", n)
		}
		r.keys[id] = Key{ID: id, Secret: secret}
	}
	if cur, err := readRegularFile(filepath.Join(dir, currentFile), 4096); err == nil {
		r.current = strings.TrimSpace(string(cur))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read current checkpoint key: %w", err)
	}
	if envSecret != "" {
		if len(envSecret) < 16 {
			return nil, fmt.Errorf("%s is too short: give at least 32 random characters", SecretEnv)
		}
		if strings.Contains(strings.ToLower(envSecret), PlaceholderMarker) {
			return nil, fmt.Errorf("%s is the documentation's placeholder, which anyone can read: set it to a random value, e.g. openssl rand -hex 32", SecretEnv)
		}
		sum := sha256.Sum256([]byte("mcp-jupyter key id\x00" + envSecret))
		k := Key{ID: "env-" + hex.EncodeToString(sum[:6]), Secret: []byte(envSecret)}
		r.keys[k.ID] = k
		r.current = k.ID
		return r, nil
	}
	if _, ok := r.keys[r.current]; !ok {
		if _, err := r.Rotate(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Current returns the signing key.
func (r *Keyring) Current() Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[r.current]
}

// Lookup returns the key with this id.
func (r *Keyring) Lookup(id string) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[id]
	return k, ok
}

// IDs lists the key ids kept, sorted.
func (r *Keyring) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Rotate makes a new random key the signing key; the old ones still
// verify. It returns the new key's id.
func (r *Keyring) Rotate() (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("generate checkpoint key: %w", err)
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return "", fmt.Errorf("generate checkpoint key id: %w", err)
	}
	id := hex.EncodeToString(idb)
	if err := atomicfile.Write(filepath.Join(r.dir, id+keySuffix), []byte(hex.EncodeToString(secret)+"\n")); err != nil {
		return "", fmt.Errorf("write checkpoint key: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(r.dir, currentFile), []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write current checkpoint key: %w", err)
	}
	r.mu.Lock()
	r.keys[id] = Key{ID: id, Secret: secret}
	r.current = id
	r.mu.Unlock()
	return id, nil
}

// Forget removes a key: checkpoints it signed can no longer be loaded.
// The signing key cannot be forgotten; rotate first.
func (r *Keyring) Forget(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == r.current {
		return fmt.Errorf("key %s signs new checkpoints: rotate before forgetting it", id)
	}
	if _, ok := r.keys[id]; !ok {
		return fmt.Errorf("no checkpoint key %s", id)
	}
	if err := os.Remove(filepath.Join(r.dir, id+keySuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove checkpoint key %s: %w", id, err)
	}
	delete(r.keys, id)
	return nil
}
