package checkpoint

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxNameLen bounds a checkpoint name.
const MaxNameLen = 100

// ErrInvalidName: the name cannot be a checkpoint name.
var ErrInvalidName = errors.New("checkpoint: invalid name")

// ValidName accepts 1..MaxNameLen letters, digits, '-', '_' and '.', not
// starting with '.'. NB: the name becomes a file name under checkpoints/;
// this is what keeps "../../etc/passwd" out.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the name is empty: give one such as \"friday\"", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: the name is %d characters long: use at most %d", ErrInvalidName, len(name), MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w %q: a name must not start with '.': use letters, digits, '-', '_' and '.'", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w %q: character %q is not allowed (no slashes or paths): use letters, digits, '-', '_' and '.'", ErrInvalidName, name, c)
		}
	}
	return nil
}

// Checkpoint names are per principal: alice's "x" and bob's "x" are two
// checkpoints. A checkpoint is stored (its file, its stream, the name its
// file's metadata signs) under its stored name: the plain name for the
// admin's checkpoints (all checkpoints from before principals existed are
// the admin's), and "<owner>~<name>" for anyone else's. '~' is in no
// checkpoint name, so the stored name says whose it is, and the signature
// binds a file to its owner: a file copied into another principal's
// namespace is refused as renamed.
const ownerSep = "~"

// AdminOwner owns the checkpoints stored under plain names. NB:
// infra/auth.AdminName; actors import no infra.
const AdminOwner = "admin"

// MaxStoredLen bounds a stored name (a file name, with ".ckpt" and the
// staging suffixes, must fit in 255 bytes).
const MaxStoredLen = 200

// Stored returns the stored name of owner's checkpoint name.
func Stored(owner, name string) string {
	if owner == "" || owner == AdminOwner {
		return name
	}
	return escapeOwner(owner) + ownerSep + name
}

// Owned splits a stored name into its owner and the checkpoint's name.
func Owned(stored string) (owner, name string) {
	seg, name, ok := strings.Cut(stored, ownerSep)
	if !ok {
		return AdminOwner, stored
	}
	return unescapeOwner(seg), name
}

// ValidStored accepts what Stored returns for a valid name and an owner.
func ValidStored(stored string) error {
	if len(stored) > MaxStoredLen {
		return fmt.Errorf("%w: %q with its owner is %d bytes long: use a shorter name (at most %d bytes in all)", ErrInvalidName, stored, len(stored), MaxStoredLen)
	}
	seg, name, ok := strings.Cut(stored, ownerSep)
	if !ok {
		return ValidName(stored)
	}
	if seg == "" || seg[0] == '.' || strings.Contains(name, ownerSep) {
		return fmt.Errorf("%w %q: not a checkpoint of a principal", ErrInvalidName, stored)
	}
	for i := 0; i < len(seg); i++ {
		if !ownerByte(seg[i]) && seg[i] != '%' {
			return fmt.Errorf("%w %q: its owner part holds %q", ErrInvalidName, stored, seg[i])
		}
	}
	return ValidName(name)
}

// ownerByte: bytes an owner keeps as is in a file name; others are %XX
// (an OAuth subject may hold any character, '/' included).
func ownerByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
}

func escapeOwner(owner string) string {
	var b strings.Builder
	for i := 0; i < len(owner); i++ {
		c := owner[i]
		if ownerByte(c) && !(i == 0 && c == '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func unescapeOwner(seg string) string {
	if !strings.Contains(seg, "%") {
		return seg
	}
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] == '%' && i+2 < len(seg) {
			if v, err := strconv.ParseUint(seg[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(seg[i])
	}
	return b.String()
}

// Display is how people name a stored checkpoint: the admin's by its name,
// anyone else's as "<owner>/<name>" (what the tools accept).
func Display(stored string) string {
	owner, name := Owned(stored)
	if owner == AdminOwner {
		return name
	}
	return owner + "/" + name
}
