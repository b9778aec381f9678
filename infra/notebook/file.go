package notebook

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// MaxFileBytes bounds the notebooks this package reads (a notebook is read
// whole into memory).
const MaxFileBytes = 256 << 20

// File is a notebook as read from disk.
type File struct {
	Path     string
	Bytes    []byte
	Hash     string // sha256 of Bytes
	Notebook *Notebook
	Stat     Stat
}

// Stat identifies one version of a file cheaply (not a substitute for the
// hash; used to notice a change between a read and a rename).
type Stat struct {
	Size  int64
	MTime int64 // nanoseconds
	Inode uint64
}

func statOf(fi fs.FileInfo) Stat {
	s := Stat{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.Inode = st.Ino
	}
	return s
}

// StatFile returns the Stat of path.
func StatFile(path string) (Stat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stat{}, err
	}
	return statOf(fi), nil
}

// ReadFile reads and parses the notebook at path.
func ReadFile(path string) (*File, error) {
	return ReadFileCached(path, nil)
}

// ReadFileCached is ReadFile that, when cached knows the parsed notebook for
// the file's hash, uses it instead of parsing again. The bytes are always
// read and hashed: the hash, not a timestamp, says which version it is.
func ReadFileCached(path string, cached func(hash string) (*Notebook, bool)) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("notebook %s does not exist (create_notebook makes one, or check the path): %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open notebook %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat notebook %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, &FormatError{Path: path, Reason: "is a directory", Hint: "give the path of an .ipynb file"}
	}
	if fi.Size() > MaxFileBytes {
		return nil, &FormatError{Path: path, Reason: fmt.Sprintf("is %d bytes, more than the %d this server reads", fi.Size(), MaxFileBytes),
			Hint: "clear large outputs in Jupyter first"}
	}
	b := make([]byte, fi.Size())
	n, err := readFull(f, b)
	if err != nil {
		return nil, fmt.Errorf("read notebook %s: %w", path, err)
	}
	b = b[:n]
	hash := Hash(b)
	if cached != nil {
		if nb, ok := cached(hash); ok {
			return &File{Path: path, Bytes: b, Hash: hash, Notebook: nb, Stat: statOf(fi)}, nil
		}
	}
	nb, err := Parse(b)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Path = path
		}
		return nil, err
	}
	return &File{Path: path, Bytes: b, Hash: hash, Notebook: nb, Stat: statOf(fi)}, nil
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			if n == len(b) || errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

// Pending is a new version of a notebook written beside it and synced, not
// yet in place. Exactly one of Commit or Abort must be called.
type Pending struct {
	path, tmp string
	done      bool
}

// Prepare writes b to a temp file in path's directory and fsyncs it. The
// notebook itself is untouched until Commit. A new file is created 0644; an
// existing one keeps its permission bits.
func Prepare(path string, b []byte) (*Pending, error) {
	dir, base := filepath.Split(path)
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file beside %s: %w", path, err)
	}
	p := &Pending{path: path, tmp: f.Name()}
	fail := func(err error) (*Pending, error) {
		_ = f.Close()
		_ = os.Remove(p.tmp)
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		return fail(fmt.Errorf("write %s: %w", p.tmp, err))
	}
	if err := f.Chmod(perm); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", p.tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("fsync %s: %w", p.tmp, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("close %s: %w", p.tmp, err))
	}
	return p, nil
}

// Commit renames the temp file over the notebook and fsyncs the directory,
// so the new version survives a crash.
func (p *Pending) Commit() error {
	if p.done {
		return errors.New("notebook: pending write already finished")
	}
	p.done = true
	if err := os.Rename(p.tmp, p.path); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("rename %s over %s: %w", p.tmp, p.path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(p.path))
}

// CommitNew puts the temp file in place only if no file exists at the path
// yet (a hard link cannot replace), so creating a notebook never overwrites
// one a person made in the meantime.
func (p *Pending) CommitNew() error {
	if p.done {
		return errors.New("notebook: pending write already finished")
	}
	p.done = true
	defer os.Remove(p.tmp)
	if err := os.Link(p.tmp, p.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: read_notebook it, or choose another path", p.path)
		}
		return fmt.Errorf("link %s to %s: %w", p.tmp, p.path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(p.path))
}

// Abort removes the temp file; the notebook keeps its old bytes.
func (p *Pending) Abort() {
	if !p.done {
		p.done = true
		_ = os.Remove(p.tmp)
	}
}

// RemoveStaleTemps removes temp files a crashed writer left beside the
// notebook at path. NB: call it only while holding Lock(path): every writer
// holds the lock while its temp file exists, so then none is in use.
func RemoveStaleTemps(path string) {
	dir, base := filepath.Split(path)
	stale, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".tmp-*"))
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// WriteFile writes b to path atomically (Prepare then Commit).
func WriteFile(path string, b []byte) error {
	p, err := Prepare(path, b)
	if err != nil {
		return err
	}
	return p.Commit()
}

// ReadBytes reads the file at path and its hash without parsing it
// (File.Notebook is nil): for changes that replace, move or remove a file
// whole, which must work on a file that is not a readable notebook too.
func ReadBytes(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, &FormatError{Path: path, Reason: "is a directory", Hint: "give the path of a file"}
	}
	if fi.Size() > MaxFileBytes {
		return nil, &FormatError{Path: path, Reason: fmt.Sprintf("is %d bytes, more than the %d this server reads", fi.Size(), MaxFileBytes)}
	}
	b := make([]byte, fi.Size())
	n, err := readFull(f, b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b = b[:n]
	return &File{Path: path, Bytes: b, Hash: Hash(b), Stat: statOf(fi)}, nil
}

// ErrTargetExists: a rename's target already exists.
var ErrTargetExists = errors.New("notebook: target exists")

// ErrIntoItself: a rename's target is under its source (a directory moved
// into itself).
var ErrIntoItself = errors.New("notebook: a directory cannot be moved into itself")

// RenameNoReplace moves oldPath to newPath atomically, refusing (with
// ErrTargetExists) when newPath exists: a rename never replaces a file
// someone else made; and (with ErrIntoItself) a directory moved into
// itself. Both directories are synced.
func RenameNoReplace(oldPath, newPath string) error {
	if intoItself(oldPath, newPath) {
		return fmt.Errorf("%w: %s is under %s", ErrIntoItself, newPath, oldPath)
	}
	err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) && intoItself(oldPath, newPath) {
		// NB: EINVAL also means "moved into itself" (through a symlink the
		// check above did not see before): no fallback for that.
		return fmt.Errorf("%w: %s is under %s", ErrIntoItself, newPath, oldPath)
	}
	if fi, lerr := os.Lstat(oldPath); (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) && lerr == nil && !fi.IsDir() {
		// A filesystem without RENAME_NOREPLACE: a hard link cannot
		// replace either (files only; directories have no such fallback).
		if err = os.Link(oldPath, newPath); err == nil {
			err = os.Remove(oldPath)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrTargetExists, newPath)
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", oldPath, newPath, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(newPath)); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(oldPath))
}

// intoItself says newPath's directory is oldPath or under it, symlinks
// resolved.
func intoItself(oldPath, newPath string) bool {
	under := func(o, n string) bool { return n == o || strings.HasPrefix(n, o+string(filepath.Separator)) }
	o, n := filepath.Clean(oldPath), filepath.Clean(filepath.Dir(newPath))
	if under(o, n) {
		return true
	}
	// NB: oldPath itself is not followed: a symlink is moved, not its
	// target, and may well go into the directory it points to.
	ro, err1 := filepath.EvalSymlinks(filepath.Dir(o))
	rn, err2 := filepath.EvalSymlinks(n)
	return err1 == nil && err2 == nil && under(filepath.Join(ro, filepath.Base(o)), rn)
}

// Remove deletes the file at path (gone already is no error) and syncs its
// directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
