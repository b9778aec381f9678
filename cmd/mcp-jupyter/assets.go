package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// live is the assets, the IOPub backlog and the WebSocket edge: the leases
// and backlog read models under one projections runner, the lease actor
// with its periodic GC, and the WebSocket hub.
type live struct {
	runner  *projections.Runner
	leases  *leases.Model
	backlog *backlog.Model
	lease   *lease.Client
	hub     *ws.Hub
	// assetAccess decides which assets a principal may fetch; unwatch
	// stops the revocation callback that closes a revoked token's /ws.
	assetAccess assetAccess
	unwatch     func()

	gcCancel context.CancelFunc
	gcDone   chan struct{}
}

func openLive(ctx context.Context, c *core) (*live, error) {
	lv := &live{leases: leases.New(), backlog: backlog.New(backlog.Options{MaxMessages: c.cfg.BacklogMessages,
		Observer: c.metrics.Live.Backlog()})}
	lg := c.logger.With("component", "lease")
	// NB: no Retention here: the core runner truncates, and this runner's
	// snapshots are one of its floors (retention.go).
	lv.runner = projections.NewRunner(c.log, projections.Options{SnapshotEvery: min(10_000, c.cfg.SnapshotEvery), Logger: c.logger.With("component", "projections")},
		lv.leases, lv.backlog)
	if err := lv.runner.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("start read models: %w", err)
	}
	select {
	case <-lv.runner.Ready():
	case <-lv.runner.Done():
		return nil, fmt.Errorf("replay read models: %w", lv.runner.Wait())
	case <-ctx.Done():
		_ = lv.runner.Close(context.Background())
		return nil, fmt.Errorf("replay read models: %w", ctx.Err())
	}
	files, err := assetstore.Open(filepath.Join(c.cfg.DataDir, "assets"))
	if err == nil {
		lv.lease, err = lease.Open(ctx, lease.Config{System: c.sys.Actors(), Log: c.log, Files: files, TTL: c.cfg.AssetTTL, Logger: c.logger})
	}
	if err != nil {
		_ = lv.runner.Close(context.Background())
		return nil, fmt.Errorf("open assets: %w", err)
	}
	gctx, cancel := context.WithCancel(context.Background())
	lv.gcCancel, lv.gcDone = cancel, make(chan struct{})
	go func() {
		defer close(lv.gcDone)
		if err := lv.lease.Run(gctx, c.cfg.AssetGCEvery); err != nil && !errors.Is(err, context.Canceled) {
			// NB: a GC stops only on a log failure, which /readyz reports.
			lg.Error("asset GC stopped", "err", err)
		}
	}()
	lv.assetAccess = assetAccess{edgeAccess: c.edgeAccess(), leases: lv.leases, last: c.log.Last,
		leasesCaughtUp: func(ctx context.Context) error { return lv.runner.WaitFor(ctx, c.log.Last()) }}
	// NB: the hub's index of kernel readers starts from the kernels read
	// model at the log's end, then follows the log itself.
	if err := c.runner.WaitFor(ctx, c.log.Last()); err != nil {
		lv.closeEdges(context.Background())
		lv.closeModels(context.Background())
		return nil, fmt.Errorf("wait for the kernels read model: %w", err)
	}
	lv.hub = ws.New(c.log, ws.Options{Logger: c.logger.With("component", "ws"), Observer: c.metrics.Live.WebSocket(),
		// Each client reads what its principal may: its kernels, what it
		// caused; admins everything.
		// NB: the runner's applied seq read before the model: the
		// readers are as of at least it; the hub replays the rest.
		Access: ws.KernelReadersAt(func() (map[string][]string, uint64) {
			at := c.runner.Applied()
			return kernelReaders(c.kernels), at
		}),
		// NB: resuming clients are served from the backlog, the log only
		// beyond its bound.
		Backlog: lv.backlog, BacklogWait: lv.runner.WaitFor,
		// NB: a token revoked between the guard and the client's join
		// found no client to close: the hub asks again once joined.
		Current: mcpserver.Guard{Auth: c.authn, QueryToken: true}.Current,
		Renew: func(ctx context.Context, sum string) error {
			_, err := lv.lease.Renew(leaseCtx(ctx), sum, lease.HolderRead)
			return err
		}})
	if err := lv.hub.Start(context.Background()); err != nil {
		lv.closeEdges(context.Background())
		lv.closeModels(context.Background())
		return nil, err
	}
	if c.principals != nil {
		// A revoked or rotated token loses its open streams at once.
		lv.unwatch = c.principals.Watch(func(name string) {
			if n := lv.hub.ClosePrincipal(name); n > 0 {
				c.logger.Info("closed the websocket clients of a revoked token", "component", "ws", "principal", name, "clients", n)
			}
		})
	}
	return lv, nil
}

// assets is the MCP edge's view of the assets.
func (lv *live) assets(c *core) leaseAssets {
	return leaseAssets{a: lv.lease, leases: lv.leases, access: access{kernels: c.kernels}, caughtUp: func(ctx context.Context) error {
		return lv.runner.WaitFor(ctx, c.log.Last())
	}}
}

// mount adds GET /ws and GET /assets/<sha256>, behind the same guard as /mcp
// (the token may also come as ?token= for browsers).
func (lv *live) mount(mux *http.ServeMux, g mcpserver.Guard) {
	g.QueryToken = true
	mux.Handle("GET /ws", g.Wrap(lv.hub.Handler()))
	mux.Handle("/assets/", g.Wrap(lv.assetsHandler()))
}

// assetsHandler serves GET /assets/<sha256> from the lease actor, to a
// principal that can read a kernel that stored it (else 404, as if never
// stored).
func (lv *live) assetsHandler() http.Handler {
	return assetstore.Handler("/assets/", principalAssets{next: leaseReader{lv.lease}, access: lv.assetAccess})
}

// leaseReader is the lease actor as the /assets handler reads it. NB: the
// actor says "never stored or collected" with lease.ErrNotFound; the handler
// answers 404 only for assetstore.ErrNotFound, and anything else is a 500.
type leaseReader struct{ c *lease.Client }

func (r leaseReader) ReadAsset(ctx context.Context, sum string) (io.ReadSeekCloser, int64, string, error) {
	f, size, mime, err := r.c.ReadAsset(leaseCtx(ctx), sum)
	if errors.Is(err, lease.ErrNotFound) {
		err = fmt.Errorf("%w (%w)", assetstore.ErrNotFound, err)
	}
	return f, size, mime, err
}

// closeEdges stops the WebSocket clients, the GC and the lease actor (it
// saves its snapshot).
func (lv *live) closeEdges(ctx context.Context) error {
	var err error
	if lv.unwatch != nil {
		lv.unwatch()
	}
	if lv.hub != nil {
		err = lv.hub.Close(ctx)
	}
	if lv.gcCancel != nil {
		lv.gcCancel()
		<-lv.gcDone
	}
	if lv.lease != nil {
		if cerr := lv.lease.Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// closeModels flushes the read models' snapshots.
func (lv *live) closeModels(ctx context.Context) error {
	return lv.runner.Close(ctx)
}

// leaseAssets lets the MCP edge store and read through the lease actor;
// list_assets answers from the leases read model.
type leaseAssets struct {
	a      *lease.Client
	leases *leases.Model
	// caughtUp waits until the read model holds every event appended so
	// far (read-your-writes: a Put that returned is listed).
	caughtUp func(context.Context) error
	// access shows a principal only assets stored by kernels it may read.
	access access
}

// readableOrigins are the origins of a that p may read (all for an admin).
// NB: Origins keeps the first producers only; a readable kernel that
// stored it past that cap is shown as an origin with the kernel alone.
func (l leaseAssets) readableOrigins(p auth.Principal, a leases.Asset) []leases.Origin {
	if p.IsAdmin() {
		return a.Origins
	}
	var out []leases.Origin
	seen := map[string]bool{}
	for _, o := range a.Origins {
		if l.access.canRead(p, o.KernelID) {
			out = append(out, o)
			seen[o.KernelID] = true
		}
	}
	for _, k := range a.KernelIDs() {
		if !seen[k] && l.access.canRead(p, k) {
			out = append(out, leases.Origin{KernelID: k})
		}
	}
	return out
}

func (l leaseAssets) Put(ctx context.Context, data []byte, mime string, o mcpserver.AssetOrigin) (string, error) {
	return l.a.Put(leaseCtx(ctx), data, mime, lease.Origin{KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex})
}

// Get reads an asset for resources/read: only one a kernel the caller may
// read stored; any other answers as one never stored, word for word.
func (l leaseAssets) Get(ctx context.Context, sum string) ([]byte, string, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, "", err
	}
	if !p.IsAdmin() {
		a, ok := l.leases.Get(sum)
		if !ok {
			// NB: just stored by this caller's execution: the model may
			// not have it yet.
			if err := l.caughtUp(ctx); err != nil {
				return nil, "", fmt.Errorf("wait for the assets read model: %w", err)
			}
			a, ok = l.leases.Get(sum)
		}
		if !ok || len(l.readableOrigins(p, a)) == 0 {
			return nil, "", fmt.Errorf("%w: %w", mcpserver.ErrAssetNotFound,
				fmt.Errorf("asset %s: %w (never stored, or collected after its leases expired)", sum, lease.ErrNotFound))
		}
	}
	data, mime, err := l.a.Get(leaseCtx(ctx), sum)
	if errors.Is(err, lease.ErrNotFound) {
		err = fmt.Errorf("%w: %w", mcpserver.ErrAssetNotFound, err)
	}
	return data, mime, err
}

func (l leaseAssets) ListAssets(ctx context.Context, kernelID, executionID string) ([]mcpserver.AssetInfo, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.caughtUp(ctx); err != nil {
		return nil, fmt.Errorf("wait for the assets read model: %w", err)
	}
	var out []mcpserver.AssetInfo
	for _, a := range l.leases.List(leases.Filter{KernelID: events.CanonicalID(kernelID), ExecutionID: executionID}) {
		if a.Origins = l.readableOrigins(p, a); len(a.Origins) == 0 {
			continue
		}
		// NB: ExpiresAt is the asset's one collection time: reads of the
		// same bytes through another principal's kernel renew it too. It
		// tells no more than that the bytes were read lately (see
		// docs/identity.md, "The live edges by principal"); hiding it would hide when the asset
		// goes.
		info := mcpserver.AssetInfo{URI: mcpserver.AssetURI(a.SHA256), MIME: a.MIME, Size: a.Size,
			ExpiresAt: a.ExpiresAt().UTC().Truncate(time.Second), HTTPPath: "/assets/" + a.SHA256}
		for _, o := range a.Origins {
			info.Origins = append(info.Origins, mcpserver.AssetOrigin{KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex})
		}
		out = append(out, info)
	}
	return out, nil
}

// leaseCtx names the caller's principal (auth.FromContext) to the lease
// actor, which records it on the lease events the call causes.
func leaseCtx(ctx context.Context) context.Context {
	if p, ok := auth.FromContext(ctx); ok {
		return events.WithPrincipal(ctx, p.Name)
	}
	return ctx
}
