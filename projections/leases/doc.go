// Package leases is the read model of stored assets and their leases: what
// each asset is (MIME type, size, which kernel, execution and output index
// produced it), which holders lease it until when, and whether the GC has
// collected it.
//
// It folds AssetStored, LeaseGranted, LeaseRenewed, LeaseExpired and
// AssetCollected. actors/lease decides from it and applies its own events to
// it as soon as they are durable; the projections runner applies the same
// events again later. NB: Apply ignores an event whose sequence is not past
// the model's, which makes the double application harmless only because
// actors/lease is the single writer of asset events (appended under one
// lock, so their sequence order is their apply order).
//
// Usage:
//
//	m := leases.New()
//	runner := projections.NewRunner(log, opts, m)
//	a, ok := m.Get(sum)
//	victims := m.Expired(now, 1000)
package leases
