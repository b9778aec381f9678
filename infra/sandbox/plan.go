package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Subcommand is the hidden first argument that turns the server binary (or
// a test binary, see the package doc) into the launcher.
const Subcommand = "kernel-sandbox"

// Mode is how hard the server insists on confining kernels.
type Mode string

const (
	// ModeAuto confines with what the machine offers and starts the kernel
	// unconfined, loudly, when it offers nothing.
	ModeAuto Mode = "auto"
	// ModeRequired refuses to start a kernel that cannot be confined.
	ModeRequired Mode = "required"
	// ModeOff starts kernels directly, without the launcher.
	ModeOff Mode = "off"
)

// ParseMode reads a --kernel-sandbox value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeAuto, ModeRequired, ModeOff:
		return m, nil
	case "":
		return ModeAuto, nil
	}
	return "", fmt.Errorf("kernel sandbox mode %q: give auto, required or off", s)
}

// Keep is a path inside a hidden directory that the kernel may still use.
type Keep struct {
	Path  string `json:"path"`
	Write bool   `json:"write"`
	// Optional paths that do not exist when the kernel starts are skipped.
	Optional bool `json:"optional,omitempty"`
}

// Plan is what the launcher must do; Start passes it on the command line.
type Plan struct {
	Mode Mode `json:"mode"`
	// Hide lists directories the kernel must not reach (the data dir).
	Hide []string `json:"hide"`
	// Keep lists paths inside Hide the kernel may use.
	Keep []Keep `json:"keep,omitempty"`
	// Without names mechanisms to treat as unavailable ("landlock",
	// "mount"): for tests of the degraded paths, and for operators who
	// must avoid one of them.
	Without []string `json:"without,omitempty"`

	// Set by Start.
	Exe   string `json:"exe"`             // resolved kernel executable
	Mount bool   `json:"mount,omitempty"` // the launcher runs in its own mount namespace
}

func (p Plan) without(mechanism string) bool {
	for _, w := range p.Without {
		if w == mechanism {
			return true
		}
	}
	return false
}

// validate checks what a wrong plan would silently weaken: relative or
// unclean paths, keeps outside every hidden directory.
func (p Plan) validate() error {
	if p.Mode != ModeAuto && p.Mode != ModeRequired {
		return fmt.Errorf("sandbox plan: mode %q", p.Mode)
	}
	if len(p.Hide) == 0 {
		return errors.New("sandbox plan: nothing to hide")
	}
	for _, h := range p.Hide {
		if !filepath.IsAbs(h) || filepath.Clean(h) != h || h == "/" {
			return fmt.Errorf("sandbox plan: hidden directory %q must be absolute, clean and not /", h)
		}
	}
	for _, k := range p.Keep {
		if !filepath.IsAbs(k.Path) || filepath.Clean(k.Path) != k.Path {
			return fmt.Errorf("sandbox plan: kept path %q must be absolute and clean", k.Path)
		}
		if hiddenBy(p.Hide, k.Path) == "" {
			return fmt.Errorf("sandbox plan: kept path %q is not inside a hidden directory", k.Path)
		}
	}
	return nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// hiddenBy returns the hidden directory path is in, or "".
func hiddenBy(hide []string, path string) string {
	for _, h := range hide {
		if within(path, h) {
			return h
		}
	}
	return ""
}

// Report is what the launcher applied to one kernel.
type Report struct {
	// LandlockABI is the Landlock ABI the kernel is confined with (0: none).
	LandlockABI int `json:"landlock_abi,omitempty"`
	// MountNamespace: the hidden directories are covered by an empty tmpfs
	// in the kernel's own mount namespace.
	MountNamespace bool `json:"mount_namespace,omitempty"`
	// CapsDropped: a root kernel lost the capabilities that would undo
	// the confinement (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...).
	CapsDropped bool `json:"caps_dropped,omitempty"`
	// Scoped lists the Landlock IPC scopes (signal, abstract_unix_socket).
	Scoped []string `json:"scoped,omitempty"`
	// Siblings: Landlock grants were built from the siblings of the path
	// to each hidden directory; directories on that path take no new
	// entries (see Warning).
	Siblings bool `json:"siblings,omitempty"`
	// Warning says what is weaker than it could be, for the log.
	Warning string `json:"warning,omitempty"`
	// Error is set when the launcher refused or failed; the kernel did not
	// start.
	Error string `json:"error,omitempty"`
}

// Protected reports whether the hidden directories and the server's /proc
// files are out of the kernel's reach. Only Landlock gives that: a mount
// cover alone can be walked around through /proc/<pid>/root of any other
// process of the same uid.
func (r Report) Protected() bool { return r.LandlockABI > 0 }

// String is the one-word-per-mechanism summary recorded with the kernel:
// "landlock-v7+mount+caps", "landlock-v7", "mount+caps", "none" or "off".
func (r Report) String() string {
	var parts []string
	if r.LandlockABI > 0 {
		parts = append(parts, fmt.Sprintf("landlock-v%d", r.LandlockABI))
	}
	if r.MountNamespace {
		parts = append(parts, "mount")
	}
	if r.CapsDropped {
		parts = append(parts, "caps")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}
