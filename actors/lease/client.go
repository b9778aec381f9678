package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// DefaultTTL is how long a lease runs without a read or a reference.
const DefaultTTL = 24 * time.Hour

// ErrClosed: the client was closed.
var ErrClosed = errors.New("lease: closed")

// Config configures the lease actor.
type Config struct {
	// System is the process's one actor system (system.System.Actors()).
	System *actor.ActorSystem
	Log    Log
	Files  Files
	// TTL is the lease length (default DefaultTTL).
	TTL time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
	// Timeout bounds a request to the actor when ctx has no deadline
	// (default 1 minute; a GC run gets 30).
	Timeout time.Duration
	// GCBatch and BeforeAppend: see Deps.
	GCBatch      int
	BeforeAppend func([]events.Draft)
}

// Client is the typed way to talk to the lease actor: each method sends a
// message and waits for the answer (RequestFuture with a timeout). Safe for
// concurrent use.
type Client struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	ttl     time.Duration
	timeout time.Duration
	lg      *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Open spawns the lease actor and waits until it has recovered from its
// streams and reconciled the files (it deletes the files of collected
// assets, a GC interrupted after its intent was durable, and adopts files
// the log does not know, a Put interrupted before its append).
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.System == nil || cfg.Log == nil || cfg.Files == nil {
		return nil, errors.New("lease: open: System, Log and Files are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	deps := Deps{Log: cfg.Log, Files: cfg.Files, TTL: cfg.TTL, Now: cfg.Now, Logger: cfg.Logger.With("component", "lease"),
		GCBatch: cfg.GCBatch, BeforeAppend: cfg.BeforeAppend}
	c := &Client{sys: cfg.System, pid: cfg.System.Root.Spawn(Props(deps)), ttl: cfg.TTL, timeout: cfg.Timeout, lg: deps.Logger}
	var r readyReply
	err := c.request(ctx, readyMsg{}, &r, 10*time.Minute)
	if err == nil {
		err = r.err
	}
	if err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("open lease actor: %w", err)
	}
	return c, nil
}

// PID is the actor's address.
func (c *Client) PID() *actor.PID { return c.pid }

// TTL returns the lease length.
func (c *Client) TTL() time.Duration { return c.ttl }

// Close stops the actor (it saves its snapshot) and waits for it.
// Idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.closeErr = c.sys.Root.PoisonFuture(c.pid).Wait()
		if c.closeErr != nil && !errors.Is(c.closeErr, actor.ErrTimeout) {
			c.closeErr = fmt.Errorf("stop lease actor: %w", c.closeErr)
		}
	})
	return c.closeErr
}

func (c *Client) request(ctx context.Context, msg any, out any, def time.Duration) error {
	if def <= 0 {
		def = c.timeout
	}
	if dl, ok := ctx.Deadline(); ok {
		def = time.Until(dl)
		if def <= 0 {
			return ctx.Err()
		}
	}
	res, err := c.sys.Root.RequestFuture(c.pid, msg, def).Result()
	if err != nil {
		if errors.Is(err, actor.ErrDeadLetter) {
			return ErrClosed
		}
		return fmt.Errorf("ask lease actor: %w", err)
	}
	switch out := out.(type) {
	case *readyReply:
		*out = res.(readyReply)
	case *putReply:
		*out = res.(putReply)
	case *renewReply:
		*out = res.(renewReply)
	case *readReply:
		*out = res.(readReply)
	case *collectReply:
		*out = res.(collectReply)
	case *assetReply:
		*out = res.(assetReply)
	}
	return nil
}

// Put stores data (durably, once) and records it with a lease for its
// producer. It returns the sha256. The bytes are written off the actor's
// mailbox; a Put of bytes the GC is deleting waits for the deletion.
func (c *Client) Put(ctx context.Context, data []byte, mime string, o Origin) (string, error) {
	h := sha256.Sum256(data)
	var r putReply
	if err := c.request(ctx, putFile{sum: hex.EncodeToString(h[:]), mime: mime, data: data, origin: o, by: events.PrincipalFrom(ctx)}, &r, 0); err != nil {
		return "", err
	}
	return r.sum, r.err
}

// Renew renews holder's lease on sum (a reference from a checkpoint or a
// notebook uses its own stream as holder). It returns when the lease now
// expires.
func (c *Client) Renew(ctx context.Context, sum, holder string) (time.Time, error) {
	var r renewReply
	if err := c.request(ctx, renewMsg{sum: sum, holder: holder, by: events.PrincipalFrom(ctx)}, &r, 0); err != nil {
		return time.Time{}, err
	}
	return r.exp, r.err
}

// ReadAsset renews the read lease on sum and opens its file. The caller
// closes the file; it stays readable even if a later GC collects the asset.
func (c *Client) ReadAsset(ctx context.Context, sum string) (io.ReadSeekCloser, int64, string, error) {
	var r readReply
	if err := c.request(ctx, readMsg{sum: sum, by: events.PrincipalFrom(ctx)}, &r, 0); err != nil {
		return nil, 0, "", err
	}
	if r.err != nil {
		return nil, 0, "", r.err
	}
	return r.f, r.size, r.mime, nil
}

// Get reads the whole asset (renewing its read lease).
func (c *Client) Get(ctx context.Context, sum string) ([]byte, string, error) {
	f, _, mime, err := c.ReadAsset(ctx, sum)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, "", fmt.Errorf("read asset %s: %w", sum, err)
	}
	return data, mime, nil
}

// Asset returns the actor's own view of one asset (for tests and
// diagnostics; edges read projections/leases).
func (c *Client) Asset(ctx context.Context, sum string) (Asset, bool, error) {
	var r assetReply
	if err := c.request(ctx, assetMsg{sum: sum}, &r, 0); err != nil {
		return Asset{}, false, err
	}
	return r.a, r.ok, nil
}

// Collect runs the GC once: in batches, it expires the leases that ran out
// and collects the assets no lease holds, appending the events before
// deleting any file (see the package doc). A call during a run joins it.
func (c *Client) Collect(ctx context.Context) (Collected, error) {
	var r collectReply
	if err := c.request(ctx, collectMsg{}, &r, 30*time.Minute); err != nil {
		return Collected{}, err
	}
	return r.res, r.err
}

// Run collects every interval until ctx ends; it returns ctx's error or the
// first GC error.
func (c *Client) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		res, err := c.Collect(ctx)
		if err != nil {
			return fmt.Errorf("collect assets: %w", err)
		}
		if len(res.Sums) > 0 || res.Expired > 0 {
			c.lg.Info("collected assets", "assets", len(res.Sums), "bytes", res.Bytes, "leases_expired", res.Expired)
		}
	}
}
