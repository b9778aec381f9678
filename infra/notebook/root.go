package notebook

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoot: a path leads out of the notebook root.
var ErrOutsideRoot = errors.New("notebook: path outside the notebook root")

// Root confines notebook paths to one directory tree.
type Root struct {
	dir string // absolute, symlinks resolved
}

// NewRoot returns the root at dir (made absolute, symlinks resolved).
func NewRoot(dir string) (Root, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Root{}, fmt.Errorf("notebook root %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Root{}, fmt.Errorf("notebook root %s: %w (give an existing directory)", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		return Root{}, fmt.Errorf("notebook root %s is not a directory", dir)
	}
	return Root{dir: real}, nil
}

// Dir is the root's absolute path.
func (r Root) Dir() string { return r.dir }

// Resolve turns a path given by an agent (relative to the root, or absolute
// inside it) into the absolute path to open and the root-relative path that
// names the notebook in events. The file need not exist, but its directory
// must. It refuses paths that leave the root by "..", by being absolute
// elsewhere, or through a symlink, and names that do not end in .ipynb.
func (r Root) Resolve(p string) (abs, rel string, err error) {
	if p == "" {
		return "", "", errors.New("the notebook path is empty: give a path ending in .ipynb, relative to the notebook root")
	}
	if !strings.HasSuffix(p, ".ipynb") {
		return "", "", fmt.Errorf("%q is not a notebook path: give a path ending in .ipynb", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("%q contains a NUL byte", p)
	}
	joined := p
	if !filepath.IsAbs(p) {
		joined = filepath.Join(r.dir, p)
	}
	joined = filepath.Clean(joined)
	outside := func() (string, string, error) {
		return "", "", fmt.Errorf("%w: %q is not inside %s; give a path relative to the notebook root (--notebook-root)", ErrOutsideRoot, p, r.dir)
	}
	if !within(r.dir, joined) {
		return outside()
	}
	// NB: resolve symlinks of the directory, and of the file when it
	// exists, so a link inside the root cannot lead out of it.
	dir, err := filepath.EvalSymlinks(filepath.Dir(joined))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("the directory of %q does not exist under the notebook root; create it first or choose another path", p)
		}
		return "", "", fmt.Errorf("resolve %q: %w", p, err)
	}
	real := filepath.Join(dir, filepath.Base(joined))
	if fi, err := os.Lstat(real); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = filepath.EvalSymlinks(real); err != nil {
			return "", "", fmt.Errorf("resolve %q: %w (a dangling symlink)", p, err)
		}
	}
	if !within(r.dir, real) {
		return outside()
	}
	rel, err = filepath.Rel(r.dir, real)
	if err != nil {
		return outside()
	}
	return real, filepath.ToSlash(rel), nil
}

func within(root, p string) bool {
	if p == root {
		return false // the root itself is not a notebook
	}
	return strings.HasPrefix(p, root+string(filepath.Separator)) || root == string(filepath.Separator)
}

// ErrHidden: a path names a hidden entry (a component starting with "."):
// the server's lock, temp and checkpoint files live there.
var ErrHidden = errors.New("notebook: hidden path")

// ResolveEntry is Resolve for any entry under the root — a directory, a
// plain file or the root itself ("" names the root; rel is then "") — as
// the Jupyter contents API names them (slash-separated, relative to the
// root; leading and trailing slashes ignored). The entry need not exist,
// but its directory must resolve inside the root. It refuses the same
// escapes as Resolve (ErrOutsideRoot) and hidden components (ErrHidden).
func (r Root) ResolveEntry(p string) (abs, rel string, err error) {
	if strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("%q contains a NUL byte", p)
	}
	p = strings.Trim(p, "/")
	if p == "" {
		return r.dir, "", nil
	}
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "..":
			return "", "", fmt.Errorf("%w: %q climbs out with \"..\"; give a path relative to the notebook root", ErrOutsideRoot, p)
		case strings.HasPrefix(c, "."):
			return "", "", fmt.Errorf("%w: %q names a hidden file or directory, which this server does not serve", ErrHidden, p)
		case c == "":
			return "", "", fmt.Errorf("%q has an empty path component", p)
		}
	}
	joined := filepath.Join(r.dir, filepath.FromSlash(p))
	// NB: symlinks are resolved only to check where they lead: inside the
	// root, and through no hidden directory (a link "vis" to ".hidden"
	// serves no more than ".hidden" does). The entry keeps the path as
	// given: as jupyter_server, a link is named, renamed and deleted
	// itself, never its target.
	dir, err := filepath.EvalSymlinks(filepath.Dir(joined))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("the directory of %q does not exist under the notebook root: %w", p, fs.ErrNotExist)
		}
		return "", "", fmt.Errorf("the directory of %q cannot be resolved: %w", p, errors.Unwrap(err))
	}
	real := filepath.Join(dir, filepath.Base(joined))
	if fi, err := os.Lstat(real); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = filepath.EvalSymlinks(real); err != nil {
			return "", "", fmt.Errorf("%q is a dangling symlink: %w", p, fs.ErrNotExist)
		}
	}
	if real != r.dir {
		if !within(r.dir, real) {
			return "", "", fmt.Errorf("%w: %q is not inside the notebook root", ErrOutsideRoot, p)
		}
		target, err := filepath.Rel(r.dir, real)
		if err != nil {
			return "", "", fmt.Errorf("%w: %q", ErrOutsideRoot, p)
		}
		for _, c := range strings.Split(filepath.ToSlash(target), "/") {
			if strings.HasPrefix(c, ".") {
				return "", "", fmt.Errorf("%w: %q leads through a symlink to a hidden file or directory, which this server does not serve", ErrHidden, p)
			}
		}
	}
	return joined, p, nil
}
