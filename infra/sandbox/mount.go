package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// coverOptions keep the cover small: it only ever holds the mount points
// of the kept paths.
const coverOptions = "mode=0755,size=64k,nr_inodes=256"

// coverHidden runs in the launcher's own mount namespace (Start asked for
// CLONE_NEWNS, and Go made "/" recursively private there, so nothing done
// here reaches the server's namespace). It mounts an empty tmpfs over each
// hidden directory, binds each kept path back at its own place, and makes
// the cover read-only.
func coverHidden(plan Plan) error {
	for _, h := range plan.Hide {
		if _, err := os.Stat(h); os.IsNotExist(err) {
			continue
		}
		type bound struct {
			k   Keep
			fd  int
			dir bool
		}
		var binds []bound
		defer func() {
			for _, b := range binds {
				_ = unix.Close(b.fd)
			}
		}()
		// NB: the kept paths are opened before the cover hides them.
		for _, k := range plan.Keep {
			if hiddenBy([]string{h}, k.Path) == "" {
				continue
			}
			fd, err := unix.Open(k.Path, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
			if err != nil {
				if k.Optional && err == unix.ENOENT {
					continue
				}
				return fmt.Errorf("open kept path %s: %w", k.Path, err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				_ = unix.Close(fd)
				return fmt.Errorf("stat kept path %s: %w", k.Path, err)
			}
			binds = append(binds, bound{k: k, fd: fd, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR})
		}
		if err := unix.Mount("mcp-jupyter-hidden", h, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, coverOptions); err != nil {
			return fmt.Errorf("cover %s with an empty tmpfs: %w", h, err)
		}
		for _, b := range binds {
			target := b.k.Path
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return fmt.Errorf("make mount point of %s: %w", target, err)
			}
			if b.dir {
				if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
					return fmt.Errorf("make mount point of %s: %w", target, err)
				}
			} else if err := os.WriteFile(target, nil, 0o600); err != nil {
				return fmt.Errorf("make mount point of %s: %w", target, err)
			}
			src := "/proc/self/fd/" + strconv.Itoa(b.fd)
			if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s back: %w", target, err)
			}
			if !b.k.Write {
				if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
					return fmt.Errorf("make %s read-only: %w", target, err)
				}
			}
		}
		if err := unix.Mount("", h, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, coverOptions); err != nil {
			return fmt.Errorf("make the cover of %s read-only: %w", h, err)
		}
	}
	return nil
}

// kernelTunables are made read-only in the launcher's mount namespace: a
// root kernel writing /proc/sys/kernel/core_pattern, or a uevent helper
// under /sys, would run a program of its choosing outside every sandbox.
var kernelTunables = []string{"/proc/sys", "/sys"}

// freezeKernelTunables bind-mounts each of kernelTunables onto itself and
// remounts the bind read-only. Without CAP_SYS_ADMIN (dropped next) and
// inside Landlock (which refuses mount changes) the kernel cannot undo it.
func freezeKernelTunables() error {
	for _, p := range kernelTunables {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}
