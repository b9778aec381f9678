package events

import "time"

// Assets and their leases, on stream asset/<sha256>.
// NB: type strings must not change.
const (
	TypeAssetStored    = "AssetStored"
	TypeLeaseGranted   = "LeaseGranted"
	TypeLeaseRenewed   = "LeaseRenewed"
	TypeLeaseExpired   = "LeaseExpired"
	TypeAssetCollected = "AssetCollected"
)

// AssetStored: a rich or large output was written, content-addressed.
type AssetStored struct {
	SHA256      string `json:"sha256"`
	MIME        string `json:"mime"`
	Size        int64  `json:"size"`
	KernelID    string `json:"kernel_id,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	OutputIndex int    `json:"output_index"`
}

// LeaseGranted: a holder keeps the asset until ExpiresAt.
type LeaseGranted struct {
	SHA256    string    `json:"sha256"`
	Holder    string    `json:"holder"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LeaseRenewed: the asset was read or referenced; its lease runs longer.
type LeaseRenewed struct {
	SHA256    string    `json:"sha256"`
	Holder    string    `json:"holder"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LeaseExpired: a lease ran out.
type LeaseExpired struct {
	SHA256 string `json:"sha256"`
	Holder string `json:"holder"`
}

// AssetCollected: the GC decided no lease holds the asset and deletes its
// file. It is appended before the file is deleted (the intent): a restart
// finishes a deletion it interrupted.
type AssetCollected struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// DecidedAt is the GC clock the decision was taken at: every lease of
	// the asset expired at or before it. Optional (added in v1).
	DecidedAt time.Time `json:"decided_at,omitzero"`
}

func (AssetStored) EventType() string    { return TypeAssetStored }
func (LeaseGranted) EventType() string   { return TypeLeaseGranted }
func (LeaseRenewed) EventType() string   { return TypeLeaseRenewed }
func (LeaseExpired) EventType() string   { return TypeLeaseExpired }
func (AssetCollected) EventType() string { return TypeAssetCollected }
