package metrics

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// ProjectionName is the metrics projection's snapshot name. NB: stored in
// the log; must not change.
const ProjectionName = "metrics"

// LatencyBuckets are the upper bounds (seconds) of the execution latency
// histogram: from a print to an hour-long training step.
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// SizeBuckets are the upper bounds (bytes) of the checkpoint size histogram.
var SizeBuckets = []float64{1 << 10, 64 << 10, 1 << 20, 16 << 20, 128 << 20, 1 << 30, 4 << 30}

// Execution states and outcomes as labels. NB: label values must not change.
const (
	stateQueued  = "queued"
	stateRunning = "running"
)

// live is an execution not yet finished.
type live struct {
	Kernel  string `json:"k"`
	Running bool   `json:"r,omitempty"`
	Started int64  `json:"t,omitempty"` // unix nanoseconds of ExecutionStarted
	// Behind: pipelined behind this execution, counted queued until it ends.
	Behind string `json:"b,omitempty"`
}

// histogram is a cumulative-free bucket count (the collector accumulates).
type histogram struct {
	Counts []uint64 `json:"counts"`
	Sum    float64  `json:"sum"`
	Count  uint64   `json:"count"`
}

func newHistogram(bounds []float64) histogram { return histogram{Counts: make([]uint64, len(bounds))} }

func (h *histogram) observe(bounds []float64, v float64) {
	if len(h.Counts) != len(bounds) {
		h.Counts = make([]uint64, len(bounds))
	}
	i := sort.SearchFloat64s(bounds, v)
	if i < len(bounds) {
		h.Counts[i]++
	}
	h.Sum += v
	h.Count++
}

func (h histogram) metric(d *prometheus.Desc, bounds []float64) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}

// folded is everything the projection knows; it is the snapshot.
type folded struct {
	Live       map[string]live   `json:"live"`       // execution id -> unfinished execution
	Outcomes   map[string]uint64 `json:"outcomes"`   // finished executions by outcome
	Latency    histogram         `json:"latency"`    // ExecutionStarted -> final event
	Kernels    map[string]string `json:"kernels"`    // kernel id -> state (shut-down kernels leave)
	ShutDown   uint64            `json:"shut_down"`  // kernels shut down
	Restarts   uint64            `json:"restarts"`   // KernelRestarted
	Deaths     uint64            `json:"deaths"`     // KernelDied
	Lost       uint64            `json:"lost"`       // KernelLost
	StartFails uint64            `json:"start_fail"` // KernelStartFailed
	IOPub      uint64            `json:"iopub"`      // IOPubMessageReceived
	IOPubGaps  uint64            `json:"iopub_gaps"` // IOPubGapRecorded
	IOPubDrop  uint64            `json:"iopub_drop"` // messages dropped per IOPubGapRecorded
	Assets     map[string]int64  `json:"assets"`     // sha256 -> size, stored and not collected
	Expiries   uint64            `json:"expiries"`   // LeaseExpired
	GCDeleted  uint64            `json:"gc_deleted"` // AssetCollected
	GCBytes    uint64            `json:"gc_bytes"`
	CkSaved    uint64            `json:"ck_saved"`
	CkLoaded   uint64            `json:"ck_loaded"`
	CkRejected uint64            `json:"ck_rejected"`
	SigFails   uint64            `json:"sig_fails"`
	Missing    map[string]int    `json:"missing"` // kernel -> missing packages at its last checkpoint load
	// Restores counts KernelRestored by outcome (restoreOutcome).
	Restores map[string]uint64 `json:"restores,omitempty"`
	Culled   uint64            `json:"culled,omitempty"`     // KernelShutDown with Culled
	AutoSave uint64            `json:"auto_saved,omitempty"` // CheckpointSaved of an auto-checkpoint
	// AutoKernels are the kernels not shut down whose auto-checkpoint the
	// log has seen saved: a restore of one that loaded nothing failed; of
	// any other there was nothing to restore.
	AutoKernels map[string]bool `json:"auto_kernels,omitempty"`
	// Next maps an execution to the one pipelined behind it.
	Next    map[string]string `json:"next,omitempty"`
	Events  uint64            `json:"events"` // events folded
	LastSeq uint64            `json:"last_seq"`
}

func newFolded() folded {
	return folded{Live: map[string]live{}, Outcomes: map[string]uint64{}, Latency: newHistogram(LatencyBuckets),
		Kernels: map[string]string{}, Assets: map[string]int64{}, Missing: map[string]int{}, Next: map[string]string{},
		Restores: map[string]uint64{}, AutoKernels: map[string]bool{}}
}

// Projection folds the log into metrics. It implements
// projections.Projection and prometheus.Collector; Apply runs on the
// runner's goroutine while scrapes Collect concurrently.
type Projection struct {
	mu sync.RWMutex
	f  folded
}

var (
	_ projections.Projection = (*Projection)(nil)
	_ prometheus.Collector   = (*Projection)(nil)
)

// NewProjection returns an empty metrics projection.
func NewProjection() *Projection { return &Projection{f: newFolded()} }

// Name implements projections.Projection.
func (p *Projection) Name() string { return ProjectionName }

// Wants implements projections.Projection: the high-volume types (IOPub,
// execution lifecycle, kernel lifecycle) are counted from the envelope;
// payloads are decoded only where a figure lives in them.
func (p *Projection) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeExecutionStarted, events.TypeExecutionFinished, events.TypeIOPubGapRecorded, events.TypeAssetStored, events.TypeAssetCollected,
		events.TypeCheckpointSaved, events.TypeCheckpointLoaded, events.TypeCheckpointRejected,
		events.TypeKernelShutDown, events.TypeKernelRestored:
		return projections.Payload
	case events.TypeServerStarted, events.TypeServerStopped:
		return projections.Skip
	}
	if events.Known(typ) {
		return projections.Envelope
	}
	return projections.Skip
}

// Apply implements projections.Projection. It is a pure fold: times come
// from the envelopes.
func (p *Projection) Apply(e events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := &p.f
	f.Events++
	f.LastSeq = e.Seq
	id := events.StreamID(e.Stream)
	switch e.Type {
	case events.TypeExecutionQueued:
		f.Live[id] = live{Kernel: e.Kernel}
	case events.TypeExecutionStarted:
		if x, ok := f.Live[id]; ok {
			p, _ := e.Payload.(events.ExecutionStarted)
			if _, first := f.Live[p.Behind]; p.Behind != "" && first {
				// NB: pipelined: it waits behind that one, queued.
				x.Behind, f.Next[p.Behind] = p.Behind, id
			} else {
				x.Running, x.Started = true, e.Time.UnixNano()
			}
			f.Live[id] = x
		}
	case events.TypeExecutionFinished:
		pl, ok := e.Payload.(events.ExecutionFinished)
		if !ok {
			return fmt.Errorf("metrics: %s payload is %T", e.Type, e.Payload)
		}
		outcome := pl.Status
		if outcome != "ok" && outcome != "error" && outcome != "aborted" {
			outcome = "other"
		}
		f.finish(id, outcome, e)
	case events.TypeExecutionInterrupted:
		f.finish(id, "interrupted", e)
	case events.TypeExecutionCancelled:
		f.finish(id, "cancelled", e)
	case events.TypeExecutionLost:
		f.finish(id, "lost", e)
	case events.TypeKernelStarted, events.TypeKernelReattached:
		f.Kernels[e.Kernel] = "running"
	case events.TypeKernelRestarted:
		f.Kernels[e.Kernel] = "running"
		f.Restarts++
	case events.TypeKernelDied:
		f.Kernels[e.Kernel] = "dead"
		f.Deaths++
	case events.TypeKernelLost:
		f.Kernels[e.Kernel] = "lost"
		f.Lost++
	case events.TypeKernelStartFailed:
		f.StartFails++
	case events.TypeKernelShutDown:
		if _, ok := f.Kernels[e.Kernel]; ok {
			delete(f.Kernels, e.Kernel)
			f.ShutDown++
			if pl, ok := e.Payload.(events.KernelShutDown); ok && pl.Culled {
				f.Culled++
			}
		}
		delete(f.Missing, e.Kernel)
		delete(f.AutoKernels, e.Kernel)
	case events.TypeKernelRestored:
		if pl, ok := e.Payload.(events.KernelRestored); ok {
			k := pl.KernelID
			if k == "" {
				k = e.Kernel
			}
			f.Restores[restoreOutcome(pl, f.AutoKernels[k])]++
		}
	case events.TypeIOPubMessageReceived:
		f.IOPub++
	case events.TypeIOPubGapRecorded:
		if pl, ok := e.Payload.(events.IOPubGapRecorded); ok {
			f.IOPubGaps++
			f.IOPubDrop += uint64(max(pl.Dropped, 0))
		}
	case events.TypeAssetStored:
		if pl, ok := e.Payload.(events.AssetStored); ok {
			f.Assets[pl.SHA256] = pl.Size
		}
	case events.TypeAssetCollected:
		if pl, ok := e.Payload.(events.AssetCollected); ok {
			delete(f.Assets, pl.SHA256)
			f.GCDeleted++
			f.GCBytes += uint64(max(pl.Size, 0))
		}
	case events.TypeLeaseExpired:
		f.Expiries++
	case events.TypeCheckpointSaved:
		// NB: checkpoint_size_bytes is fed by the checkpoint actor (Live).
		if pl, ok := e.Payload.(events.CheckpointSaved); ok {
			f.CkSaved++
			if k, auto := autoCheckpointOf(pl.Name); auto {
				f.AutoSave++
				f.AutoKernels[k] = true
			}
		}
	case events.TypeCheckpointLoaded:
		if pl, ok := e.Payload.(events.CheckpointLoaded); ok {
			f.CkLoaded++
			k := pl.KernelID
			if k == "" {
				k = e.Kernel
			}
			f.Missing[k] = len(pl.Missing)
		}
	case events.TypeCheckpointRejected:
		if pl, ok := e.Payload.(events.CheckpointRejected); ok {
			f.CkRejected++
			if pl.Signature || isSignatureFailure(pl.Reason) {
				f.SigFails++
			}
		}
	}
	return nil
}

// Restore outcomes as labels. NB: label values must not change.
const (
	restoreRestored = "restored" // every variable and package back
	restorePartial  = "partial"  // loaded, but variables skipped or packages missing or different
	restoreFailed   = "failed"   // an auto-checkpoint was saved, and nothing of it is back
	restoreNone     = "none"     // no auto-checkpoint was ever saved: nothing to load (a kernel busy at every save loses its variables here)
)

var restoreOutcomes = []string{restoreRestored, restorePartial, restoreFailed, restoreNone}

// restoreOutcome classifies a restore of a relaunched kernel. hadAuto: the
// log holds a save of that kernel's auto-checkpoint.
func restoreOutcome(r events.KernelRestored, hadAuto bool) string {
	loaded := r.Checkpoint != "" && r.Error == ""
	switch {
	case loaded && len(r.Skipped) == 0 && len(r.Missing) == 0 && len(r.Mismatched) == 0:
		return restoreRestored
	case loaded || len(r.Restored) > 0:
		return restorePartial
	case !hadAuto && r.Checkpoint == "":
		return restoreNone
	default:
		return restoreFailed
	}
}

// autoCheckpointPrefix starts the name of every auto-checkpoint (the
// server's save of a kernel's state, "auto-<kernel id>", stored in its
// owner's names as "<owner>~auto-<kernel id>"). NB: the names of the
// contract of issue 18 (cmd/mcp-jupyter autoCheckpointName).
const autoCheckpointPrefix, ownerSep = "auto-", "~"

// autoCheckpointOf returns the kernel whose auto-checkpoint stored is.
func autoCheckpointOf(stored string) (kernelID string, ok bool) {
	if _, name, owned := strings.Cut(stored, ownerSep); owned {
		stored = name
	}
	kernelID, ok = strings.CutPrefix(stored, autoCheckpointPrefix)
	return kernelID, ok && kernelID != ""
}

// isSignatureFailure reports whether a rejection is a failed signature
// check (tampering or a wrong key), as opposed to policy, for events written
// before CheckpointRejected carried Signature.
func isSignatureFailure(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "signature") || strings.Contains(r, "hmac")
}

func (f *folded) finish(id, outcome string, e events.Event) {
	x, ok := f.Live[id]
	if !ok {
		return // finished twice, or queued before a truncated prefix
	}
	delete(f.Live, id)
	f.Outcomes[outcome]++
	if next, ok := f.Next[id]; ok {
		delete(f.Next, id)
		// NB: one the kernel ended lets the next one run; a loss or a cancel
		// (the kernel died, was stopped) ends it too.
		if y, ok := f.Live[next]; ok && outcome != "lost" && outcome != "cancelled" {
			y.Running, y.Started, y.Behind = true, e.Time.UnixNano(), ""
			f.Live[next] = y
		}
	}
	if x.Running && x.Started != 0 {
		if d := e.Time.UnixNano() - x.Started; d >= 0 {
			f.Latency.observe(LatencyBuckets, float64(d)/1e9)
		}
	}
}

// Snapshot implements projections.Projection.
func (p *Projection) Snapshot() ([]byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return json.Marshal(p.f)
}

// Restore implements projections.Projection.
func (p *Projection) Restore(data []byte) error {
	f := newFolded()
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("metrics: decode snapshot: %w", err)
	}
	if f.Live == nil {
		f.Live = map[string]live{}
	}
	if f.Next == nil {
		f.Next = map[string]string{}
	}
	if f.Outcomes == nil {
		f.Outcomes = map[string]uint64{}
	}
	if f.Kernels == nil {
		f.Kernels = map[string]string{}
	}
	if f.Assets == nil {
		f.Assets = map[string]int64{}
	}
	if f.Missing == nil {
		f.Missing = map[string]int{}
	}
	if f.Restores == nil {
		f.Restores = map[string]uint64{}
	}
	if f.AutoKernels == nil {
		f.AutoKernels = map[string]bool{}
	}
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
	return nil
}
