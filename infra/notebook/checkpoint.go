package notebook

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Checkpoints are copies of a file kept beside it in the layout of
// jupyter_server's FileCheckpoints, so a Jupyter Server opened on the same
// directory sees the same ones:
//
//	<dir>/.ipynb_checkpoints/<stem>-<id><ext>
//
// Two kinds of id exist: "checkpoint" (what a frontend asks for: one per
// file, each new one replaces it, as in Jupyter) and "replaced-<16 hex of
// the sha256>" (a version a whole-file save replaced, kept so a save never
// loses another writer's version silently; the newest MaxReplacedKept per
// file are kept).

// CheckpointDir is the directory, beside a file, holding its checkpoints.
const CheckpointDir = ".ipynb_checkpoints"

// CheckpointID is the id of the checkpoint a frontend creates.
const CheckpointID = "checkpoint"

// MaxReplacedKept bounds the replaced versions kept per file.
const MaxReplacedKept = 10

// ErrNoCheckpoint: no checkpoint with that id for that file.
var ErrNoCheckpoint = errors.New("notebook: no such checkpoint")

var checkpointIDs = regexp.MustCompile(`^(checkpoint|replaced-[0-9a-f]{16})$`)

// ValidCheckpointID reports whether id is one this package makes.
func ValidCheckpointID(id string) bool { return checkpointIDs.MatchString(id) }

// ReplacedID is the checkpoint id of the version with sha256 hash that a
// save replaced.
func ReplacedID(hash string) string {
	if len(hash) > 16 {
		hash = hash[:16]
	}
	return "replaced-" + hash
}

// Checkpoint is one kept copy of a file.
type Checkpoint struct {
	ID       string
	Modified time.Time
}

func splitExt(base string) (stem, ext string) {
	ext = filepath.Ext(base)
	return strings.TrimSuffix(base, ext), ext
}

// CheckpointPath is where checkpoint id of the file at abs lives.
func CheckpointPath(abs, id string) string {
	dir, base := filepath.Split(abs)
	stem, ext := splitExt(base)
	return filepath.Join(dir, CheckpointDir, stem+"-"+id+ext)
}

// WriteCheckpoint writes b as checkpoint id of the file at abs (atomically,
// synced), creating the checkpoint directory when needed.
func WriteCheckpoint(abs, id string, b []byte) error {
	if !ValidCheckpointID(id) {
		return fmt.Errorf("%w: %q is not a checkpoint id", ErrNoCheckpoint, id)
	}
	p := CheckpointPath(abs, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	if err := WriteFile(p, b); err != nil { // NB: the file's own mode, not atomicfile's 0600
		return fmt.Errorf("write checkpoint %s: %w", p, err)
	}
	return nil
}

// ReadCheckpoint reads checkpoint id of the file at abs.
func ReadCheckpoint(abs, id string) ([]byte, error) {
	if !ValidCheckpointID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoCheckpoint, id)
	}
	b, err := os.ReadFile(CheckpointPath(abs, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNoCheckpoint, id)
	}
	return b, err
}

// ListCheckpoints lists the checkpoints of the file at abs: the replaced
// versions oldest first, then the frontend's own checkpoint (the one
// JupyterLab reverts to: the last listed).
func ListCheckpoints(abs string) ([]Checkpoint, error) {
	dir, base := filepath.Split(abs)
	stem, ext := splitExt(base)
	entries, err := os.ReadDir(filepath.Join(dir, CheckpointDir))
	if errors.Is(err, fs.ErrNotExist) {
		return []Checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", abs, err)
	}
	out := []Checkpoint{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, stem+"-") || !strings.HasSuffix(name, ext) {
			continue
		}
		id := strings.TrimSuffix(strings.TrimPrefix(name, stem+"-"), ext)
		if !ValidCheckpointID(id) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Checkpoint{ID: id, Modified: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool {
		// NB: the frontend's own checkpoint is last whatever its time: a
		// frontend's "revert" restores the last one listed, as with
		// jupyter_server, which lists only that one.
		if ci, cj := out[i].ID == CheckpointID, out[j].ID == CheckpointID; ci != cj {
			return cj
		}
		if !out[i].Modified.Equal(out[j].Modified) {
			return out[i].Modified.Before(out[j].Modified)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RemoveCheckpoint removes checkpoint id of the file at abs.
func RemoveCheckpoint(abs, id string) error {
	if !ValidCheckpointID(id) {
		return fmt.Errorf("%w: %q", ErrNoCheckpoint, id)
	}
	err := os.Remove(CheckpointPath(abs, id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNoCheckpoint, id)
	}
	return err
}

// RemoveCheckpoints removes every checkpoint of the file at abs (as Jupyter
// does when the file is deleted).
func RemoveCheckpoints(abs string) {
	cps, _ := ListCheckpoints(abs)
	for _, c := range cps {
		_ = os.Remove(CheckpointPath(abs, c.ID))
	}
}

// RenameCheckpoints moves the checkpoints of the file at oldAbs to those of
// newAbs (as Jupyter does when the file is renamed). Best effort: a
// checkpoint that cannot move stays under the old name.
func RenameCheckpoints(oldAbs, newAbs string) {
	cps, _ := ListCheckpoints(oldAbs)
	for _, c := range cps {
		to := CheckpointPath(newAbs, c.ID)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			continue
		}
		_ = os.Rename(CheckpointPath(oldAbs, c.ID), to)
	}
}

// PruneReplaced removes the oldest replaced-version checkpoints of the file
// at abs beyond MaxReplacedKept.
func PruneReplaced(abs string) {
	cps, _ := ListCheckpoints(abs)
	var replaced []Checkpoint
	for _, c := range cps {
		if strings.HasPrefix(c.ID, "replaced-") {
			replaced = append(replaced, c)
		}
	}
	for len(replaced) > MaxReplacedKept {
		_ = os.Remove(CheckpointPath(abs, replaced[0].ID))
		replaced = replaced[1:]
	}
}
