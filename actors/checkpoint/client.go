package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ErrClosed: the client was closed.
var ErrClosed = errors.New("checkpoint: closed")

// Config configures the checkpoint actor.
type Config struct {
	// System is the process's one actor system (system.System.Actors()).
	System *actor.ActorSystem
	Files  Files
	Runner Runner
	Log    Log
	// KernelDir is a kernel's own directory, where the checkpoint file is
	// handed to it (cmd/mcp-jupyter: <data dir>/runtime/kernels/<id>, the
	// one directory a confined kernel may open). Required.
	KernelDir func(kernelID string) string
	Observer  Observer
	Logger    *slog.Logger
	Now       func() time.Time
	// Timeout bounds a request when ctx has no deadline (default 30
	// minutes: a save of a large kernel takes minutes).
	Timeout time.Duration
	// BeforeAppend: see Deps (tests only).
	BeforeAppend func([]events.Draft)
	// MaxBytesPerOwner bounds the bytes of each principal's checkpoint
	// files (0: no bound); see Deps.
	MaxBytesPerOwner int64
	// Replica: see Deps (nil: local files only).
	Replica Replica
}

// Client is the typed way to talk to the checkpoint actor: each method
// sends a message and waits for the answer (RequestFuture with a timeout).
// Commands on one name are serialized (a second one gets ErrBusy);
// different names run in parallel. Safe for concurrent use.
type Client struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

// Open spawns the checkpoint actor and waits until it has recovered from
// its streams.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.System == nil || cfg.Files == nil || cfg.Runner == nil || cfg.Log == nil || cfg.KernelDir == nil {
		return nil, errors.New("checkpoint: open: System, Files, Runner, Log and KernelDir are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Minute
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	deps := Deps{Files: cfg.Files, Runner: cfg.Runner, Log: cfg.Log, KernelDir: cfg.KernelDir, Observer: cfg.Observer, Logger: lg,
		Now: cfg.Now, WorkTimeout: cfg.Timeout, BeforeAppend: cfg.BeforeAppend, MaxBytesPerOwner: cfg.MaxBytesPerOwner, Replica: cfg.Replica}
	c := &Client{sys: cfg.System, pid: cfg.System.Root.Spawn(Props(deps)), timeout: cfg.Timeout}
	var r errReply
	err := c.request(ctx, readyMsg{}, &r)
	if err == nil {
		err = r.err
	}
	if err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("open checkpoint actor: %w", err)
	}
	return c, nil
}

// Close stops the actor after its work in progress ended. Idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		err := c.sys.Root.PoisonFuture(c.pid).Wait()
		if err != nil && !errors.Is(err, actor.ErrTimeout) {
			c.closeErr = fmt.Errorf("stop checkpoint actor: %w", err)
		}
	})
	return c.closeErr
}

func (c *Client) request(ctx context.Context, msg any, out any) error {
	d := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		if d = time.Until(dl); d <= 0 {
			return ctx.Err()
		}
	}
	f := c.sys.Root.RequestFuture(c.pid, msg, d)
	// NB: a caller that goes away (a shutdown, a client gone) stops
	// waiting at once; the work goes on in the actor, which records its
	// outcome. Nothing but the actor's answer is ever sent to the future:
	// protoactor writes a future's result without its lock, so a second
	// message (a "caller gone" marker sent when ctx ended) raced with the
	// reader of the answer, and could replace it. The goroutine ends with
	// the future: at the answer, or at its timeout d.
	answered := make(chan futureResult, 1)
	go func() {
		res, err := f.Result()
		answered <- futureResult{res, err}
	}()
	var a futureResult
	select {
	case a = <-answered:
	case <-ctx.Done():
		select {
		case a = <-answered: // NB: answered as ctx ended: the answer counts
		default:
			return fmt.Errorf("ask checkpoint actor: %w", context.Cause(ctx))
		}
	}
	res, err := a.res, a.err
	if err != nil {
		if errors.Is(err, actor.ErrDeadLetter) {
			return ErrClosed
		}
		return fmt.Errorf("ask checkpoint actor: %w", err)
	}
	switch out := out.(type) {
	case *errReply:
		*out = res.(errReply)
	case *saveReply:
		*out = res.(saveReply)
	case *loadReply:
		*out = res.(loadReply)
	case *listReply:
		*out = res.(listReply)
	case *State:
		*out = res.(State)
	case *Stats:
		*out = res.(Stats)
	}
	return nil
}

// futureResult is what a request's future resolved to.
type futureResult struct {
	res any
	err error
}

// Save has the kernel serialize its variables with dill into a temp file,
// signs the file while streaming it (never whole in memory), commits it
// atomically as <name>.ckpt and records CheckpointSaved.
func (c *Client) Save(ctx context.Context, req SaveRequest) (Meta, error) {
	if err := ValidName(req.Name); err != nil {
		return Meta{}, err
	}
	req.Name = Stored(req.Owner, req.Name)
	var r saveReply
	if err := c.request(ctx, saveMsg{req: req}, &r); err != nil {
		return Meta{}, err
	}
	if r.err == nil {
		r.meta.Owner, r.meta.Name = Owned(r.meta.Name)
	}
	return r.meta, r.err
}

// Load verifies the checkpoint (constant-time HMAC over the whole file,
// streamed) before any of it goes near the kernel, then compares packages,
// applies the policy, and restores the variables into the kernel's globals.
func (c *Client) Load(ctx context.Context, req LoadRequest) (LoadResult, error) {
	if err := ValidName(req.Name); err != nil {
		return LoadResult{}, err
	}
	req.Name = Stored(req.Owner, req.Name)
	var r loadReply
	if err := c.request(ctx, loadMsg{req: req}, &r); err != nil {
		return LoadResult{}, err
	}
	if r.res.Meta.Name != "" {
		r.res.Meta.Owner, r.res.Meta.Name = Owned(r.res.Meta.Name)
	}
	return r.res, r.err
}

// List returns every checkpoint file, by name, from the signed metadata
// in each file, each marked verified (its signed name is its file name and
// it is the newest save the log recorded) or with its problem; and the
// entries skipped unopened (not regular files). The payload's signature is
// checked at load, not here.
func (c *Client) List(ctx context.Context) (Listing, error) {
	return c.ListOwned(ctx, "")
}

// ListOwned is List for owner's checkpoints only ("" for every owner): the
// other owners' files are not opened, so a principal's list costs its own
// checkpoints, whatever the others hold.
func (c *Client) ListOwned(ctx context.Context, owner string) (Listing, error) {
	var r listReply
	if err := c.request(ctx, listMsg{owner: owner}, &r); err != nil {
		return Listing{}, err
	}
	return r.listing, r.err
}

// Delete removes owner's checkpoint name (its files) and records
// CheckpointDeleted, on principal by's request.
func (c *Client) Delete(ctx context.Context, owner, name, by string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	var r errReply
	if err := c.request(ctx, deleteMsg{name: Stored(owner, name), by: by}, &r); err != nil {
		return err
	}
	return r.err
}

// State returns the actor's fold of its streams.
func (c *Client) State(ctx context.Context) (State, error) {
	var s State
	err := c.request(ctx, stateMsg{}, &s)
	return s, err
}

// Usage returns the bytes of owner's checkpoint files the log recorded.
func (c *Client) Usage(ctx context.Context, owner string) (int64, error) {
	st, err := c.State(ctx)
	if err != nil {
		return 0, err
	}
	return st.Usage(owner, ""), nil
}

// Stats returns the actor's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.request(ctx, statsMsg{}, &s)
	return s, err
}
