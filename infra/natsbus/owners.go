package natsbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's ownership buckets. NB: must not change: every node of a
// cluster, of any version, finds the others' leases under these names.
const (
	// OwnersBucket maps a kernel id to the lease of the node that owns it
	// (value: ownerValue's JSON). The lease time is the entry's revision
	// time: a renewal is a new revision.
	OwnersBucket = "MCPJUPYTER_OWNERS"
	// NodesBucket maps a node name to its NodeInfo, put every lease/3;
	// the bucket's TTL (3 × lease) forgets a node that stopped.
	NodesBucket = "MCPJUPYTER_NODES"
)

// ErrTakenByOther: Take lost the race (another node took or renewed the
// lease first: the revision it was given is no longer the latest).
var ErrTakenByOther = errors.New("natsbus: the kernel's lease was taken or renewed by another node")

// ErrLeaseLive: Take was asked for a lease this node still sees renewed
// within the lease time.
var ErrLeaseLive = errors.New("natsbus: the lease is still renewed by its owner")

// ErrOwnersClosed: the Owners was closed.
var ErrOwnersClosed = errors.New("natsbus: owners closed")

// Lease is one kernel's ownership as the OWNERS bucket holds it.
type Lease struct {
	Kernel string
	Node   string
	// Since is when Node claimed or took the kernel (its own clock).
	Since time.Time
	// Renewed is the entry's revision time, stamped by the stream's leader
	// (server-side time), for display: lapse and Held are decided on each
	// node's monotonic clock (see Owners).
	Renewed  time.Time
	Revision uint64
}

// ownerValue is a lease's value in OwnersBucket. NB: its JSON is read by
// every node of a cluster: add fields, never rename.
type ownerValue struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// NodeInfo is what a node tells the others about itself (NodesBucket).
// NB: its JSON is read by every node: add fields, never rename.
type NodeInfo struct {
	Name string `json:"name"`
	// Kernels is how many kernels the node runs.
	Kernels int `json:"kernels"`
	// MemAvailable is the machine's available memory in bytes
	// (/proc/meminfo MemAvailable; 0: unknown).
	MemAvailable uint64 `json:"mem_available"`
	// Specs are the kernelspecs it can start (empty: not said, any).
	Specs []string `json:"specs,omitempty"`
	// Updated is when the node wrote it (its own clock).
	Updated time.Time `json:"updated"`
}

// Reasons of a NotOwnerError.
const (
	// ReasonNotRenewed: this node owned the kernel but has not renewed the
	// lease recently enough to be sure nobody took it (cut off?).
	ReasonNotRenewed = "lease not renewed"
	// ReasonOwnedElsewhere: another node owns the kernel.
	ReasonOwnedElsewhere = "owned by another node"
	// ReasonNoLease: nobody holds a lease on the kernel here.
	ReasonNoLease = "no lease"
)

// NotOwnerError says why this node may not act for a kernel. Its message
// is shown to agents as is: it says what happened and what to do.
type NotOwnerError struct {
	Kernel string
	Node   string // this node
	Owner  string // the owner as this node last saw it ("" = none)
	Reason string // one of the Reason* constants
	// Ago is how long ago this node last renewed its lease (ReasonNotRenewed).
	Ago time.Duration
	// Lease is the cluster's lease time.
	Lease time.Duration
}

func (e *NotOwnerError) Error() string {
	switch e.Reason {
	case ReasonNotRenewed:
		return fmt.Sprintf("node %s cannot prove it owns kernel %s: its ownership lease was last renewed %s ago (cut off from the cluster?); "+
			"nothing was run — retry, another node takes the kernel over within %s", e.Node, e.Kernel, e.Ago.Round(time.Millisecond), e.Lease)
	case ReasonOwnedElsewhere:
		return fmt.Sprintf("kernel %s is owned by node %s, not by node %s; nothing was run — retry through any node: the call is forwarded to its owner", e.Kernel, e.Owner, e.Node)
	default:
		return fmt.Sprintf("node %s holds no ownership lease for kernel %s; nothing was run — retry: if its owner was lost, another node takes the kernel over within %s", e.Node, e.Kernel, e.Lease)
	}
}

// OwnersOptions configure OpenOwners.
type OwnersOptions struct {
	// Lease is how long a lease lasts without a renewal (≥ 1s).
	Lease time.Duration
	// Replicas is the buckets' JetStream replication.
	Replicas int
	Logger   *slog.Logger
}

// Owners holds this node's kernel leases and watches everyone's.
//
// Timing (lease L, margin L/4): the owner renews each lease every L/3 with
// a revision-checked update. Held is true until L − L/4 after the *send*
// time of the last renewal that succeeded; another node sees a lease lapse
// once it observed no new revision of it for a whole L (on its own
// monotonic clock, from when the revision reached it, which is after the
// owner sent it). So the owner stops acting at least L/4 before anyone may
// take the kernel, without comparing clocks across machines. Take itself
// is a revision-checked update: of several nodes racing, exactly one wins.
//
// Held, Owner, Nodes and Place read a cache and make no NATS round trip.
// Every method is safe for concurrent use.
type Owners struct {
	js       jetstream.JetStream
	node     string
	lease    time.Duration
	margin   time.Duration
	replicas int
	logger   *slog.Logger

	owners, nodes jetstream.KeyValue

	mu     sync.RWMutex
	own    map[string]ownLease  // leases this node holds
	seen   map[string]seenLease // every lease in the bucket, as watched
	peers  map[string]seenNode  // every node's last heartbeat, as watched
	info   NodeInfo             // what Announce said about this node
	closed bool

	lapsed        chan Lease
	renewFailures atomic.Uint64

	// heldMu guards onHeld and wasHeld: what HeldChanges last told.
	heldMu  sync.Mutex
	onHeld  func(kernelID string)
	wasHeld map[string]bool // false: an own lease not held
	denied  map[string]bool // Held refused it since the last check

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	conn      *nats.Conn // the Owners' own connection (Server.OpenOwners), closed last; nil: the caller's
}

// ownLease is a lease this node holds.
type ownLease struct {
	rev   uint64
	since time.Time
	// sent is the send time of the last renewal that succeeded: Held
	// counts from it (monotonic clock).
	sent time.Time
}

// seenLease is a lease as the watch delivered it.
type seenLease struct {
	Lease
	// observed is when this revision reached this node (monotonic), or
	// for the first values of the watch the entry's server time when
	// older: the start of the lease time from here.
	observed time.Time
	// offered is when Lapsed last handed it out (zero: never).
	offered time.Time
}

type seenNode struct {
	NodeInfo
	observed time.Time
}

// lapsedBuffer bounds Lapsed's channel: a lease not taken off it is offered
// again on a later check.
const lapsedBuffer = 256

// renewParallel bounds the renewals in flight at once.
const renewParallel = 32

// OpenOwners creates (or updates) the two buckets with o.Replicas and
// returns an Owners for node; Start begins watching and renewing.
func OpenOwners(ctx context.Context, js jetstream.JetStream, node string, o OwnersOptions) (*Owners, error) {
	if node == "" {
		return nil, errors.New("open owners: a node name is required")
	}
	if o.Lease < time.Second {
		return nil, fmt.Errorf("open owners: a lease of %s is too short; give at least 1s", o.Lease)
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// NB: every node creates them at start, at once: Ensure asks again when
	// the meta leader leaves an equal request unanswered.
	owners, err := Ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: OwnersBucket, History: 1, Replicas: o.Replicas,
			Description: "mcp-jupyter: which node owns each kernel (leases)"})
	})
	if err != nil {
		return nil, fmt.Errorf("open owners: create bucket %s: %w", OwnersBucket, err)
	}
	nodes, err := Ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: NodesBucket, History: 1, Replicas: o.Replicas,
			TTL: 3 * o.Lease, Description: "mcp-jupyter: the nodes' heartbeats (kernels, memory)"})
	})
	if err != nil {
		return nil, fmt.Errorf("open owners: create bucket %s: %w", NodesBucket, err)
	}
	return &Owners{js: js, node: node, lease: o.Lease, margin: o.Lease / 4, replicas: o.Replicas, logger: o.Logger,
		owners: owners, nodes: nodes, own: map[string]ownLease{}, seen: map[string]seenLease{}, peers: map[string]seenNode{},
		info: NodeInfo{Name: node}, lapsed: make(chan Lease, lapsedBuffer), cancel: func() {}, wasHeld: map[string]bool{}, denied: map[string]bool{}}, nil
}

// OnHeldChange makes fn be called with a kernel's id as soon as Held of
// it changes: this node stopped holding its lease (a renewal lost to
// another node's revision, or lease − margin passed without a renewal),
// or holds it again (renewed in time after all; claimed, taken). The
// kernel's actors then stop or resume acting at once instead of at the
// next command. fn must not block (it runs on the Owners' loops). Checked
// every lease/10 and after each round of renewals.
func (o *Owners) OnHeldChange(fn func(kernelID string)) {
	o.heldMu.Lock()
	o.onHeld = fn
	o.heldMu.Unlock()
}

// checkHeld calls OnHeldChange's fn for each kernel whose Held changed
// since the last check, or that Held refused meanwhile and holds now (a
// scheduler told "no" between two checks waits for this).
func (o *Owners) checkHeld() {
	o.mu.RLock()
	mine := make(map[string]bool, len(o.own))
	for id := range o.own {
		mine[id] = true
	}
	o.mu.RUnlock()
	o.heldMu.Lock()
	ids := make([]string, 0, len(mine)+len(o.wasHeld))
	for id := range mine {
		ids = append(ids, id)
	}
	for id := range o.wasHeld {
		if !mine[id] {
			ids = append(ids, id)
		}
	}
	for id := range o.denied {
		if _, ok := o.wasHeld[id]; !ok && !mine[id] {
			ids = append(ids, id)
		}
	}
	o.heldMu.Unlock()
	// NB: Held takes heldMu when it refuses: asked outside the lock.
	held := make([]bool, len(ids))
	for i, id := range ids {
		held[i] = o.Held(id) == nil
	}
	o.heldMu.Lock()
	fn := o.onHeld
	var lost, back []string
	for i, id := range ids {
		was, known := o.wasHeld[id]
		switch {
		case known && was && !held[i]:
			lost = append(lost, id)
		case held[i] && ((known && !was) || o.denied[id]):
			back = append(back, id)
		}
		switch {
		case held[i]:
			o.wasHeld[id] = true
			delete(o.denied, id)
		case mine[id]:
			o.wasHeld[id] = false
		default:
			delete(o.wasHeld, id)
			delete(o.denied, id)
		}
	}
	o.heldMu.Unlock()
	for _, id := range lost {
		o.logger.Warn("this node no longer holds the kernel's lease: it starts nothing for it until the lease is renewed", "kernel", id)
	}
	if fn == nil {
		return
	}
	for _, id := range append(lost, back...) {
		fn(id)
	}
}

// Node is this node's name.
func (o *Owners) Node() string { return o.node }

// LeaseTime is the lease time.
func (o *Owners) LeaseTime() time.Duration { return o.lease }

// RenewFailures counts the renewals that failed (not those lost to another
// node).
func (o *Owners) RenewFailures() uint64 { return o.renewFailures.Load() }

// Start reads both buckets (returning once the caches hold what they held),
// resumes the leases the bucket still gives this node (a restart within
// the lease keeps its kernels), and starts the watch, renewal, heartbeat
// and lapse loops; Close stops them.
func (o *Owners) Start(ctx context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrOwnersClosed
	}
	o.mu.Unlock()
	lctx, cancel := context.WithCancel(context.Background())
	ow, err := o.owners.WatchAll(lctx)
	if err != nil {
		cancel()
		return fmt.Errorf("start owners: watch %s: %w", OwnersBucket, err)
	}
	nw, err := o.nodes.WatchAll(lctx)
	if err != nil {
		cancel()
		_ = ow.Stop()
		return fmt.Errorf("start owners: watch %s: %w", NodesBucket, err)
	}
	// NB: the first values end with a nil entry; read them here so that
	// Owner and Place answer from the whole bucket once Start returns.
	for _, w := range []struct {
		kw    jetstream.KeyWatcher
		apply func(jetstream.KeyValueEntry, bool)
	}{{ow, o.applyOwner}, {nw, o.applyNode}} {
		if err := initial(ctx, w.kw, w.apply); err != nil {
			cancel()
			_ = ow.Stop()
			_ = nw.Stop()
			return fmt.Errorf("start owners: %w", err)
		}
	}
	o.resume(ctx)
	o.mu.Lock()
	o.cancel = cancel
	o.mu.Unlock()
	o.wg.Add(4)
	go func() { defer o.wg.Done(); o.follow(lctx, ow, o.applyOwner) }()
	go func() { defer o.wg.Done(); o.follow(lctx, nw, o.applyNode) }()
	go func() { defer o.wg.Done(); o.renewLoop(lctx) }()
	go func() { defer o.wg.Done(); o.lapseLoop(lctx) }()
	o.heartbeat(lctx)
	return nil
}

// initial applies a watcher's first values, up to its nil marker.
func initial(ctx context.Context, kw jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry, bool)) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("read the buckets: %w", ctx.Err())
		case e, ok := <-kw.Updates():
			if !ok {
				return errors.New("read the buckets: the watch ended")
			}
			if e == nil {
				return nil
			}
			apply(e, true)
		}
	}
}

// follow applies a watcher's updates until ctx ends.
func (o *Owners) follow(ctx context.Context, kw jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry, bool)) {
	defer func() { _ = kw.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-kw.Updates():
			if !ok {
				return
			}
			if e != nil {
				apply(e, false)
			}
		}
	}
}

// observedAt is when a lease's time starts on this node: when the entry
// arrived, or for the watch's first values (entries that may be old) the
// entry's server time if that is earlier.
func observedAt(e jetstream.KeyValueEntry, first bool) time.Time {
	now := time.Now()
	if first {
		if age := now.Sub(e.Created()); age > 0 {
			return now.Add(-age) // NB: keeps the monotonic reading
		}
	}
	return now
}

func (o *Owners) applyOwner(e jetstream.KeyValueEntry, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(o.seen, id)
		if l, ok := o.own[id]; ok && l.rev < e.Revision() {
			delete(o.own, id) // NB: released (or purged) by someone: not ours any more
		}
		return
	}
	var v ownerValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Node == "" {
		o.logger.Warn("ignoring a malformed lease", "bucket", OwnersBucket, "kernel", id, "revision", e.Revision(), "err", err)
		return
	}
	if s, ok := o.seen[id]; ok && s.Revision >= e.Revision() {
		return // NB: Claim or Take recorded it already
	}
	o.seen[id] = seenLease{Lease: Lease{Kernel: id, Node: v.Node, Since: v.Since, Renewed: e.Created(), Revision: e.Revision()},
		observed: observedAt(e, first)}
	if l, ok := o.own[id]; ok && v.Node != o.node && l.rev < e.Revision() {
		delete(o.own, id) // NB: taken by another node: Held is false from now on
		o.logger.Warn("kernel taken over by another node", "kernel", id, "node", v.Node)
	}
}

func (o *Owners) applyNode(e jetstream.KeyValueEntry, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(o.peers, e.Key())
		return
	}
	var n NodeInfo
	if err := json.Unmarshal(e.Value(), &n); err != nil || n.Name != e.Key() {
		o.logger.Warn("ignoring a malformed node heartbeat", "bucket", NodesBucket, "node", e.Key(), "err", err)
		return
	}
	o.peers[n.Name] = seenNode{NodeInfo: n, observed: observedAt(e, first)}
}

// resume renews the leases the bucket gives this node (after a restart):
// the revision check makes sure nobody took them meanwhile.
func (o *Owners) resume(ctx context.Context) {
	o.mu.RLock()
	var mine []seenLease
	for _, s := range o.seen {
		if s.Node == o.node {
			mine = append(mine, s)
		}
	}
	o.mu.RUnlock()
	for _, s := range mine {
		o.mu.Lock()
		o.own[s.Kernel] = ownLease{rev: s.Revision, since: s.Since} // NB: not Held until renewed
		o.mu.Unlock()
		o.renew(ctx, s.Kernel)
	}
}

// Claim takes a lease on a new kernel (KV create). A kernel whose lease
// this node holds already is renewed; one another node holds gives a
// *NotOwnerError.
func (o *Owners) Claim(ctx context.Context, kernelID string) (Lease, error) {
	if err := o.open(); err != nil {
		return Lease{}, err
	}
	since := time.Now()
	val, err := json.Marshal(ownerValue{Node: o.node, Since: since.UTC()})
	if err != nil {
		return Lease{}, fmt.Errorf("claim kernel %s: %w", kernelID, err)
	}
	sent := time.Now()
	rev, err := o.owners.Create(ctx, kernelID, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := o.owners.Get(ctx, kernelID)
		if gerr != nil {
			return Lease{}, fmt.Errorf("claim kernel %s: read its lease: %w", kernelID, gerr)
		}
		var v ownerValue
		if jerr := json.Unmarshal(e.Value(), &v); jerr != nil {
			return Lease{}, fmt.Errorf("claim kernel %s: its lease is malformed: %w", kernelID, jerr)
		}
		if v.Node != o.node {
			return Lease{}, &NotOwnerError{Kernel: kernelID, Node: o.node, Owner: v.Node, Reason: ReasonOwnedElsewhere, Lease: o.lease}
		}
		since, val = v.Since, e.Value()
		sent = time.Now()
		rev, err = o.owners.Update(ctx, kernelID, val, e.Revision())
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			err = ErrTakenByOther
		}
		return Lease{}, fmt.Errorf("claim kernel %s: %w", kernelID, err)
	}
	return o.record(kernelID, since, rev, sent), nil
}

// record notes a lease this node just wrote at revision rev.
func (o *Owners) record(kernelID string, since time.Time, rev uint64, sent time.Time) Lease {
	l := Lease{Kernel: kernelID, Node: o.node, Since: since, Renewed: time.Now(), Revision: rev}
	o.mu.Lock()
	o.own[kernelID] = ownLease{rev: rev, since: since, sent: sent}
	if s, ok := o.seen[kernelID]; !ok || s.Revision < rev {
		o.seen[kernelID] = seenLease{Lease: l, observed: sent}
	}
	o.mu.Unlock()
	// NB: held from now on: its loss is told even before the next check.
	o.heldMu.Lock()
	o.wasHeld[kernelID] = true
	o.heldMu.Unlock()
	return l
}

// Mine lists the kernels whose lease this node holds (renewed or not yet).
func (o *Owners) Mine() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	ids := make([]string, 0, len(o.own))
	for id := range o.own {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Owner is the kernel's lease as last seen (no round trip).
func (o *Owners) Owner(kernelID string) (Lease, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	s, ok := o.seen[kernelID]
	return s.Lease, ok
}

// Held returns nil only while this node holds the kernel's lease and
// renewed it less than lease − lease/4 ago; else a *NotOwnerError saying
// why. It makes no NATS round trip: the execute path calls it.
func (o *Owners) Held(kernelID string) error {
	now := time.Now()
	o.mu.RLock()
	l, mine := o.own[kernelID]
	o.mu.RUnlock()
	if mine && !l.sent.IsZero() && now.Sub(l.sent) < o.lease-o.margin {
		return nil
	}
	o.mu.RLock()
	s, seen := o.seen[kernelID]
	o.mu.RUnlock()
	if mine {
		o.heldMu.Lock()
		o.denied[kernelID] = true
		o.heldMu.Unlock()
	}
	e := &NotOwnerError{Kernel: kernelID, Node: o.node, Lease: o.lease}
	switch {
	case mine:
		e.Owner, e.Reason = o.node, ReasonNotRenewed
		if !l.sent.IsZero() {
			e.Ago = now.Sub(l.sent)
		} else {
			e.Ago = now.Sub(s.observed)
		}
	case seen && s.Node != o.node:
		e.Owner, e.Reason = s.Node, ReasonOwnedElsewhere
	case seen:
		e.Owner, e.Reason, e.Ago = o.node, ReasonNotRenewed, now.Sub(s.observed)
	default:
		e.Reason = ReasonNoLease
	}
	return e
}

// Take makes this node the owner of a lapsed lease (KV update with the
// lapsed revision). Another node that took or renewed it first makes it
// fail with ErrTakenByOther; a lease this node still sees renewed, with
// ErrLeaseLive.
func (o *Owners) Take(ctx context.Context, l Lease) (Lease, error) {
	if err := o.open(); err != nil {
		return Lease{}, err
	}
	now := time.Now()
	o.mu.RLock()
	s, ok := o.seen[l.Kernel]
	o.mu.RUnlock()
	if ok && s.Revision == l.Revision && s.Node != o.node && now.Sub(s.observed) < o.lease {
		return Lease{}, fmt.Errorf("take kernel %s from node %s: %w (renewed %s ago, lease %s)", l.Kernel, l.Node, ErrLeaseLive,
			now.Sub(s.observed).Round(time.Millisecond), o.lease)
	}
	since := time.Now()
	val, err := json.Marshal(ownerValue{Node: o.node, Since: since.UTC()})
	if err != nil {
		return Lease{}, fmt.Errorf("take kernel %s: %w", l.Kernel, err)
	}
	sent := time.Now()
	rev, err := o.owners.Update(ctx, l.Kernel, val, l.Revision)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return Lease{}, fmt.Errorf("take kernel %s from node %s: %w", l.Kernel, l.Node, ErrTakenByOther)
		}
		return Lease{}, fmt.Errorf("take kernel %s from node %s: %w", l.Kernel, l.Node, err)
	}
	o.logger.Info("kernel taken over", "kernel", l.Kernel, "from", l.Node, "revision", rev)
	return o.record(l.Kernel, since, rev, sent), nil
}

// Release gives up this node's lease on a kernel (shut down): Held is
// false at once, and the entry is deleted unless another node took it.
func (o *Owners) Release(ctx context.Context, kernelID string) error {
	o.mu.Lock()
	l, ok := o.own[kernelID]
	delete(o.own, kernelID)
	o.mu.Unlock()
	if !ok {
		return nil
	}
	err := o.owners.Delete(ctx, kernelID, jetstream.LastRevision(l.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("release kernel %s: %w", kernelID, err)
	}
	if err == nil {
		o.mu.Lock()
		if s, ok := o.seen[kernelID]; ok && s.Node == o.node {
			delete(o.seen, kernelID) // NB: the watch's delete marker follows; Held says "no lease" meanwhile too
		}
		o.mu.Unlock()
	}
	return nil
}

// Lapsed delivers leases of other nodes that were not renewed for a whole
// lease, once per lapse (again after another lease if still not taken).
// The channel is closed by Close.
func (o *Owners) Lapsed() <-chan Lease { return o.lapsed }

// Announce sets what the next heartbeats say about this node (Name and
// Updated are filled in).
func (o *Owners) Announce(n NodeInfo) {
	n.Name = o.node
	o.mu.Lock()
	o.info = n
	o.mu.Unlock()
}

// Nodes are the nodes heard from within the last lease (this node always),
// by name.
func (o *Owners) Nodes() []NodeInfo {
	now := time.Now()
	o.mu.RLock()
	out := make([]NodeInfo, 0, len(o.peers)+1)
	for name, p := range o.peers {
		if name != o.node && now.Sub(p.observed) < o.lease {
			out = append(out, p.NodeInfo)
		}
	}
	self := o.info
	o.mu.RUnlock()
	self.Updated = time.Now()
	out = append(out, self)
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Place picks the node a new kernel of spec should start on: among the
// live nodes that can start spec, the one with the fewest kernels
// (counted from the leases, which every claim updates at once, or as the
// node announced, whichever is more), then the most MemAvailable, then
// this node.
//
// NB: no per-node capacity: a server has no setting for one (--max-kernels
// is per principal), so a full node is found by the start it refuses.
func (o *Owners) Place(spec string) string {
	nodes := o.Nodes()
	held := map[string]int{}
	o.mu.RLock()
	for _, s := range o.seen {
		held[s.Node]++
	}
	o.mu.RUnlock()
	type cand struct {
		NodeInfo
		kernels int
	}
	var best *cand
	for _, n := range nodes {
		if spec != "" && len(n.Specs) > 0 && !slices.Contains(n.Specs, spec) {
			continue
		}
		c := cand{NodeInfo: n, kernels: max(held[n.Name], n.Kernels)}
		if best == nil || better(c.kernels, c.MemAvailable, c.Name, best.kernels, best.MemAvailable, best.Name, o.node) {
			best = &c
		}
	}
	if best == nil {
		return o.node // NB: nobody can start spec: the local start refuses on its own terms
	}
	return best.Name
}

// better says whether a node (kernels, mem, name) has more headroom than b's.
func better(kernels int, mem uint64, name string, bkernels int, bmem uint64, bname, self string) bool {
	switch {
	case kernels != bkernels:
		return kernels < bkernels
	case mem != bmem:
		return mem > bmem
	case (name == self) != (bname == self):
		return name == self
	default:
		return name < bname
	}
}

func (o *Owners) open() error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return ErrOwnersClosed
	}
	return nil
}

// renewLoop renews every own lease and puts the heartbeat every lease/3.
func (o *Owners) renewLoop(ctx context.Context) {
	t := time.NewTicker(o.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o.renewAll(ctx)
		o.heartbeat(ctx)
	}
}

// renewAll renews the own leases, at most renewParallel at once, each
// bounded by lease/3 (a renewal later than that is worth nothing).
func (o *Owners) renewAll(ctx context.Context) {
	o.mu.RLock()
	ids := make([]string, 0, len(o.own))
	for id := range o.own {
		ids = append(ids, id)
	}
	o.mu.RUnlock()
	sem := make(chan struct{}, renewParallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o.renew(ctx, id)
		}()
	}
	wg.Wait()
	o.checkHeld()
}

// renew renews one own lease with a revision-checked update.
func (o *Owners) renew(ctx context.Context, id string) {
	o.mu.RLock()
	l, ok := o.own[id]
	o.mu.RUnlock()
	if !ok {
		return
	}
	val, err := json.Marshal(ownerValue{Node: o.node, Since: l.since.UTC()})
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, o.lease/3)
	defer cancel()
	sent := time.Now()
	rev, err := o.owners.Update(rctx, id, val, l.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		rev, err = o.recover(rctx, id, l) // NB: its update is sent after sent: counting from sent stays safe
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur, still := o.own[id]
	if !still || cur.rev != l.rev {
		return // NB: released or re-recorded meanwhile
	}
	switch {
	case errors.Is(err, ErrTakenByOther):
		delete(o.own, id)
		o.logger.Warn("kernel lease lost to another node", "kernel", id)
	case err != nil:
		o.renewFailures.Add(1)
		o.logger.Warn("renew kernel lease", "kernel", id, "err", err, "held_for", max(0, o.lease-o.margin-time.Since(cur.sent)))
	default:
		cur.rev, cur.sent = rev, sent
		o.own[id] = cur
	}
}

// recover handles a renewal whose revision no longer matches: if the
// latest entry is still this node's (an earlier renewal committed but its
// ack was lost), it continues from that revision; otherwise the lease is
// gone (ErrTakenByOther).
func (o *Owners) recover(ctx context.Context, id string, l ownLease) (uint64, error) {
	e, err := o.owners.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return 0, ErrTakenByOther
	}
	if err != nil {
		return 0, err
	}
	var v ownerValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Node != o.node || !v.Since.Equal(l.since.UTC()) {
		return 0, ErrTakenByOther
	}
	return o.owners.Update(ctx, id, e.Value(), e.Revision())
}

// heartbeat puts this node's NodeInfo.
func (o *Owners) heartbeat(ctx context.Context) {
	o.mu.RLock()
	n := o.info
	o.mu.RUnlock()
	n.Updated = time.Now().UTC()
	val, err := json.Marshal(n)
	if err != nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, o.lease/3)
	defer cancel()
	if _, err := o.nodes.Put(hctx, o.node, val); err != nil {
		o.logger.Warn("put node heartbeat", "err", err)
	}
}

// lapseLoop offers the lapsed leases of other nodes on Lapsed, checking
// every lease/10.
func (o *Owners) lapseLoop(ctx context.Context) {
	t := time.NewTicker(o.lease / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o.checkHeld()
		now := time.Now()
		var due []Lease
		o.mu.Lock()
		for id, s := range o.seen {
			if s.Node == o.node || now.Sub(s.observed) < o.lease || (!s.offered.IsZero() && now.Sub(s.offered) < o.lease) {
				continue
			}
			s.offered = now
			o.seen[id] = s
			due = append(due, s.Lease)
		}
		o.mu.Unlock()
		for _, l := range due {
			select {
			case o.lapsed <- l:
			default:
				o.mu.Lock()
				if s, ok := o.seen[l.Kernel]; ok && s.Revision == l.Revision {
					s.offered = time.Time{} // NB: full: offer it again on the next check
					o.seen[l.Kernel] = s
				}
				o.mu.Unlock()
			}
		}
	}
}

// Close stops the loops and the watches (bounded by ctx). Leases are not
// released: a node that stops keeps its kernels for the lease time, so a
// restart within it resumes them; after it, other nodes take them over.
// It is idempotent.
func (o *Owners) Close(ctx context.Context) error {
	var err error
	o.closeOnce.Do(func() {
		o.mu.Lock()
		o.closed = true
		cancel := o.cancel
		o.mu.Unlock()
		cancel()
		done := make(chan struct{})
		go func() { o.wg.Wait(); close(done) }()
		select {
		case <-done:
			close(o.lapsed)
		case <-ctx.Done():
			err = fmt.Errorf("close owners: %w", ctx.Err())
		}
		if o.conn != nil {
			o.conn.Close()
		}
	})
	return err
}

// OpenOwners opens the Owners of node on a connection of its own to this
// server (closed by the Owners' Close), so that cmd, which imports no NATS
// package, can build one.
func (s *Server) OpenOwners(ctx context.Context, node string, o OwnersOptions) (*Owners, error) {
	nc, err := s.Connect(nats.Name("mcp-jupyter owners " + node))
	if err != nil {
		return nil, fmt.Errorf("open owners: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open owners: %w", err)
	}
	own, err := OpenOwners(ctx, js, node, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	own.conn = nc
	return own, nil
}
