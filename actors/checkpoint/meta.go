package checkpoint

import (
	"fmt"
	"time"
)

// Policy says what a load does when the kernel's packages differ from the
// ones recorded at save time.
type Policy string

const (
	PolicyWarn    Policy = "warn"    // restore and report (default)
	PolicyRefuse  Policy = "refuse"  // restore nothing
	PolicyInstall Policy = "install" // pip-install the recorded versions, then restore
)

// ParsePolicy accepts "", warn, refuse and install.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "":
		return PolicyWarn, nil
	case PolicyWarn, PolicyRefuse, PolicyInstall:
		return Policy(s), nil
	}
	return "", fmt.Errorf("policy %q: give warn (restore and report), refuse or install", s)
}

// FormatVersion is the version of the checkpoint files this server writes
// (infra/checkpointfile.FormatVersion; recorded in Meta). Files of format
// 1 still load.
const FormatVersion = 2

// Meta describes a checkpoint. It is stored, signed, inside the file and as
// <name>.json beside it. NB: its JSON is part of the file format: Friday's
// files are read on Monday by a newer binary; additive changes only.
type Meta struct {
	Name string `json:"name"`
	// Owner is whose checkpoint it is, as the client answers (the stored
	// name says it; not part of the signed metadata).
	Owner         string    `json:"owner,omitempty"`
	KernelID      string    `json:"kernel_id"`
	Notebook      string    `json:"notebook,omitempty"`
	Created       time.Time `json:"created"`
	FormatVersion int       `json:"format_version"`
	KeyID         string    `json:"key_id"`
	Encrypted     bool      `json:"encrypted"`
	PayloadBytes  int64     `json:"payload_bytes"`
	// SHA256 identifies the content: format 2, the SHA-256 of the file's
	// chunk tags (they authenticate every chunk); format 1, of the payload
	// as stored.
	SHA256    string            `json:"sha256"`
	FileBytes int64             `json:"file_bytes,omitempty"`
	Python    string            `json:"python"`
	Packages  map[string]string `json:"packages"`
	Saved     []Variable        `json:"saved"`
	Skipped   []Variable        `json:"skipped"`
	// NotReplicated, on a save's answer only, says why the file was
	// committed and recorded on this node but its copy off the node (a
	// cluster's object store, Deps.Replica) failed: the checkpoint is on
	// this node only. Never part of the signed metadata.
	NotReplicated string `json:"-"`
}

// SaveRequest asks for a checkpoint of a kernel's variables.
type SaveRequest struct {
	Name string
	// Owner is the principal whose checkpoint it is (the one saving; ""
	// or "admin": the admin's). Name is looked up among Owner's names.
	Owner string
	// By is the principal asking (recorded on the events).
	By        string
	KernelID  string
	Notebook  string
	Variables []string // empty: every user global that can be saved
	Overwrite bool
}

// LoadRequest asks to restore a checkpoint into a kernel.
type LoadRequest struct {
	Name string
	// Owner is whose checkpoint Name is ("" or "admin": the admin's); By
	// is the principal loading it.
	Owner    string
	By       string
	KernelID string
	Policy   Policy
	// AllowRollback loads a file that is an older version of Name than the
	// newest save the log recorded (an old copy put back on purpose).
	AllowRollback bool
	// Restore: the server's restore of a relaunched kernel: the load runs
	// through RestoreRunner.RunRestore, ahead of the held queue.
	Restore bool
}

// Listed is one checkpoint file as list_checkpoints shows it. Verified
// means its signed name is its file name and its metadata (sha256, size,
// key) is the newest save of that name the log recorded; the payload's
// signature itself is checked in full at every load. Problem says why an
// entry is not verified: saved under another name, an older version, not
// recorded, unreadable.
//
// Name is the checkpoint's name within its Owner's names (the admin owns
// the checkpoints from before principals existed); Stored is its stored
// name (see Stored).
type Listed struct {
	Meta
	Owner    string `json:"owner"`
	Stored   string `json:"-"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

// Listing is every checkpoint file, and what was skipped without being
// opened (a named pipe, socket, symbolic link or directory named like a
// checkpoint), each with why.
type Listing struct {
	Checkpoints []Listed `json:"checkpoints"`
	Skipped     []string `json:"skipped,omitempty"`
}

// LoadResult is what a load did.
type LoadResult struct {
	// RolledBack: the file was an older version than the newest recorded
	// save, loaded because the request allowed it.
	RolledBack bool
	Meta       Meta
	Restored   []string
	Missing    []string // recorded packages the kernel lacks (name==version)
	Mismatched []string // recorded packages at another version in the kernel
	Installs   []InstallResult
	Python     string // the kernel's Python version
}
