package assetstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// tmpPrefix names files being written; Open removes leftovers.
const tmpPrefix = ".tmp-"

// ErrNotFound: no file holds that sum.
var ErrNotFound = errors.New("assetstore: not found")

// BadSumError: a name that is not a sha256 in lowercase hex was given.
type BadSumError struct{ Sum string }

func (e *BadSumError) Error() string {
	s := e.Sum
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("assetstore: asset id %q is not a sha256 (64 lowercase hex characters); use an id from an asset:// URI", s)
}

// ValidSum reports whether s is a sha256 digest in lowercase hex.
func ValidSum(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Sum returns the name data is stored under.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Store is a directory of content-addressed files. It is safe for concurrent
// use: files are written once and renamed into place atomically.
type Store struct {
	dir string
	// sidecars: the dir held <sum>.mime files at Open (written before
	// assets were leased); only then does Delete look for them.
	sidecars bool
}

// Open opens (creating it if needed) the store in dir and removes temporary
// files a crash left behind.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create asset dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list asset dir: %w", err)
	}
	st := &Store{dir: dir}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
		if strings.HasSuffix(e.Name(), ".mime") {
			st.sidecars = true
		}
	}
	return st, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(sum string) (string, error) {
	if !ValidSum(sum) {
		return "", &BadSumError{Sum: sum}
	}
	return filepath.Join(s.dir, sum), nil
}

// Put stores data durably and returns its sum; created is false when the
// same bytes were already stored.
func (s *Store) Put(data []byte) (sum string, created bool, err error) {
	sum = Sum(data)
	path := filepath.Join(s.dir, sum)
	if _, err := os.Stat(path); err == nil {
		return sum, false, nil
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return "", false, fmt.Errorf("create asset %s: %w", sum, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", false, fmt.Errorf("write asset %s: %w", sum, err)
	}
	return sum, true, nil
}

// Has reports whether sum is stored.
func (s *Store) Has(sum string) (bool, error) {
	p, err := s.path(sum)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Open returns the stored file and its size. The caller closes it. An open
// file stays readable after Delete (POSIX unlink semantics).
func (s *Store) Open(sum string) (*os.File, int64, error) {
	p, err := s.path(sum)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("asset %s: %w", sum, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open asset %s: %w", sum, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat asset %s: %w", sum, err)
	}
	return f, fi.Size(), nil
}

// ReadAll returns the stored bytes of sum.
func (s *Store) ReadAll(sum string) ([]byte, error) {
	p, err := s.path(sum)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("asset %s: %w", sum, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read asset %s: %w", sum, err)
	}
	return data, nil
}

// Delete removes the files of sums (missing ones are skipped). Large batches
// are unlinked by a few workers. NB: it does not fsync the directory: a
// caller that must not see a deleted file again records the deletion first
// (actors/lease appends AssetCollected and redoes it after a crash).
func (s *Store) Delete(sums ...string) error {
	for _, sum := range sums {
		if !ValidSum(sum) {
			return &BadSumError{Sum: sum}
		}
	}
	if len(sums) == 0 {
		return nil
	}
	workers := 1
	if len(sums) >= parallelDeleteMin {
		workers = deleteWorkers
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	chunk := (len(sums) + workers - 1) / workers
	for w := range workers {
		part := sums[min(w*chunk, len(sums)):min((w+1)*chunk, len(sums))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = s.unlink(part)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parallelDeleteMin and deleteWorkers: unlink is a syscall per file; a GC
// of many assets spreads it over a few goroutines.
const (
	parallelDeleteMin = 1024
	deleteWorkers     = 4
)

func (s *Store) unlink(sums []string) error {
	for _, sum := range sums {
		p := filepath.Join(s.dir, sum)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete asset %s: %w", sum, err)
		}
		// NB: files from before assets were leased have a MIME sidecar.
		if s.sidecars {
			if err := os.Remove(p + ".mime"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("delete asset %s: %w", sum, err)
			}
		}
	}
	return nil
}

// List calls fn with the sum of every stored file, in directory order.
// Names that are not sums (foreign files) are skipped.
func (s *Store) List(fn func(sum string) error) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list asset dir: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !ValidSum(e.Name()) {
			continue
		}
		if err := fn(e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sync asset dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync asset dir: %w", err)
	}
	return nil
}
