package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// usersDir is the directory of the notebook root that holds one root per
// principal: <notebook-root>/users/<name>/.
const usersDir = "users"

// notebookRoot is where a principal's notebook paths point: admins use the
// whole --notebook-root, as before principals existed; any other principal
// its own <notebook-root>/users/<name>/, created (0700) on first use. Paths
// an agent gives are relative to its root and confined to it (no "..", no
// absolute path elsewhere, no symlink out of it: infra/notebook Root), so a
// principal cannot reach another's notebooks by any path. The notebook
// actors name notebooks by their path relative to the whole root
// ("users/alice/a.ipynb"): events, bindings and recorded executions use that
// form; replies show the principal's own form ("a.ipynb").
type notebookRoot struct {
	whole nbfile.Root
	// prefix is "users/<name>/" for a principal's own root, "" for admins.
	prefix string
	own    nbfile.Root
}

// userDirName is the directory name of a principal's root. A token
// principal's name ([a-z0-9._-], starting with a letter or digit: already
// lower case and safe) is kept as it is, unless it starts with "h-"; every
// other name — OAuth subjects "oidc:<sub>", whose sub may hold any
// character or differ only in case (two users on a case-insensitive
// filesystem), and token names starting "h-" — becomes "h-" and a hash of
// the name. The two forms never meet: a kept name never starts with "h-",
// so no principal can name its way into another's directory, and no name
// can climb out of users/.
func userDirName(name string) string {
	kept := name != "" && name[0] != '.' && !strings.HasPrefix(name, hashedPrefix) && strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0 && len(name) <= 100
	if kept {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return hashedPrefix + hex.EncodeToString(sum[:16])
}

// hashedPrefix starts every hashed directory name, and no kept one.
const hashedPrefix = "h-"

// rootFor returns the notebook root of the caller ctx carries (refusing a
// call without one), creating a principal's own root on first use.
func rootFor(ctx context.Context, whole nbfile.Root) (notebookRoot, error) {
	p, err := auth.Caller(ctx) // NB: an empty name is refused, not made a directory
	if err != nil {
		return notebookRoot{}, err
	}
	if p.IsAdmin() {
		return notebookRoot{whole: whole, own: whole}, nil
	}
	name := userDirName(p.Name)
	dir := filepath.Join(whole.Dir(), usersDir, name)
	// NB: 0700: kernels and other local users have no business in it; the
	// server reads it on the principal's behalf.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return notebookRoot{}, fmt.Errorf("create the notebook root of %q: %w", p.Name, err)
	}
	own, err := nbfile.NewRoot(dir)
	if err != nil {
		return notebookRoot{}, fmt.Errorf("the notebook root of %q: %w", p.Name, err)
	}
	if !strings.HasPrefix(own.Dir(), whole.Dir()+string(filepath.Separator)) {
		// users/<name> is a symlink out of the notebook root.
		return notebookRoot{}, fmt.Errorf("the notebook root of %q (%s) leads out of --notebook-root: ask an admin to remove the link", p.Name, dir)
	}
	return notebookRoot{whole: whole, own: own, prefix: usersDir + "/" + name + "/"}, nil
}

// resolve confines p to the principal's root and returns the path the
// notebook actors know it by (relative to the whole root).
func (r notebookRoot) resolve(p string) (string, error) {
	_, rel, err := r.own.Resolve(p)
	if err != nil {
		if r.prefix != "" {
			err = fmt.Errorf("%w (your notebook root is your own: give a path relative to it, e.g. \"analysis.ipynb\")", err)
		}
		return "", err
	}
	return path.Join(strings.TrimSuffix(r.prefix, "/"), rel), nil
}

// shown is a whole-root-relative path as the principal names it.
func (r notebookRoot) shown(rel string) string {
	return strings.TrimPrefix(rel, r.prefix)
}
