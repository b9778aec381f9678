package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/leases"
)

// live is the assets, the IOPub backlog and the WebSocket edge: the leases
// and backlog read models under one projections runner, the lease actor
// with its periodic GC, and the WebSocket hub.
type live struct {
	runner  *projections.Runner
	leases  *leases.Model
	backlog *backlog.Model
	lease   *lease.Actor
	hub     *ws.Hub

	gcCancel context.CancelFunc
	gcDone   chan struct{}
}

func openLive(ctx context.Context, c *core) (*live, error) {
	lv := &live{leases: leases.New(), backlog: backlog.New(backlog.Options{MaxMessages: c.cfg.BacklogMessages})}
	lg := c.logger.With("component", "lease")
	lv.runner = projections.NewRunner(c.log, projections.Options{SnapshotEvery: 10_000, Logger: c.logger.With("component", "projections")},
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
		lv.lease, err = lease.Open(ctx, lease.Config{Log: c.log, Files: files, Model: lv.leases, TTL: c.cfg.AssetTTL, Logger: lg})
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
	lv.hub = ws.New(c.log, ws.Options{Logger: c.logger.With("component", "ws"),
		// NB: resuming clients are served from the backlog, the log only
		// beyond its bound.
		Backlog: lv.backlog, BacklogWait: lv.runner.WaitFor,
		Renew: func(ctx context.Context, sum string) error {
			_, err := lv.lease.Renew(ctx, sum, lease.HolderRead)
			return err
		}})
	if err := lv.hub.Start(context.Background()); err != nil {
		lv.closeEdges(context.Background())
		lv.closeModels(context.Background())
		return nil, err
	}
	return lv, nil
}

// mount adds GET /ws and GET /assets/<sha256>, behind the same guard as /mcp
// (the token may also come as ?token= for browsers).
func (lv *live) mount(mux *http.ServeMux, g mcpserver.Guard) {
	g.QueryToken = true
	mux.Handle("GET /ws", g.Wrap(lv.hub.Handler()))
	mux.Handle("/assets/", g.Wrap(assetstore.Handler("/assets/", lv.lease)))
}

// closeEdges stops the WebSocket clients and the GC.
func (lv *live) closeEdges(ctx context.Context) error {
	var err error
	if lv.hub != nil {
		err = lv.hub.Close(ctx)
	}
	if lv.gcCancel != nil {
		lv.gcCancel()
		<-lv.gcDone
	}
	return err
}

// closeModels flushes the read models' snapshots.
func (lv *live) closeModels(ctx context.Context) error {
	return lv.runner.Close(ctx)
}

// leaseAssets lets the MCP edge store and read through the lease actor.
type leaseAssets struct{ a *lease.Actor }

func (l leaseAssets) Put(ctx context.Context, data []byte, mime string, o mcpserver.AssetOrigin) (string, error) {
	return l.a.Put(ctx, data, mime, lease.Origin{KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex})
}

func (l leaseAssets) Get(ctx context.Context, sum string) ([]byte, string, error) {
	return l.a.Get(ctx, sum)
}

func (l leaseAssets) ListAssets(_ context.Context, kernelID, executionID string) ([]mcpserver.AssetInfo, error) {
	var out []mcpserver.AssetInfo
	for _, a := range l.a.Model().List(leases.Filter{KernelID: kernelID, ExecutionID: executionID}) {
		info := mcpserver.AssetInfo{URI: mcpserver.AssetURI(a.SHA256), MIME: a.MIME, Size: a.Size,
			ExpiresAt: a.ExpiresAt().UTC().Truncate(time.Second), HTTPPath: "/assets/" + a.SHA256}
		for _, o := range a.Origins {
			info.Origins = append(info.Origins, mcpserver.AssetOrigin{KernelID: o.KernelID, ExecutionID: o.ExecutionID, OutputIndex: o.OutputIndex})
		}
		out = append(out, info)
	}
	return out, nil
}
