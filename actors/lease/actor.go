package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
)

// DefaultTTL is how long a lease runs without a read or a reference.
const DefaultTTL = 24 * time.Hour

// gcBatch is how many assets one GC append covers.
const gcBatch = 16384

// Log is what the actor needs from the event log.
type Log interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
}

// Files is the content-addressed file store (infra/assetstore implements
// it). Put is durable when it returns; Delete removes files (missing ones
// are not an error); List names every stored sum.
type Files interface {
	Put(data []byte) (sum string, created bool, err error)
	Open(sum string) (*os.File, int64, error)
	Delete(sums ...string) error
	List(fn func(sum string) error) error
	Dir() string
}

// Config configures an Actor.
type Config struct {
	Log   Log
	Files Files
	// Model must hold every asset event already in the log (run the
	// projections runner to Ready first).
	Model *leases.Model
	// TTL is the lease length (default DefaultTTL).
	TTL time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Actor is the lease actor. Its methods are safe for concurrent use; they are
// serialized by one lock (see the package doc).
type Actor struct {
	mu sync.Mutex
	// pending are collected assets whose files are being deleted (outside
	// the lock); a Put of one waits on deleted until it is gone.
	pending map[string]struct{}
	deleted *sync.Cond
	log     Log
	files   Files
	model   *leases.Model
	ttl     time.Duration
	now     func() time.Time
	lg      *slog.Logger
}

// Open recovers the files against the model: it deletes the files of
// collected assets (a GC interrupted after its intent was durable) and adopts
// files the log does not know (a Put interrupted before its append).
func Open(ctx context.Context, cfg Config) (*Actor, error) {
	if cfg.Log == nil || cfg.Files == nil || cfg.Model == nil {
		return nil, errors.New("lease: open: Log, Files and Model are required")
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
	a := &Actor{log: cfg.Log, files: cfg.Files, model: cfg.Model, ttl: cfg.TTL, now: cfg.Now, lg: cfg.Logger,
		pending: map[string]struct{}{}}
	a.deleted = sync.NewCond(&a.mu)
	if err := a.recover(ctx); err != nil {
		return nil, fmt.Errorf("recover assets: %w", err)
	}
	return a, nil
}

// TTL returns the lease length.
func (a *Actor) TTL() time.Duration { return a.ttl }

// Model returns the leases read model the actor decides from.
func (a *Actor) Model() *leases.Model { return a.model }

func (a *Actor) recover(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var redo, unknown []string
	err := a.files.List(func(sum string) error {
		if asset, ok := a.model.Get(sum); ok && asset.Collected {
			redo = append(redo, sum)
		} else if !ok || asset.StoredSeq == 0 {
			unknown = append(unknown, sum)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.files.Delete(redo...); err != nil {
		return err
	}
	if len(redo) > 0 {
		a.lg.Info("finished an interrupted asset GC", "component", "lease", "deleted", len(redo))
	}
	now := a.now()
	for _, sum := range unknown {
		f, size, err := a.files.Open(sum)
		if err != nil {
			return err
		}
		f.Close()
		mime := "application/octet-stream"
		// NB: files written before assets were leased have a .mime sidecar.
		if m, err := os.ReadFile(filepath.Join(a.files.Dir(), sum+".mime")); err == nil && len(m) > 0 {
			mime = strings.TrimSpace(string(m))
		}
		ds := []events.Draft{
			{Stream: events.AssetStream(sum), Payload: events.AssetStored{SHA256: sum, MIME: mime, Size: size}},
			{Stream: events.AssetStream(sum), Payload: events.LeaseGranted{SHA256: sum, Holder: HolderAdopted, ExpiresAt: now.Add(a.ttl)}},
		}
		if err := a.appendApply(ctx, ds); err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		a.lg.Info("adopted asset files the log did not know", "component", "lease", "files", len(unknown))
	}
	return nil
}

// appendApply appends ds durably and applies them to the model. The caller
// holds a.mu.
func (a *Actor) appendApply(ctx context.Context, ds []events.Draft) error {
	if len(ds) == 0 {
		return nil
	}
	evs, err := a.log.Append(ctx, ds...)
	if err != nil {
		return fmt.Errorf("append asset events: %w", err)
	}
	for _, e := range evs {
		if err := a.model.Apply(e); err != nil {
			return fmt.Errorf("apply %s %d: %w", e.Type, e.Seq, err)
		}
	}
	return nil
}

// Put stores data (durably, once) and records it with a lease for its
// producer. It returns the sha256.
func (a *Actor) Put(ctx context.Context, data []byte, mime string, o Origin) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.isPending(data) {
		// NB: the GC is deleting these very bytes; wait, then write anew.
		// The wait is bounded by the deletion, which has no other lock.
		a.deleted.Wait()
	}
	sum, _, err := a.files.Put(data)
	if err != nil {
		return "", err
	}
	asset, known := a.model.Get(sum)
	ds := DecideStore(asset, known, sum, mime, int64(len(data)), o, a.now(), a.ttl)
	if err := a.appendApply(ctx, ds); err != nil {
		return "", err
	}
	return sum, nil
}

// Renew renews holder's lease on sum (a reference from a checkpoint or a
// notebook uses its own stream as holder). It returns when the lease now
// expires.
func (a *Actor) Renew(ctx context.Context, sum, holder string) (time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.renew(ctx, sum, holder)
}

func (a *Actor) renew(ctx context.Context, sum, holder string) (time.Time, error) {
	asset, known := a.model.Get(sum)
	ds, err := DecideRenew(asset, known, sum, holder, a.now(), a.ttl)
	if err != nil {
		return time.Time{}, err
	}
	if err := a.appendApply(ctx, ds); err != nil {
		return time.Time{}, err
	}
	asset, _ = a.model.Get(sum)
	return asset.Leases[holder], nil
}

// ReadAsset renews the read lease on sum and opens its file. The caller
// closes the file; it stays readable even if a later GC collects the asset.
func (a *Actor) ReadAsset(ctx context.Context, sum string) (io.ReadSeekCloser, int64, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.renew(ctx, sum, HolderRead); err != nil {
		return nil, 0, "", err
	}
	f, size, err := a.files.Open(sum)
	if err != nil {
		return nil, 0, "", err
	}
	asset, _ := a.model.Get(sum)
	return f, size, asset.MIME, nil
}

// Get reads the whole asset (renewing its read lease).
func (a *Actor) Get(ctx context.Context, sum string) ([]byte, string, error) {
	f, _, mime, err := a.ReadAsset(ctx, sum)
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

// Collected is one GC run's outcome.
type Collected struct {
	Expired int      // LeaseExpired events
	Sums    []string // assets collected
	Bytes   int64
	Now     time.Time // the clock the decisions were taken at
}

// Collect runs the GC once: in batches, it expires the leases that ran out
// and collects the assets no lease holds, appending the events before
// deleting any file (see the package doc). A batch's files are deleted
// while the next batch is decided and appended.
func (a *Actor) Collect(ctx context.Context) (Collected, error) {
	var res Collected
	deletes := make(chan []string, 1)
	deleteErr := make(chan error, 1)
	go func() {
		var first error
		for sums := range deletes {
			err := a.files.Delete(sums...)
			if err != nil && first == nil {
				first = err
			}
			a.mu.Lock()
			for _, s := range sums {
				delete(a.pending, s)
			}
			a.deleted.Broadcast()
			a.mu.Unlock()
		}
		deleteErr <- first
	}()
	var err error
	for {
		var sums []string
		var n int
		n, sums, err = a.collectBatch(ctx, &res)
		if len(sums) > 0 {
			deletes <- sums
		}
		if err != nil || n == 0 {
			break
		}
	}
	close(deletes)
	if derr := <-deleteErr; err == nil && derr != nil {
		err = fmt.Errorf("delete collected assets (a restart finishes it): %w", derr)
	}
	return res, err
}

func (a *Actor) collectBatch(ctx context.Context, res *Collected) (int, []string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	res.Now = now
	victims := a.model.Expired(now, gcBatch)
	ds, sums := DecideCollect(victims, now)
	if len(ds) == 0 {
		return 0, nil, nil
	}
	if err := a.appendApply(ctx, ds); err != nil {
		return 0, nil, err
	}
	// NB: the intent is durable; only now may the files go. Until they
	// are gone, a Put of the same bytes waits (pending).
	for _, s := range sums {
		a.pending[s] = struct{}{}
	}
	res.Expired += len(ds) - len(sums)
	res.Sums = append(res.Sums, sums...)
	for _, v := range victims {
		if !v.LiveAt(now) {
			res.Bytes += v.Size
		}
	}
	return len(victims), sums, nil
}

func (a *Actor) isPending(data []byte) bool {
	if len(a.pending) == 0 {
		return false
	}
	_, ok := a.pending[sumOf(data)]
	return ok
}

// Run collects every interval until ctx ends; it returns ctx's error or the
// first GC error.
func (a *Actor) Run(ctx context.Context, every time.Duration) error {
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
		res, err := a.Collect(ctx)
		if err != nil {
			return fmt.Errorf("collect assets: %w", err)
		}
		if len(res.Sums) > 0 || res.Expired > 0 {
			a.lg.Info("collected assets", "component", "lease", "assets", len(res.Sums), "bytes", res.Bytes, "leases_expired", res.Expired)
		}
	}
}

func sumOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
