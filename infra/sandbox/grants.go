package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// fileRights are the Landlock rights that apply to a non-directory; a rule
// on a file with any other right is refused by the kernel.
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// devDir is walked around in every mode: see grants.
const devDir = "/dev"

// readRights let a kept read-only path be read (and a directory listed).
const readRights = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir

// grant is one Landlock path-beneath rule: access to the hierarchy at path.
type grant struct {
	path   string
	access uint64
}

// grants computes the Landlock rules that open everything except the
// hidden directories, and the kept paths inside them. all is every right
// the ruleset handles.
//
// Landlock is allow-only with rules that cover whole hierarchies, so
// leaving a directory out takes a rule per sibling of each path component
// leading to it: for /srv/app/.data hidden, everything in /, /srv and
// /srv/app except the way down gets all rights, and /, /srv, /srv/app
// themselves only read_dir, so they can be listed but gain no new entries.
// siblings reports that the data dir needed this: with a mount namespace it
// is already covered and only /dev is walked around (its block devices get
// no rule, so a root kernel cannot read the data dir off the disk).
//
// NB: symlinks among the siblings get no rule of their own: a rule would
// follow the link and could open a hidden directory; what they point to is
// governed by the rules on the target's own path.
func grants(plan Plan, mount bool, all uint64, readDir func(string) ([]fs.DirEntry, error)) (out []grant, siblings bool, err error) {
	for _, k := range plan.Keep {
		access := all
		if !k.Write {
			access = readRights & all
		}
		info, err := os.Stat(k.Path)
		if err != nil {
			if k.Optional && os.IsNotExist(err) {
				continue
			}
			return nil, false, fmt.Errorf("kept path: %w", err)
		}
		if !info.IsDir() {
			access &= fileRights
		}
		out = append(out, grant{path: k.Path, access: access})
	}
	// NB: /dev is walked around like a hidden directory, then each entry
	// but the block devices is granted: a root kernel could otherwise read
	// the data dir's blocks off the disk. The data dir itself is left out
	// here only without the mount cover.
	var dataHide []string
	if !mount {
		dataHide = plan.Hide
	}
	hide := append([]string{devDir}, dataHide...)
	var walk func(dir string, hide []string) error
	walk = func(dir string, hide []string) error {
		if hiddenBy(hide, dir) != "" {
			return nil // only its kept paths, above
		}
		if !ancestorOfHidden(hide, dir) {
			out = append(out, grant{path: dir, access: all})
			return nil
		}
		out = append(out, grant{path: dir, access: ll.AccessFSReadDir & all})
		entries, err := readDir(dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range entries {
			child := filepath.Join(dir, e.Name())
			switch {
			case e.Type()&fs.ModeSymlink != 0, hiddenBy(hide, child) != "" && !e.IsDir():
				continue
			case e.IsDir():
				if err := walk(child, hide); err != nil {
					return err
				}
			default:
				out = append(out, grant{path: child, access: all & fileRights})
			}
		}
		return nil
	}
	if entries, err := readDir(devDir); err == nil {
		out = append(out, grant{path: devDir, access: ll.AccessFSReadDir & all})
		for _, e := range entries {
			child := filepath.Join(devDir, e.Name())
			switch t := e.Type(); {
			case t&fs.ModeSymlink != 0, t&fs.ModeDevice != 0 && t&fs.ModeCharDevice == 0:
				continue // links resolve elsewhere; block devices stay shut
			case e.IsDir():
				// NB: walked, in case the data dir is under /dev/shm.
				if err := walk(child, dataHide); err != nil {
					return nil, false, err
				}
			default:
				out = append(out, grant{path: child, access: all & fileRights})
			}
		}
	}
	siblings = !mount && len(plan.Hide) > 0
	if err := walk("/", hide); err != nil {
		return nil, false, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, siblings, nil
}

// ancestorOfHidden reports whether a hidden directory lies strictly below dir.
func ancestorOfHidden(hide []string, dir string) bool {
	for _, h := range hide {
		if h != dir && within(h, dir) {
			return true
		}
	}
	return false
}
