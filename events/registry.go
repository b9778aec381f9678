package events

import (
	"fmt"
	"reflect"
	"sort"
)

// typeInfo describes one registered event type.
type typeInfo struct {
	version uint16                        // the version this binary writes
	decode  func([]byte) (Payload, error) // decodes the current version
}

func entry[T Payload](version uint16) typeInfo {
	flat := newFlatDecoder(reflect.TypeFor[T]())
	return typeInfo{version: version, decode: func(raw []byte) (Payload, error) {
		var p T
		if err := decodeInto(flat, raw, &p); err != nil {
			return nil, err
		}
		return p, nil
	}}
}

// catalog lists every event type this binary reads and writes, with the
// schema version it writes. NB: type strings and versions must not change or
// be reused. A retired type stays here as a tombstone comment.
var catalog = map[string]typeInfo{
	// server/<node>
	TypeServerStarted:  entry[ServerStarted](1),
	TypeServerStopped:  entry[ServerStopped](1),
	TypeLogTailDropped: entry[LogTailDropped](1),

	// kernel/<id>
	TypeKernelStarted:       entry[KernelStarted](1),
	TypeKernelStartFailed:   entry[KernelStartFailed](1),
	TypeKernelInterrupted:   entry[KernelInterrupted](1),
	TypeKernelRestarted:     entry[KernelRestarted](1),
	TypeKernelShutDown:      entry[KernelShutDown](1),
	TypeKernelDied:          entry[KernelDied](1),
	TypeKernelReattached:    entry[KernelReattached](1),
	TypeKernelLost:          entry[KernelLost](1),
	TypeKernelShared:        entry[KernelShared](1),
	TypeKernelRanUnrecorded: entry[KernelRanUnrecorded](1),
	TypeKernelAdopted:       entry[KernelAdopted](1),
	TypeKernelRestored:      entry[KernelRestored](1),
	TypeFrontendAttached:    entry[FrontendAttached](1),
	TypeKernelSessionOpened: entry[KernelSessionOpened](1),
	TypeKernelSessionClosed: entry[KernelSessionClosed](1),

	// IOPub traffic, on the execution's stream when its parent is known,
	// otherwise on the kernel's stream.
	TypeIOPubMessageReceived: entry[IOPubMessageReceived](1),
	TypeIOPubGapRecorded:     entry[IOPubGapRecorded](1),

	// execution/<id>
	TypeExecutionQueued:         entry[ExecutionQueued](1),
	TypeExecutionStarted:        entry[ExecutionStarted](1),
	TypeExecutionInputRequested: entry[ExecutionInputRequested](1),
	TypeExecutionInputSent:      entry[ExecutionInputSent](1),
	TypeExecutionFinished:       entry[ExecutionFinished](1),
	TypeExecutionInterrupted:    entry[ExecutionInterrupted](1),
	TypeExecutionCancelled:      entry[ExecutionCancelled](1),
	TypeExecutionLost:           entry[ExecutionLost](1),
	TypeExecutionOutputLost:     entry[ExecutionOutputLost](1),

	// asset/<sha256>
	TypeAssetStored:    entry[AssetStored](1),
	TypeLeaseGranted:   entry[LeaseGranted](1),
	TypeLeaseRenewed:   entry[LeaseRenewed](1),
	TypeLeaseExpired:   entry[LeaseExpired](1),
	TypeAssetCollected: entry[AssetCollected](1),

	// checkpoint/<name>
	TypeCheckpointSaved:    entry[CheckpointSaved](1),
	TypeCheckpointLoaded:   entry[CheckpointLoaded](1),
	TypeCheckpointRejected: entry[CheckpointRejected](1),
	TypeCheckpointDeleted:  entry[CheckpointDeleted](1),

	// notebook/<id>
	TypeNotebookCreated:        entry[NotebookCreated](1),
	TypeNotebookCellInserted:   entry[NotebookCellInserted](1),
	TypeNotebookCellEdited:     entry[NotebookCellEdited](1),
	TypeNotebookCellDeleted:    entry[NotebookCellDeleted](1),
	TypeNotebookCellMoved:      entry[NotebookCellMoved](1),
	TypeNotebookOutputsWritten: entry[NotebookOutputsWritten](1),
	TypeNotebookReplaced:       entry[NotebookReplaced](1),
	TypeNotebookRenamed:        entry[NotebookRenamed](1),
	TypeNotebookRemoved:        entry[NotebookRemoved](1),

	// policy/<principal>
	TypePolicyDecided: entry[PolicyDecided](1),
}

// CurrentVersion returns the schema version this binary writes for typ.
func CurrentVersion(typ string) (uint16, bool) {
	info, ok := catalog[typ]
	return info.version, ok
}

// Types lists every registered type string, sorted.
func Types() []string {
	out := make([]string, 0, len(catalog))
	for t := range catalog {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Known reports whether typ is a registered event type.
func Known(typ string) bool { _, ok := catalog[typ]; return ok }

func decodePayload(typ string, version uint16, raw []byte) (Payload, error) {
	info, ok := catalog[typ]
	if !ok {
		return nil, ErrUnknownType
	}
	if version > info.version {
		return nil, fmt.Errorf("%w: %s v%d, this binary knows up to v%d", ErrNewerVersion, typ, version, info.version)
	}
	for v := version; v < info.version; v++ {
		up, ok := upgrades[typ][v]
		if !ok {
			return nil, fmt.Errorf("%w: %s v%d has no upcaster to v%d", ErrUnknownVersion, typ, v, v+1)
		}
		var err error
		if raw, err = up(raw); err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", typ, v, err)
		}
	}
	if version == 0 {
		return nil, fmt.Errorf("%w: %s v0", ErrUnknownVersion, typ)
	}
	p, err := info.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s v%d payload: %w", typ, version, err)
	}
	return p, nil
}
