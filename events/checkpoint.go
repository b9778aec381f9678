package events

// Checkpoints of kernel variables, on stream checkpoint/<name>.
// NB: type strings must not change.
const (
	TypeCheckpointSaved    = "CheckpointSaved"
	TypeCheckpointLoaded   = "CheckpointLoaded"
	TypeCheckpointRejected = "CheckpointRejected"
	TypeCheckpointDeleted  = "CheckpointDeleted"
)

// CheckpointVariable describes one variable saved or skipped.
type CheckpointVariable struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size,omitempty"`
	Reason string `json:"reason,omitempty"` // why it was skipped
}

// CheckpointSaved: a signed checkpoint file is durable under checkpoints/.
type CheckpointSaved struct {
	Name     string `json:"name"`
	KernelID string `json:"kernel_id"`
	Notebook string `json:"notebook,omitempty"`
	File     string `json:"file"`
	Size     int64  `json:"size"`
	// SHA256 identifies the file's content: for format 2 files the SHA-256
	// of their chunk tags (which authenticate every chunk), for format 1
	// files of their payload.
	SHA256    string               `json:"sha256"`
	KeyID     string               `json:"key_id"`
	Encrypted bool                 `json:"encrypted,omitempty"`
	Saved     []CheckpointVariable `json:"saved"`
	Skipped   []CheckpointVariable `json:"skipped,omitempty"`
	// Python and Packages describe the kernel's environment at save time
	// (package versions come from the kernel, not the server).
	Python   string            `json:"python,omitempty"`
	Packages map[string]string `json:"packages,omitempty"`
}

// CheckpointLoaded: a verified checkpoint was restored into a kernel.
type CheckpointLoaded struct {
	Name       string   `json:"name"`
	KernelID   string   `json:"kernel_id"`
	Restored   []string `json:"restored"`
	Missing    []string `json:"missing_packages,omitempty"`
	Mismatched []string `json:"mismatched_packages,omitempty"`
	Policy     string   `json:"policy,omitempty"`
	Installed  []string `json:"installed_packages,omitempty"`
}

// CheckpointRejected: a checkpoint failed verification or policy; nothing of
// it reached the kernel.
type CheckpointRejected struct {
	Name     string `json:"name"`
	KernelID string `json:"kernel_id,omitempty"`
	Reason   string `json:"reason"`
	// Signature: the file failed verification (tampered, truncated, unknown
	// key, newer format), as opposed to a refusal by policy.
	Signature bool `json:"signature,omitempty"`
}

// CheckpointDeleted: the checkpoint's files were removed.
type CheckpointDeleted struct {
	Name string `json:"name"`
}

func (CheckpointSaved) EventType() string    { return TypeCheckpointSaved }
func (CheckpointLoaded) EventType() string   { return TypeCheckpointLoaded }
func (CheckpointRejected) EventType() string { return TypeCheckpointRejected }
func (CheckpointDeleted) EventType() string  { return TypeCheckpointDeleted }
