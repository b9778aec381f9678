package notebook

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// ErrClosed: the manager is closed.
var ErrClosed = errors.New("notebook: closed")

const storageTimeout = 30 * time.Second

// Config wires a Manager.
type Config struct {
	Root   nbfile.Root
	Log    actors.Log
	Logger *slog.Logger
	// RequestTimeout bounds one command (default 60 s).
	RequestTimeout time.Duration
	// VersionBytes bounds the file bytes of the parsed versions kept to
	// explain a conflict with a diff (default 64 MB; the newest version is
	// always kept).
	VersionBytes int64
	// Actors is the process's actor system (actors/system's), which the
	// notebook actors join; nil starts one of the manager's own (tests).
	// NB: one actor system per process.
	Actors *actor.ActorSystem
}

// Manager runs one actor per notebook file and is what the edge calls.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg       Config
	system    *actor.ActorSystem
	ownSystem bool // started by the manager: shut down by Close
	versions  *versions

	mu     sync.Mutex
	actors map[string]*actor.PID
	closed bool
}

// NewManager starts the manager's actor system.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.VersionBytes <= 0 {
		cfg.VersionBytes = 64 << 20
	}
	logger := cfg.Logger
	sys, own := cfg.Actors, cfg.Actors == nil
	if own {
		sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return logger.With("component", "actors")
		}))
	}
	return &Manager{cfg: cfg, versions: newVersions(cfg.VersionBytes), actors: map[string]*actor.PID{}, system: sys, ownSystem: own}
}

// Root is the notebook root paths are confined to.
func (m *Manager) Root() nbfile.Root { return m.cfg.Root }

// Resolve confines path to the root (see infra/notebook.Root.Resolve).
func (m *Manager) Resolve(path string) (abs, rel string, err error) {
	return m.cfg.Root.Resolve(path)
}

// Read reads the notebook at path (no lock: a reader never blocks writers)
// and remembers the version, so a later conflict can say what changed. A
// version already known by its hash is not parsed again. The Notebook
// returned is shared: Clone it before changing it.
func (m *Manager) Read(path string) (*nbfile.File, string, error) {
	abs, rel, err := m.Resolve(path)
	if err != nil {
		return nil, "", err
	}
	f, err := nbfile.ReadFileCached(abs, m.versions.get)
	if err != nil {
		return nil, rel, err
	}
	m.versions.put(f.Hash, f.Notebook, int64(len(f.Bytes)))
	return f, rel, nil
}

// Do runs c on the notebook at c.Path (resolved against the root), through
// that notebook's actor, and returns once the change is durable and in
// place, or refused.
func (m *Manager) Do(ctx context.Context, c Command) (Result, error) {
	abs, rel, err := m.Resolve(c.Path)
	if err != nil {
		return Result{}, err
	}
	c.Path = rel
	req := request{Command: c, Abs: abs}
	if r, ok := c.Op.(Rename); ok {
		// NB: a notebook may be renamed to any name under the root (as in
		// Jupyter), not only to another .ipynb.
		toAbs, toRel, err := m.cfg.Root.ResolveEntry(r.To)
		if err != nil {
			return Result{}, err
		}
		if toRel == "" {
			return Result{}, fmt.Errorf("cannot rename %s to the notebook root itself", rel)
		}
		req.ToAbs, req.Command.Op = toAbs, Rename{To: toRel}
	}
	pid, err := m.actor(rel)
	if err != nil {
		return Result{}, err
	}
	timeout := m.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	res, err := m.system.Root.RequestFuture(pid, req, timeout).Result()
	if err != nil {
		return Result{}, fmt.Errorf("change %s: %w (the change may still be made: read_notebook to see)", rel, err)
	}
	r := res.(Result)
	return r, r.Err
}

func (m *Manager) actor(rel string) (*actor.PID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	pid, ok := m.actors[rel]
	if !ok {
		pid = m.system.Root.Spawn(props(rel, m.cfg.Log, m.versions, m.cfg.Logger))
		m.actors[rel] = pid
	}
	return pid, nil
}

// Close stops every notebook actor after the command it is running. It is
// idempotent.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	pids := make([]*actor.PID, 0, len(m.actors))
	for _, p := range m.actors {
		pids = append(pids, p)
	}
	m.mu.Unlock()
	for _, p := range pids {
		_ = m.system.Root.PoisonFuture(p).Wait()
	}
	if m.ownSystem {
		m.system.Shutdown()
	}
	return nil
}

// versions is an LRU of parsed notebook versions by hash, bounded by the
// size of the files they were parsed from (their outputs alias those bytes).
type versions struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	order    *list.List // of *version, most recent first
	m        map[string]*list.Element
}

type version struct {
	hash string
	nb   *nbfile.Notebook
	size int64
}

func newVersions(maxBytes int64) *versions {
	return &versions{maxBytes: maxBytes, order: list.New(), m: map[string]*list.Element{}}
}

func (v *versions) put(hash string, nb *nbfile.Notebook, size int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if el, ok := v.m[hash]; ok {
		v.order.MoveToFront(el)
		return
	}
	v.m[hash] = v.order.PushFront(&version{hash: hash, nb: nb, size: size})
	v.bytes += size
	for v.bytes > v.maxBytes && v.order.Len() > 1 {
		old := v.order.Remove(v.order.Back()).(*version)
		delete(v.m, old.hash)
		v.bytes -= old.size
	}
}

func (v *versions) get(hash string) (*nbfile.Notebook, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	el, ok := v.m[hash]
	if !ok {
		return nil, false
	}
	v.order.MoveToFront(el)
	return el.Value.(*version).nb, true
}

func (v *versions) len() (int, int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.order.Len(), v.bytes
}
