package lease

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
)

// Holders of leases. NB: recorded in the log; must not change.
const (
	// HolderRead is renewed by every read (MCP, HTTP, WebSocket replay).
	HolderRead = "read"
	// HolderAdopted holds a file found on disk without an AssetStored.
	HolderAdopted = "adopted"
)

// ErrNotFound: the asset was never stored, or has been collected.
var ErrNotFound = errors.New("lease: asset not found")

// Origin says what produced an asset.
type Origin = leases.Origin

// Holder is who a producer's lease is granted to: the execution, else the
// kernel, else "server".
func Holder(o Origin) string {
	switch {
	case o.ExecutionID != "":
		return events.ExecutionStream(o.ExecutionID)
	case o.KernelID != "":
		return events.KernelStream(o.KernelID)
	}
	return "server"
}

// renewSlack: a renewal that would extend a lease by less than TTL/renewSlack
// appends nothing (a burst of reads of one asset is one event, not many).
const renewSlack = 64

// DecideStore returns the events for storing an asset of size bytes.
func DecideStore(a leases.Asset, known bool, sum, mime string, size int64, o Origin, now time.Time, ttl time.Duration) []events.Draft {
	var ds []events.Draft
	stream := events.AssetStream(sum)
	if !known || a.Collected || a.MIME != mime || !containsOrigin(a.Origins, o) {
		ds = append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.AssetStored{
			SHA256: sum, MIME: mime, Size: size, KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex}})
	}
	holder := Holder(o)
	exp := now.Add(ttl)
	if cur, ok := a.Leases[holder]; ok && known && !a.Collected {
		if exp.Sub(cur) >= ttl/renewSlack {
			ds = append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.LeaseRenewed{SHA256: sum, Holder: holder, ExpiresAt: exp}})
		}
		return ds
	}
	return append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.LeaseGranted{SHA256: sum, Holder: holder, ExpiresAt: exp}})
}

func containsOrigin(os []Origin, o Origin) bool {
	for _, x := range os {
		if x == o {
			return true
		}
	}
	return false
}

// DecideRenew returns the events for renewing holder's lease on the asset
// (none when the lease already runs almost a full TTL).
func DecideRenew(a leases.Asset, known bool, sum, holder string, now time.Time, ttl time.Duration) ([]events.Draft, error) {
	if !known || a.Collected || a.StoredSeq == 0 {
		return nil, fmt.Errorf("asset %s: %w (never stored, or collected after its leases expired)", sum, ErrNotFound)
	}
	exp := now.Add(ttl)
	cur, ok := a.Leases[holder]
	if ok && exp.Sub(cur) < ttl/renewSlack {
		return nil, nil
	}
	stream := events.AssetStream(sum)
	if ok {
		return []events.Draft{{Stream: stream, Payload: events.LeaseRenewed{SHA256: sum, Holder: holder, ExpiresAt: exp}}}, nil
	}
	return []events.Draft{{Stream: stream, Payload: events.LeaseGranted{SHA256: sum, Holder: holder, ExpiresAt: exp}}}, nil
}

// DecideCollect returns, for each asset, LeaseExpired for every holder whose
// lease ran out by now and, when no lease is left live, AssetCollected; and
// the sums to delete once those events are durable.
func DecideCollect(as []leases.Asset, now time.Time) (ds []events.Draft, collect []string) {
	for _, a := range as {
		if a.Collected || a.StoredSeq == 0 {
			continue
		}
		stream := events.AssetStream(a.SHA256)
		for _, h := range sortedHolders(a.Leases) {
			if !a.Leases[h].After(now) {
				ds = append(ds, events.Draft{Stream: stream, Payload: events.LeaseExpired{SHA256: a.SHA256, Holder: h}})
			}
		}
		if !a.LiveAt(now) {
			ds = append(ds, events.Draft{Stream: stream, Payload: events.AssetCollected{SHA256: a.SHA256, Size: a.Size, DecidedAt: now}})
			collect = append(collect, a.SHA256)
		}
	}
	return ds, collect
}

func sortedHolders(m map[string]time.Time) []string {
	hs := make([]string, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	// NB: a stable order, so one decision always yields the same events.
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j] < hs[j-1]; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
	return hs
}
