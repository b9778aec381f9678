package auth

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// Errors the store's changes return, wrapped with the principal's name and
// what to do.
var (
	ErrUnknownPrincipal = errors.New("unknown principal")
	ErrPrincipalExists  = errors.New("principal exists already")
)

// Store changes the principals file of one data dir. Each change takes an
// exclusive flock on a lock file beside it, reads the file, and replaces it
// atomically (a temporary file, fsync, rename, fsync of the directory):
// `principal add` run while a server reads the file is safe, two CLI runs
// at once do not lose each other's change, and a crash leaves the old file
// or the new one, never half of one.
type Store struct {
	// Dir is the data dir.
	Dir string
	// Now stamps created, rotated and revoked; nil is time.Now.
	Now func() time.Time
}

func (s Store) path() string { return filepath.Join(s.Dir, PrincipalsFile) }

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// List returns the principals, revoked ones included, sorted by name.
func (s Store) List() ([]Record, error) {
	recs, err := readPrincipalsFile(s.path())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b Record) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return recs, nil
}

// Add creates a principal and returns its token, the only time the token
// exists outside the caller's hands: the file keeps its hash.
func (s Store) Add(name string, scopes Scope, maxKernels int) (token string, err error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if maxKernels < 0 {
		return "", fmt.Errorf("--max-kernels %d: give 0 (the server's --max-kernels) or more", maxKernels)
	}
	err = s.change(func(recs []Record) ([]Record, error) {
		if i := slices.IndexFunc(recs, func(r Record) bool { return r.Name == name }); i >= 0 {
			if !recs[i].Active() {
				return nil, fmt.Errorf("%w: %q was revoked on %s, and its kernels, checkpoints and events still carry the name: "+
					"choose another name, or run `mcp-jupyter principal rotate %s` to give it a new token", ErrPrincipalExists,
					name, recs[i].Revoked.UTC().Format(time.RFC3339), name)
			}
			return nil, fmt.Errorf("%w: %q: choose another name, or run `mcp-jupyter principal rotate %s` for a new token", ErrPrincipalExists, name, name)
		}
		if token, err = NewToken(); err != nil {
			return nil, err
		}
		return append(recs, Record{Name: name, Scopes: scopes, MaxKernels: maxKernels, Hash: HashToken(token), Created: s.now()}), nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Revoke stops a principal's token at once (a running server reloads the
// file). The record stays, marked revoked: the name keeps owning its
// kernels and checkpoints, and `principal add` will not hand it to someone
// else by mistake.
func (s Store) Revoke(name string) error {
	return s.change(func(recs []Record) ([]Record, error) {
		i, err := find(recs, name)
		if err != nil {
			return nil, err
		}
		if !recs[i].Active() {
			return nil, fmt.Errorf("principal %q was revoked already, on %s", name, recs[i].Revoked.UTC().Format(time.RFC3339))
		}
		recs[i].Revoked = s.now()
		return recs, nil
	})
}

// Rotate gives a principal a new token and returns it; the old one stops
// at once. A revoked principal is reinstated with the new token.
func (s Store) Rotate(name string) (token string, err error) {
	err = s.change(func(recs []Record) ([]Record, error) {
		i, err := find(recs, name)
		if err != nil {
			return nil, err
		}
		if token, err = NewToken(); err != nil {
			return nil, err
		}
		recs[i].Hash, recs[i].Rotated, recs[i].Revoked = HashToken(token), s.now(), time.Time{}
		return recs, nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

func find(recs []Record, name string) (int, error) {
	i := slices.IndexFunc(recs, func(r Record) bool { return r.Name == name })
	if i < 0 {
		return -1, fmt.Errorf("%w %q: run `mcp-jupyter principal list` to see the names", ErrUnknownPrincipal, name)
	}
	return i, nil
}

// change applies edit to the file under the lock and writes the result.
func (s Store) change(edit func([]Record) ([]Record, error)) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create the data dir: %w", err)
	}
	unlock, err := lockFile(s.path() + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := readPrincipalsFile(s.path())
	if err != nil {
		return err
	}
	recs, err = edit(recs)
	if err != nil {
		return err
	}
	data, err := encodePrincipalsFile(recs)
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path(), data)
}

// readPrincipalsFile reads and parses path; a missing file is no principals.
func readPrincipalsFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the principals file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPrincipalsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read the principals file: %w", err)
	}
	recs, err := ParsePrincipalsFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: fix or restore it (it holds no tokens, only their hashes)", path, err)
	}
	return recs, nil
}

// lockFile takes an exclusive flock on path, creating it (0600). NB: a
// separate lock file, not the principals file itself: the rename replaces
// that file's inode, and a lock on the old inode would guard nothing.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
