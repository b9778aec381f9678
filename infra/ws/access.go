package ws

import (
	"math"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// CloseTokenRevoked: the principal's token was revoked or rotated, or
// expired (auth.Principal.Expires), while the client was connected. NB: clients act on it; it must not change.
const CloseTokenRevoked websocket.StatusCode = 4001

// revokedReason is the close reason sent with CloseTokenRevoked.
const revokedReason = "token revoked or rotated: connect again with a current token"

// expiredReason is the close reason sent with CloseTokenRevoked when the
// principal's token (an OAuth access token) reached its exp.
const expiredReason = "token expired: connect again with a fresh token"

// Access tells the hub who may read which kernel's events. Admins read
// everything and are not named here; a kernel's readers are its owner and
// the principals it is shared with (read or execute).
//
// The hub keeps its own copy of the readers, changed by the events it fans
// out, in log order, before it offers them: a share takes effect at the
// seq of the event that records it, for every client at once, and
// deciding who gets an event never asks a read model that may lag.
type Access interface {
	// Readers returns every kernel's readers other than admins, as of at
	// least seq (a read model may lag the log): Start calls it once and
	// replays the changes the log holds after seq (math.MaxUint64: as of
	// the log's end, nothing to replay).
	Readers() (readers map[string][]string, seq uint64)
	// Changes returns how e changes who may read its kernel (nil for all
	// but ownership and share events).
	Changes(e events.Event) []Grant
	// CausedBy returns the principal e was caused by ("" for what the
	// server did on its own): a principal gets the events it caused.
	CausedBy(e events.Event) string
}

// Grant is one change of a kernel's readers.
type Grant struct {
	Kernel, Principal string
	Read              bool // false: the principal no longer reads the kernel
}

// viewer is who a client reads as.
type viewer struct {
	principal string
	all       bool // an admin, or a hub without Access: every event
}

func viewerOf(p auth.Principal, filtered bool) viewer {
	return viewer{principal: p.Name, all: !filtered || p.IsAdmin()}
}

// index is the hub's routing table, under Hub.mu. Offering an event costs
// the clients that get it plus the readers of its kernel, never a pass
// over every client: the fan-out cost per event is flat in the number of
// principals.
type index struct {
	readers   map[string]map[string]struct{}  // kernel -> non-admin principals that read it
	all       map[*client]struct{}            // clients that read every event, no kernel filter
	wide      map[string]map[*client]struct{} // principal -> its clients with no kernel filter
	following map[string]map[*client]struct{} // kernel -> clients with ?kernel=<it>
	owned     map[string]map[*client]struct{} // principal -> all its clients (revocation)
}

func newIndex() index {
	return index{readers: map[string]map[string]struct{}{}, all: map[*client]struct{}{},
		wide: map[string]map[*client]struct{}{}, following: map[string]map[*client]struct{}{},
		owned: map[string]map[*client]struct{}{}}
}

func addTo[K comparable](m map[K]map[*client]struct{}, k K, c *client) {
	s := m[k]
	if s == nil {
		s = map[*client]struct{}{}
		m[k] = s
	}
	s[c] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*client]struct{}, k K, c *client) {
	if s := m[k]; s != nil {
		delete(s, c)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

func (x *index) add(c *client) {
	switch {
	case c.kernel != "":
		addTo(x.following, c.kernel, c)
	case c.view.all:
		x.all[c] = struct{}{}
	default:
		addTo(x.wide, c.view.principal, c)
	}
	addTo(x.owned, c.view.principal, c)
}

func (x *index) remove(c *client) {
	switch {
	case c.kernel != "":
		removeFrom(x.following, c.kernel, c)
	case c.view.all:
		delete(x.all, c)
	default:
		removeFrom(x.wide, c.view.principal, c)
	}
	removeFrom(x.owned, c.view.principal, c)
}

func (x *index) grant(g Grant) {
	if g.Kernel == "" || g.Principal == "" {
		return
	}
	s := x.readers[g.Kernel]
	if g.Read {
		if s == nil {
			s = map[string]struct{}{}
			x.readers[g.Kernel] = s
		}
		s[g.Principal] = struct{}{}
		return
	}
	delete(s, g.Principal)
	if len(s) == 0 {
		delete(x.readers, g.Kernel)
	}
}

func (x *index) canRead(principal, kernel string) bool {
	_, ok := x.readers[kernel][principal]
	return ok
}

// offer calls push for every client that may read e (each once): clients
// reading everything, the kernel's followers that may read it or caused
// it, the wide clients of the kernel's readers and of the principal that
// caused e.
func (x *index) offer(e *events.Event, by string, push func(*client)) {
	for c := range x.all {
		push(c)
	}
	if k := e.Kernel; k != "" {
		for c := range x.following[k] {
			if c.view.all || x.canRead(c.view.principal, k) || (by != "" && by == c.view.principal) {
				push(c)
			}
		}
		for p := range x.readers[k] {
			for c := range x.wide[p] {
				push(c)
			}
		}
		if by != "" && x.canRead(by, k) {
			return // its wide clients got it as a reader
		}
	}
	if by != "" {
		for c := range x.wide[by] {
			push(c)
		}
	}
}

// KernelReaders is the Access of the server: a kernel's readers are the
// owner its KernelStarted names and the principals KernelShared gave read
// or execute ("none" withdraws); an event is caused by its envelope's
// Principal. initial gives the readers as of the log's end (the kernels
// read model, projections/kernels: Owner and Shares).
func KernelReaders(initial func() map[string][]string) Access {
	return KernelReadersAt(func() (map[string][]string, uint64) { return initial(), math.MaxUint64 })
}

// KernelReadersAt is KernelReaders over a read model that may lag the log:
// initial gives the readers as of at least the seq it returns (read the
// model's applied seq before its kernels), and the hub replays the shares
// after it.
func KernelReadersAt(initial func() (map[string][]string, uint64)) Access {
	return kernelReaders{initial}
}

type kernelReaders struct {
	initial func() (map[string][]string, uint64)
}

func (a kernelReaders) Readers() (map[string][]string, uint64) { return a.initial() }

func (kernelReaders) CausedBy(e events.Event) string { return e.Principal }

func (kernelReaders) Changes(e events.Event) []Grant {
	switch e.Type {
	case events.TypeKernelStarted:
		p, err := events.As[events.KernelStarted](&e)
		if err != nil || p.Owner == "" {
			return nil // NB: no owner: the admin's, who reads everything anyway
		}
		return []Grant{{Kernel: p.KernelID, Principal: p.Owner, Read: true}}
	case events.TypeKernelShared:
		p, err := events.As[events.KernelShared](&e)
		if err != nil {
			return nil
		}
		return []Grant{{Kernel: p.KernelID, Principal: p.Principal, Read: p.Access == events.AccessRead || p.Access == events.AccessExecute}}
	}
	return nil
}
