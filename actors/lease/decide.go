package lease

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
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

// Commands Decide answers. The shell adds the clock (now) and the TTL.
type (
	// Store records bytes already durable in the file store.
	Store struct {
		SHA256, MIME string
		Size         int64
		Origin       Origin
		By           string // the principal whose request stored it ("" if none)
	}
	// Renew renews Holder's lease on SHA256 at principal By's request
	// (a read).
	Renew struct{ SHA256, Holder, By string }
	// Adopt records a file found on disk that no event names.
	Adopt struct {
		SHA256, MIME string
		Size         int64
	}
	// Collect expires what ran out and collects what no lease holds, among
	// Sums (the GC's candidates for this batch).
	Collect struct{ Sums []string }
)

// Command is one of Store, Renew, Adopt, Collect.
type Command interface{ isCommand() }

func (Store) isCommand()   {}
func (Renew) isCommand()   {}
func (Adopt) isCommand()   {}
func (Collect) isCommand() {}

// Decide validates c against s at now and returns the events it produces,
// or a typed error (ErrNotFound). It has no side effects.
func Decide(s State, c Command, now time.Time, ttl time.Duration) ([]events.Draft, error) {
	switch c := c.(type) {
	case Store:
		return stamped(decideStore(s.Assets[c.SHA256], c, now, ttl), c.By), nil
	case Renew:
		ds, err := decideRenew(s.Assets[c.SHA256], c.SHA256, c.Holder, now, ttl)
		return stamped(ds, c.By), err
	case Adopt:
		if s.Assets[c.SHA256].Stored() {
			return nil, nil
		}
		stream := events.AssetStream(c.SHA256)
		return []events.Draft{
			{Stream: stream, Payload: events.AssetStored{SHA256: c.SHA256, MIME: c.MIME, Size: c.Size}},
			{Stream: stream, Payload: events.LeaseGranted{SHA256: c.SHA256, Holder: HolderAdopted, ExpiresAt: now.Add(ttl)}},
		}, nil
	case Collect:
		ds, _ := decideCollect(s, c.Sums, now)
		return ds, nil
	}
	return nil, fmt.Errorf("lease: unknown command %T", c)
}

// stamped records that by caused ds.
func stamped(ds []events.Draft, by string) []events.Draft {
	for i := range ds {
		ds[i].Principal = by
	}
	return ds
}

func decideStore(a *Asset, c Store, now time.Time, ttl time.Duration) []events.Draft {
	var ds []events.Draft
	o := c.Origin
	stream := events.AssetStream(c.SHA256)
	known := a != nil
	if !known || a.Collected || a.MIME != c.MIME || !slices.Contains(a.Origins, o) {
		ds = append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.AssetStored{
			SHA256: c.SHA256, MIME: c.MIME, Size: c.Size, KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex}})
	}
	holder := Holder(o)
	exp := now.Add(ttl)
	if known && !a.Collected {
		if cur, ok := a.Leases[holder]; ok {
			if exp.Sub(cur) >= ttl/renewSlack {
				ds = append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.LeaseRenewed{SHA256: c.SHA256, Holder: holder, ExpiresAt: exp}})
			}
			return ds
		}
	}
	return append(ds, events.Draft{Stream: stream, Kernel: o.KernelID, Payload: events.LeaseGranted{SHA256: c.SHA256, Holder: holder, ExpiresAt: exp}})
}

func decideRenew(a *Asset, sum, holder string, now time.Time, ttl time.Duration) ([]events.Draft, error) {
	if !a.Stored() {
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

// decideCollect returns, for each of sums, LeaseExpired for every holder
// whose lease ran out by now and, when no lease is left live,
// AssetCollected; and the sums to delete once those events are durable.
func decideCollect(s State, sums []string, now time.Time) (ds []events.Draft, collect []string) {
	for _, sum := range sums {
		a := s.Assets[sum]
		if !a.Stored() {
			continue
		}
		stream := events.AssetStream(sum)
		for _, h := range sortedHolders(a.Leases) {
			if !a.Leases[h].After(now) {
				ds = append(ds, events.Draft{Stream: stream, Payload: events.LeaseExpired{SHA256: sum, Holder: h}})
			}
		}
		if !a.LiveAt(now) {
			ds = append(ds, events.Draft{Stream: stream, Payload: events.AssetCollected{SHA256: sum, Size: a.Size, DecidedAt: now}})
			collect = append(collect, sum)
		}
	}
	return ds, collect
}

// collectedSums lists the sums a batch of Collect events collects (the files
// to delete once the events are durable).
func collectedSums(ds []events.Draft) []string {
	var out []string
	for _, d := range ds {
		if p, ok := d.Payload.(events.AssetCollected); ok {
			out = append(out, p.SHA256)
		}
	}
	return out
}

func sortedHolders(m map[string]time.Time) []string {
	hs := make([]string, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	slices.Sort(hs) // NB: a stable order, so one decision always yields the same events
	return hs
}
