package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// core is what serve and stdio share: the log, the read models, the actors
// and the MCP edge. open builds it in dependency order; close tears it down
// in reverse (edges first, the log last).
type core struct {
	cfg    config
	logger *slog.Logger

	log      *eventlog.Log
	queue    *queue.Model
	kernels  *kernels.Model
	runner   *projections.Runner
	sys      *system.System
	launcher *jupyter.Launcher
	mcp      *mcpserver.Server
	token    string
	nats     *natsbus.Server
	pub      *natsbus.Publisher
	ckpt     *checkpoint.Service
	nbs      *notebooks
	live     *live

	ready     chan struct{} // closed once replay finished and actors recovered
	followErr chan error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func openCore(ctx context.Context, cfg config, logger *slog.Logger) (*core, error) {
	c := &core{cfg: cfg, logger: logger, ready: make(chan struct{}), followErr: make(chan error, 1)}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w (choose a writable --data-dir)", cfg.DataDir, err)
	}
	started := time.Now()
	l, err := eventlog.Open(filepath.Join(cfg.DataDir, "events"), eventlog.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	c.log = l
	if _, err := l.Append(ctx, events.Draft{Stream: events.ServerStream(l.Node()), Payload: events.ServerStarted{Node: l.Node(), Pid: os.Getpid(), Version: version}}); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("record server start: %w", err)
	}
	// The read models catch up with the log (from their snapshots) before
	// the actors recover from them; then they follow it live.
	c.queue, c.kernels = queue.NewModel(), kernels.New()
	c.runner = projections.NewRunner(l, projections.Options{SnapshotEvery: 10_000, Logger: logger.With("component", "persistence")}, c.queue, c.kernels)
	fctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := c.runner.Start(fctx); err != nil {
		cancel()
		_ = l.Close()
		return nil, fmt.Errorf("replay the event log: %w", err)
	}
	select {
	case <-c.runner.Ready():
	case <-c.runner.Done():
		err := c.runner.Wait()
		c.close(context.Background())
		return nil, fmt.Errorf("replay the event log: %w", err)
	case <-ctx.Done():
		c.close(context.Background())
		return nil, ctx.Err()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		<-c.runner.Done()
		if err := c.runner.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, eventlog.ErrClosed) {
			logger.Error("read models stopped", "component", "persistence", "err", err)
			c.followErr <- err
		}
	}()
	// Every durable event goes out on the embedded NATS server; the
	// publisher follows the log, so a slow subscriber never slows appends.
	c.nats, err = natsbus.Open(natsbus.Options{Listen: cfg.NATSListen, Token: cfg.NATSToken, NKeys: splitList(cfg.NATSNKeys),
		JetStream: cfg.NATSJetStream, StoreDir: filepath.Join(cfg.DataDir, "nats"), Logger: logger.With("component", "nats")})
	if err != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	c.pub = natsbus.NewPublisher(l, c.nats.Conn(), natsbus.PublisherOptions{After: l.Last(), Cursor: "nats-publisher", Logger: logger.With("component", "nats")})
	if err := c.pub.Start(fctx); err != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("start NATS publisher: %w", err)
	}
	c.launcher = &jupyter.Launcher{RuntimeDir: filepath.Join(cfg.DataDir, "runtime"), DieWithServer: !cfg.KernelsOutlive,
		Logger: logger.With("component", "kernel")}
	c.sys, err = system.Open(ctx, system.Config{Log: l, Scanner: l, Launcher: c.launcher, Queue: c.queue, Logger: logger, MaxQueue: cfg.MaxQueue})
	if err != nil {
		c.close(context.Background())
		return nil, err
	}
	token, created, err := mcpserver.LoadOrCreateToken(cfg.DataDir)
	if err != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("load MCP token: %w", err)
	}
	c.token = token
	if created {
		fmt.Fprintf(os.Stderr, "mcp-jupyter: created the MCP bearer token (shown once; kept 0600 in %s):\n  %s\n",
			filepath.Join(cfg.DataDir, mcpserver.TokenFile), token)
	}
	hosts := splitList(cfg.AllowedHosts)
	if c.live, err = openLive(ctx, c); err != nil {
		c.close(context.Background())
		return nil, err
	}
	c.mcp = mcpserver.New(&backend{sys: c.sys, log: l, queue: c.queue, launcher: c.launcher}, mcpserver.Options{
		Version: version, OutputBudget: cfg.OutputBudget, ImageBudget: cfg.ImageBudget,
		AssetDir: filepath.Join(cfg.DataDir, "assets"), Assets: leaseAssets{c.live.lease},
		Logger: logger.With("component", "mcp"), Token: token, AllowedHosts: hosts})
	c.mcp.AddAssetTools(leaseAssets{c.live.lease})
	if err := c.openCheckpoints(ctx); err != nil {
		c.close(context.Background())
		return nil, err
	}
	if c.nbs, err = openNotebooks(cfg.NotebookRoot, l, c.sys, c.launcher, c); err != nil {
		c.close(context.Background())
		return nil, err
	}
	c.mcp.AddNotebookTools(c.nbs)
	close(c.ready)
	logger.Info("ready", "component", "persistence", "events", l.Last(), "kernels", len(c.sys.KernelIDs()), "replay", time.Since(started).String())
	return c, nil
}

func (c *core) close(ctx context.Context) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if c.mcp != nil {
		keep(c.mcp.Close(ctx))
	}
	if c.live != nil {
		keep(c.live.closeEdges(ctx))
	}
	if c.nbs != nil {
		keep(c.nbs.close(ctx))
	}
	if c.sys != nil {
		keep(c.sys.Close(ctx))
	}
	if c.pub != nil {
		keep(c.pub.Close(ctx))
	}
	if c.nats != nil {
		keep(c.nats.Close(ctx))
	}
	if c.runner != nil {
		keep(c.runner.Close(ctx)) // saves the snapshots
	}
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	if c.live != nil {
		keep(c.live.closeModels(ctx))
	}
	if c.log != nil {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.log.Append(actx, events.Draft{Stream: events.ServerStream(c.log.Node()), Payload: events.ServerStopped{Node: c.log.Node(), Reason: "shutdown"}})
		cancel()
		keep(err)
		keep(c.log.Close())
	}
	return first
}

// splitList splits a comma-separated setting, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
