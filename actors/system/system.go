package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var (
	// ErrUnknownKernel: no kernel with that id or notebook.
	ErrUnknownKernel = errors.New("system: unknown kernel")
	// ErrUnknownExecution: no execution with that id.
	ErrUnknownExecution = errors.New("system: unknown execution")
	// ErrClosed: the system is shutting down.
	ErrClosed = errors.New("system: closed")
)

// Scanner reads the log past a snapshot of the kernel registry
// (infra/eventlog implements it): used once at start to find the kernels
// to recover. Scan visits from <= seq <= to (to 0: the end) with raw
// payloads; Last is the last durable seq and First the first retained one
// (Scan from 0 also visits the older events retention kept, which include
// every kernel's lifecycle until it is shut down); snapshots are stored
// durably under a name.
type Scanner interface {
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
	Last() uint64
	First() uint64
	SaveSnapshot(name string, seq uint64, data []byte) error
	LoadSnapshot(name string) (seq uint64, data []byte, ok bool, err error)
}

// RegistrySnapshot names the snapshot of the kernel registry in the log.
// NB: stored on disk; must not change.
const RegistrySnapshot = "system/kernels"

// Config wires the system.
type Config struct {
	Log      scheduler.Log
	Scanner  Scanner
	Launcher kernel.Launcher
	Logger   *slog.Logger
	MaxQueue int
	// RequestTimeout bounds a command to an actor (default 90 s: kernel
	// starts may take 30 s on a loaded machine).
	RequestTimeout time.Duration
	Now            func() time.Time
	// KernelPanicOn and SchedulerPanicOn, for tests only, are the actors'
	// PanicOn hooks.
	KernelPanicOn, SchedulerPanicOn func(msg any) bool
	// Faults, in the kill -9 tests, kills the process at the actors' fault
	// points (infra/fault); nil in production.
	Faults actors.Faults
	// AutoRestore (--auto-restore): a kernel whose recorded process is gone
	// at recovery is relaunched under its id (same kernelspec and owner,
	// KernelRestarted{Reason, Restore}) and held for its restore instead
	// of being recorded lost (see restore.go).
	AutoRestore bool
	// RestoreName names the checkpoint a relaunched kernel is restored
	// from (the server's auto-checkpoint of it, in its owner's names;
	// whether it exists is found at the load); nil: none.
	RestoreName func(kernelID string) string
	// Node is this node's name in a cluster ("" on a single server). The
	// registry then holds only the kernels this node runs: those whose
	// latest KernelStarted or KernelAdopted it wrote (the records other
	// nodes wrote, imported into this log, never spawn actors); a kernel
	// whose process is another node's is only ever taken over (Adopt).
	Node string
	// Owner, in a cluster, names the node the ownership lease of a kernel
	// gives it to (known: there is a lease). At Open a kernel leased to
	// another node is not recovered even if this node's log does not hold
	// that node's KernelAdopted yet (this node was down when it was taken
	// over, and has not imported it): recovering it would write on a stream
	// that is another node's now. Nil: none.
	Owner func(kernelID string) (node string, known bool)
	// Held, in a cluster, says whether this node may act for a kernel now
	// (natsbus.Owners.Held: its lease renewed recently enough); nil on a
	// single server. Each kernel's scheduler checks it before it starts a
	// queued execution; HeldChanged makes it check again.
	Held func(kernelID string) error
	// ConfirmStarted, in a cluster, holds each execute_request until the
	// cluster's history holds its ExecutionStarted (kernel.Deps); nil on
	// a single server.
	ConfirmStarted func(ctx context.Context, kernelID string, seq uint64) error
	// AbortReplyTimeout bounds how long Cancel of a pipelined execution
	// waits for the kernel to acknowledge its abort_request (0:
	// kernel.AbortReplyTimeout; tests shorten it).
	AbortReplyTimeout time.Duration
}

type entry struct {
	kernel    *actor.PID
	scheduler *actor.PID
	notebook  string
	label     string
	shutDown  bool // recorded shut down: not recovered at the next start
}

// System owns the actor system and one kernel+scheduler pair per kernel.
type System struct {
	cfg    Config
	actors *actor.ActorSystem

	mu      sync.RWMutex
	kernels map[string]*entry
	order   []string // kernel ids in the order they started
	closed  bool
	// recovered are the kernels Open recovered (Restoring waits for them).
	recovered []string
	// skipped are the kernels of this node's registry Open did not recover
	// because another node holds their lease (Config.Owner).
	skipped []registered
}

// registered is one kernel of the registry snapshot.
type registered struct {
	ID       string `json:"id"`
	Label    string `json:"label,omitempty"`
	Notebook string `json:"notebook,omitempty"`
	// Node wrote the kernel's latest KernelStarted or KernelAdopted (in a
	// cluster; "" on a single server, whose registry holds all).
	Node string `json:"node,omitempty"`
}

// Open starts the actor system and recovers every kernel the log knows of
// that was not shut down: each kernel actor re-attaches to its process (or
// records it lost) and each scheduler resumes its queue.
func Open(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 90 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	s := &System{cfg: cfg, kernels: map[string]*entry{},
		actors: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return logger.With("component", "actors")
		}))}
	reg, err := loadRegistry(ctx, cfg.Scanner, cfg.Node)
	if err != nil {
		s.actors.Shutdown()
		return nil, err
	}
	reg = slices.DeleteFunc(reg, func(k registered) bool { return cfg.Node != "" && k.Node != cfg.Node })
	// NB: saved before any actor runs; the next start scans only what follows.
	s.saveRegistry(reg)
	for _, k := range reg {
		if owner, known := ownerOf(cfg, k.ID); cfg.Node != "" && known && owner != cfg.Node {
			// NB: kept in the registry: the next start asks the lease again
			// (and the KernelAdopted, once imported, removes it).
			cfg.Logger.Warn("kernel not recovered: another node holds its ownership lease", "kernel_id", k.ID, "owner", owner)
			s.skipped = append(s.skipped, k)
			continue
		}
		e := s.spawn(k.ID, k.Label, k.Notebook, nil)
		if k.Label == "" && k.Notebook == "" && k.Node != "" {
			// Adopted past the snapshot that held its start (another node's
			// kernel then): its stream, which the actor recovered, knows.
			s.describe(e, k.ID)
		}
		s.recovered = append(s.recovered, k.ID)
	}
	return s, nil
}

func ownerOf(cfg Config, id string) (string, bool) {
	if cfg.Owner == nil {
		return "", false
	}
	return cfg.Owner(id)
}

// describe sets e's label and notebook from its kernel actor's state.
func (s *System) describe(e *entry, id string) {
	res, err := s.request(e.kernel, kernel.GetState{})
	if err != nil {
		s.cfg.Logger.Warn("read an adopted kernel's label and notebook", "kernel_id", id, "err", err)
		return
	}
	st := res.(kernel.Result).State
	s.mu.Lock()
	e.label, e.notebook = st.Label, st.Notebook
	s.mu.Unlock()
}

// loadRegistry returns the kernels to recover: those of the registry
// snapshot, updated by the events that follow it (all of the log when there
// is no snapshot).
func loadRegistry(ctx context.Context, sc Scanner, node string) ([]registered, error) {
	seq, data, ok, err := sc.LoadSnapshot(RegistrySnapshot)
	if err != nil {
		return nil, fmt.Errorf("find kernels to recover: %w", err)
	}
	if ok && seq+1 < sc.First() {
		// NB: retention truncated past the snapshot (a long run since the
		// last start): the events between are gone, so the snapshot cannot
		// be brought up to date. Every kernel not shut down still has its
		// lifecycle in the log (retention keeps it): rebuild from those.
		ok, seq = false, 0
	}
	var reg []registered
	if ok {
		if err := json.Unmarshal(data, &reg); err != nil {
			return nil, fmt.Errorf("find kernels to recover: read snapshot %s at seq %d: %w", RegistrySnapshot, seq, err)
		}
	}
	gone := map[string]bool{}
	started := map[string]registered{} // NB: labels of every kernel seen, for a KernelAdopted
	for _, k := range reg {
		started[k.ID] = k
	}
	from := seq + 1
	if seq == 0 {
		from = 0 // every retained event, the kept ones below First included
	}
	err = sc.Scan(ctx, from, 0, func(e events.Event) error {
		switch e.Type {
		case events.TypeKernelStarted:
			p, err := events.As[events.KernelStarted](&e)
			if err != nil {
				return err
			}
			k := registered{ID: p.KernelID, Label: p.Label, Notebook: p.Notebook}
			if node != "" {
				k.Node = e.Node
			}
			reg = append(slicesDeleteID(reg, p.KernelID), k)
			started[k.ID] = k
			delete(gone, p.KernelID)
		case events.TypeKernelAdopted:
			if node == "" {
				return nil // NB: only a cluster node writes one
			}
			k, ok := started[e.Kernel]
			if !ok {
				k = registered{ID: e.Kernel}
			}
			k.Node = e.Node
			reg = append(slicesDeleteID(reg, e.Kernel), k)
			started[k.ID] = k
		case events.TypeKernelShutDown, events.TypeKernelStartFailed:
			gone[e.Kernel] = true
			delete(started, e.Kernel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find kernels to recover: %w", err)
	}
	live := reg[:0]
	for _, k := range reg {
		if !gone[k.ID] {
			live = append(live, k)
		}
	}
	return live, nil
}

func slicesDeleteID(reg []registered, id string) []registered {
	for i, k := range reg {
		if k.ID == id {
			return append(reg[:i], reg[i+1:]...)
		}
	}
	return reg
}

// saveRegistry stores the kernels the system runs as the registry snapshot
// at the log's last seq. NB: called when no kernel actor can append a
// KernelStarted or KernelShutDown the registry has not seen (at Open, before
// any command, and at Close, after every actor stopped). A failure costs
// only a longer scan at the next start.
func (s *System) saveRegistry(reg []registered) {
	data, err := json.Marshal(reg)
	if err == nil {
		err = s.cfg.Scanner.SaveSnapshot(RegistrySnapshot, s.cfg.Scanner.Last(), data)
	}
	if err != nil {
		s.cfg.Logger.Warn("save the kernel registry snapshot (the next start scans more of the log)", "err", err)
	}
}

// registry lists the kernels to recover at the next start: every kernel
// not shut down, in start order.
func (s *System) registry() []registered {
	s.mu.RLock()
	defer s.mu.RUnlock()
	reg := make([]registered, 0, len(s.order)+len(s.skipped))
	for _, k := range s.skipped {
		if _, ok := s.kernels[k.ID]; !ok {
			reg = append(reg, k)
		}
	}
	for _, id := range s.order {
		if e, ok := s.kernels[id]; ok && !e.shutDown {
			reg = append(reg, registered{ID: id, Label: e.label, Notebook: e.notebook, Node: s.cfg.Node})
		}
	}
	return reg
}

// spawn creates the scheduler and kernel actors of kernel id, under names
// derived from id: each knows the other's PID before it exists, and a PID
// stays the same across supervised restarts. Each actor recovers its state
// from the log on every (re)start.
func (s *System) spawn(id, label, notebook string, adopt *kernel.AdoptFrom) *entry {
	root := s.actors.Root
	kernPID := actor.NewPID(s.actors.Address(), "kernel/"+id)
	schedPID := actor.NewPID(s.actors.Address(), "scheduler/"+id)
	spawned := make(chan struct{})
	written := &actors.Written{} // NB: shared: each recovers past the other's appends
	sched, err := root.SpawnNamed(scheduler.Props(id, scheduler.Deps{Log: s.cfg.Log, Logger: s.cfg.Logger.With("component", "scheduler"),
		MaxQueue: s.cfg.MaxQueue, Kernel: kernPID, KernelSpawned: spawned, PanicOn: s.cfg.SchedulerPanicOn, Faults: s.cfg.Faults, Written: written,
		Held: s.cfg.Held}), schedPID.Id)
	if err != nil {
		sched = schedPID // NB: already spawned (a kernel id is spawned once per process)
	}
	kern, err := root.SpawnNamed(kernel.Props(id, kernel.Deps{Log: s.cfg.Log, Launcher: s.cfg.Launcher, Logger: s.cfg.Logger.With("component", "kernel"),
		PanicOn: s.cfg.KernelPanicOn, Faults: s.cfg.Faults, Written: written,
		AutoRestore: s.cfg.AutoRestore, RestoreName: s.cfg.RestoreName, Node: s.cfg.Node, Adopt: adopt, AbortReplyTimeout: s.cfg.AbortReplyTimeout,
		ConfirmStarted: s.cfg.ConfirmStarted}, sched), kernPID.Id)
	if err != nil {
		kern = kernPID
	}
	close(spawned)
	root.Send(sched, scheduler.KernelSpawned{})
	e := &entry{kernel: kern, scheduler: sched, label: label, notebook: notebook}
	s.mu.Lock()
	if _, ok := s.kernels[id]; !ok {
		s.order = append(s.order, id)
	}
	s.kernels[id] = e
	s.mu.Unlock()
	return e
}

// PIDs returns kernel id's actors (for tests that message them directly).
func (s *System) PIDs(id string) (kernel, scheduler *actor.PID, err error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, nil, err
	}
	return e.kernel, e.scheduler, nil
}

// Actors is the process's one actor system: the lease and checkpoint actors
// are spawned in it too.
func (s *System) Actors() *actor.ActorSystem { return s.actors }

func (s *System) request(pid *actor.PID, msg any) (any, error) {
	res, err := s.actors.Root.RequestFuture(pid, msg, s.cfg.RequestTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("ask actor: %w", err)
	}
	return res, nil
}

// lookup finds kernel id's actors. NB: id in either form (events.UUIDForm
// or as events.NewID makes it): a frontend and an agent name the same kernel.
func (s *System) lookup(id string) (*entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	e, ok := s.kernels[events.CanonicalID(id)]
	if !ok {
		return nil, fmt.Errorf("%w %q: call list_kernels for the ids, or start_kernel", ErrUnknownKernel, id)
	}
	return e, nil
}

// StartKernel launches a kernel owned by principal owner and returns once
// it is ready (or failed).
func (s *System) StartKernel(ctx context.Context, spec, label, notebook, owner string) (kernel.State, error) {
	return s.StartKernelWithID(ctx, events.NewID(s.cfg.Now()), spec, label, notebook, owner)
}

// StartKernelWithID is StartKernel with the kernel's id chosen by the
// caller (a new events.NewID): an edge that must know the id before the
// start is recorded (a quota reservation) picks it.
func (s *System) StartKernelWithID(ctx context.Context, id, spec, label, notebook, owner string) (kernel.State, error) {
	id = events.CanonicalID(id)
	if !events.ValidID(id) {
		return kernel.State{}, fmt.Errorf("start kernel: %q is not a kernel id (events.NewID makes one)", id)
	}
	s.mu.RLock()
	_, taken := s.kernels[id]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return kernel.State{}, ErrClosed
	}
	if taken {
		return kernel.State{}, fmt.Errorf("start kernel: id %s is already a kernel's", id)
	}
	e := s.spawn(id, label, notebook, nil)
	res, err := s.request(e.kernel, kernel.Start{Spec: spec, Label: label, Notebook: notebook, Owner: owner})
	if err != nil {
		return kernel.State{}, err
	}
	r := res.(kernel.Result)
	if r.Err != nil {
		s.forget(id)
	}
	return r.State, r.Err
}

func (s *System) forget(id string) {
	s.mu.Lock()
	e := s.kernels[id]
	delete(s.kernels, id)
	s.order = slices.DeleteFunc(s.order, func(k string) bool { return k == id })
	s.mu.Unlock()
	if e != nil {
		_ = s.actors.Root.PoisonFuture(e.kernel).Wait()
		s.actors.Root.Poison(e.scheduler)
	}
}

// KernelIDs lists the kernels the system runs actors for.
func (s *System) KernelIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.kernels))
	for id := range s.kernels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// HeldChanged tells kernel id's scheduler that Config.Held may answer
// differently now (the lease was lost, or renewed again): it stops or
// resumes starting the queued executions. A kernel this node does not run
// is ignored. It does not block.
func (s *System) HeldChanged(id string) {
	id = events.CanonicalID(id)
	s.mu.RLock()
	e, ok := s.kernels[id]
	closed := s.closed
	s.mu.RUnlock()
	if !ok || closed {
		return
	}
	s.actors.Root.Send(e.scheduler, scheduler.HeldChanged{})
}

// HasKernel reports whether the system runs an actor for kernel id: one
// map read, whatever the number of kernels (every kernel tool call asks).
func (s *System) HasKernel(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.kernels[events.CanonicalID(id)]
	return ok
}

// CanonicalKernelID returns kernel id as the system names it (the form
// events.NewID makes), given either form, and whether the system runs
// actors for it.
func (s *System) CanonicalKernelID(id string) (string, bool) {
	id = events.CanonicalID(id)
	return id, s.HasKernel(id)
}

// Kernel returns one kernel's state.
func (s *System) Kernel(ctx context.Context, id string) (kernel.State, error) {
	return s.kernelCmd(id, kernel.GetState{})
}

// ResolveNotebook returns the running kernel bound to a notebook path.
func (s *System) ResolveNotebook(path string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, e := range s.kernels {
		if e.notebook == path {
			return id, true
		}
	}
	return "", false
}

func (s *System) kernelCmd(id string, msg any) (kernel.State, error) {
	e, err := s.lookup(id)
	if err != nil {
		return kernel.State{}, err
	}
	res, err := s.request(e.kernel, msg)
	if err != nil {
		return kernel.State{}, err
	}
	r := res.(kernel.Result)
	return r.State, r.Err
}

// ShareKernel grants principal access to the kernel ("read" or
// "execute"; "none" withdraws a share), at principal by's request. Whether
// by may share the kernel (its owner, or an admin) is the edge's check;
// the kernel actor refuses what makes no sense (a kernel not running, a
// share with oneself or the owner). It returns the kernel's state after.
func (s *System) ShareKernel(ctx context.Context, id, by, principal, access string) (kernel.State, error) {
	return s.kernelCmd(id, kernel.Share{By: by, Principal: principal, Access: access})
}

// InterruptKernel interrupts the kernel's running execution at principal
// by's request.
func (s *System) InterruptKernel(ctx context.Context, id, by string) error {
	_, err := s.kernelCmd(id, kernel.Interrupt{By: by})
	return err
}

// RestartKernel replaces the kernel's process; variables are lost.
func (s *System) RestartKernel(ctx context.Context, id, by string) error {
	_, err := s.kernelCmd(id, kernel.Restart{By: by})
	return err
}

// ShutdownKernel stops the kernel for good.
func (s *System) ShutdownKernel(ctx context.Context, id, by string) error {
	st, err := s.kernelCmd(id, kernel.Shutdown{Reason: "requested", By: by})
	if st.Status == kernel.StatusShutDown {
		s.mu.Lock()
		if e := s.kernels[events.CanonicalID(id)]; e != nil {
			e.shutDown = true
		}
		s.mu.Unlock()
	}
	return err
}

// Submit queues code on a kernel; it returns once ExecutionQueued is
// durable (the kernel may have been sent it before), with the seq of that append in LastSeq. An execution id already
// in the log returns that execution as it was queued (its LastSeq the last
// event of its stream).
func (s *System) Submit(ctx context.Context, kernelID string, c scheduler.Submit) (scheduler.Execution, error) {
	x, durable, err := s.SubmitAsync(ctx, kernelID, c)
	if err == nil && durable != nil {
		// NB: the kernel may already run it; the submitter hears of it only
		// once its queueing is durable. Waited for past the caller's ctx: the
		// execution runs whether or not the caller still listens, so a
		// cancelled caller must not be told it failed (a log failure settles
		// the append anyway).
		if _, err := durable.Wait(context.WithoutCancel(ctx)); err != nil {
			return scheduler.Execution{}, fmt.Errorf("submit to kernel %s: %w", kernelID, err)
		}
	}
	return x, err
}

// SubmitAsync is Submit without the wait for durability: it returns once
// the scheduler took the execution (it may already run), with the append
// that queued it, which settles once that is durable (nil for an execution
// id already in the log). Nothing may be told to the submitter before it
// settles, or before a later event of the execution is durable (WAL
// order): the MCP edge waits for the execution's end instead.
func (s *System) SubmitAsync(ctx context.Context, kernelID string, c scheduler.Submit) (scheduler.Execution, *events.Pending, error) {
	c.ChosenID = c.ExecutionID != ""
	if c.ExecutionID == "" {
		c.ExecutionID = events.NewID(s.cfg.Now())
	} else if !events.ValidID(c.ExecutionID) {
		return scheduler.Execution{}, nil, fmt.Errorf("execution id %q is not valid: use 1-128 characters of letters, digits, '-' and '_'", c.ExecutionID)
	}
	if x, ok, err := s.existing(ctx, c.ExecutionID); err != nil {
		return scheduler.Execution{}, nil, err
	} else if ok {
		if x.KernelID != events.CanonicalID(kernelID) {
			return scheduler.Execution{}, nil, &ExecutionIDUsedError{ExecutionID: c.ExecutionID, KernelID: x.KernelID}
		}
		return x, nil, nil
	}
	e, err := s.lookup(kernelID)
	if err != nil {
		return scheduler.Execution{}, nil, err
	}
	res, err := s.request(e.scheduler, c)
	if err != nil {
		return scheduler.Execution{}, nil, err
	}
	r := res.(scheduler.SubmitResult)
	if r.Err != nil {
		return scheduler.Execution{}, nil, r.Err
	}
	return r.Execution, r.Durable, nil
}

// ExecutionIDUsedError: a client-chosen execution id is already used on
// another kernel. It is typed so an edge can decide whether the caller may
// learn KernelID (one it may not read must not be named).
type ExecutionIDUsedError struct {
	ExecutionID, KernelID string
}

func (e *ExecutionIDUsedError) Error() string {
	return fmt.Sprintf("execution id %q is already used on kernel %s: choose another id", e.ExecutionID, e.KernelID)
}

// existing finds an execution id already used, from its own stream: the
// idempotency of Submit rests on the log, not on a read model.
func (s *System) existing(ctx context.Context, id string) (scheduler.Execution, bool, error) {
	return scheduler.ReadQueued(ctx, s.cfg.Log, id)
}

// CancelPath is what Cancel did.
type CancelPath int

const (
	// CancelWithdrawn: taken out of the queue; it will not run.
	CancelWithdrawn CancelPath = iota
	// CancelAbortRequested: it was pipelined (already sent to the kernel);
	// the kernel was asked to abort it and its final status says whether it
	// ran.
	CancelAbortRequested
)

// Cancel withdraws a queued execution at principal by's request. An
// execution already sent behind the running one (pipelined: queued, with
// Behind set) cannot be withdrawn by the server alone: the kernel is asked
// to abort it, and Cancel returns nil once the kernel acknowledged (or
// after Config.AbortReplyTimeout without an answer); the execution then
// ends "cancelled" if the kernel had not taken it up, and otherwise runs
// and records its real outcome (its status says which). NB: acknowledged
// means what the caller does next (an interrupt) cannot let it run.
func (s *System) Cancel(ctx context.Context, kernelID, executionID, by string) (CancelPath, error) {
	e, err := s.lookup(kernelID)
	if err != nil {
		return 0, err
	}
	res, err := s.request(e.scheduler, scheduler.Cancel{ExecutionID: executionID, Reason: "cancelled by client", By: by})
	if err != nil {
		return 0, err
	}
	switch r := res.(type) {
	case scheduler.CancelResult:
		return CancelWithdrawn, r.Err
	case kernel.Result: // the kernel actor's answer to the abort of a pipelined one
		if errors.Is(r.Err, kernel.ErrNotPipelined) {
			return 0, fmt.Errorf("%w: %s already started on kernel %s; use interrupt_kernel to stop it", scheduler.ErrNotQueued, executionID, kernelID)
		}
		return CancelAbortRequested, r.Err
	}
	return 0, fmt.Errorf("cancel %s: unexpected answer %T", executionID, res)
}

// SendInput answers an execution's input() call at principal by's request.
func (s *System) SendInput(ctx context.Context, kernelID, executionID, value, by string) error {
	_, err := s.kernelCmd(kernelID, kernel.SendInput{ExecutionID: executionID, Value: value, By: by})
	return err
}

// Relay sends a Jupyter frontend's request that is no execution
// (kernel_info_request, complete_request, ...; see kernel.Relay) to the
// kernel under r.MsgID, a fresh id of the caller's (events.NewID). What
// the kernel answers with that parent on shell or control is delivered to
// r.Replies without blocking; the IOPub messages it causes are recorded on
// the kernel's stream. It returns once the request is sent, or why it was
// refused (kernel.ErrNotRelayed, kernel.ErrNotRunning, ErrUnknownKernel).
// Who may relay (execute access) is the edge's check.
func (s *System) Relay(ctx context.Context, kernelID string, r kernel.Relay) error {
	_, err := s.kernelCmd(kernelID, r)
	return err
}

// AttachFrontend records that a frontend opened the kernel's channels
// under session (FrontendAttached, once per session and server process),
// and returns the kernel's state (LastSeq: what the read models must reach
// to show it).
func (s *System) AttachFrontend(ctx context.Context, kernelID string, a kernel.AttachFrontend) (kernel.State, error) {
	return s.kernelCmd(kernelID, a)
}

// OpenSession binds a Jupyter session (/api/sessions) to the kernel
// (KernelSessionOpened); opening it again with other fields records the
// change, with the same fields nothing.
func (s *System) OpenSession(ctx context.Context, kernelID string, o kernel.OpenSession) (kernel.State, error) {
	return s.kernelCmd(kernelID, o)
}

// CloseSession unbinds a session from the kernel (KernelSessionClosed);
// a session not open on it is refused with kernel.ErrBadSession.
func (s *System) CloseSession(ctx context.Context, kernelID string, c kernel.CloseSession) (kernel.State, error) {
	return s.kernelCmd(kernelID, c)
}

// Close stops every actor; kernels keep running (they outlive the server)
// and their pumps stop after what they have persisted.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	entries := make([]*entry, 0, len(s.kernels))
	for _, e := range s.kernels {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		_ = s.actors.Root.PoisonFuture(e.kernel).Wait()
		_ = s.actors.Root.PoisonFuture(e.scheduler).Wait()
	}
	s.saveRegistry(s.registry())
	s.actors.Shutdown()
	return nil
}
