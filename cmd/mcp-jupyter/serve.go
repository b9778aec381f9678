package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// Request bodies without a Content-Length read at once, and how long a
// further one waits for its turn before a 503.
const (
	unsizedAtOnce = 2
	unsizedWait   = 10 * time.Second
)

// httpHandler is every route behind the checks every route shares: the
// Host/Origin check (probes and /metrics included: no route answers a
// DNS-rebinding page) and the request body limit, shaped as a JSON-RPC error
// on /mcp. Routes that need the token add it themselves (Guard).
func (c *core) httpHandler() http.Handler {
	mux := http.NewServeMux()
	c.routes(mux)
	lg := c.logger.With("component", "http")
	// NB: at most unsizedAtOnce chunked bodies are read at once, so a burst
	// of them costs a few times the limit, not one limit per request.
	unsized := mcpserver.NewUnsizedBodies(unsizedAtOnce, unsizedWait)
	limit := mcpserver.BodyLimit{Max: c.cfg.MaxRequestBytes, Setting: "--max-request-bytes", Logger: lg, Unsized: unsized}
	plain := limit.Wrap(mux)
	limit.JSONRPC = true
	rpc := limit.Wrap(mux)
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathMCP {
			rpc.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
	// NB: a request about a kernel another node owns goes there before
	// any limit here: the owner applies its own (cluster_http.go).
	return mcpserver.HostCheck{AllowedHosts: splitList(c.cfg.AllowedHosts), Logger: lg}.Wrap(c.routedHTTP(limited))
}

// closeReserve is the part of the shutdown grace kept for closing (actors,
// NATS, final snapshots, the log) after waiting for executions.
func closeReserve(grace time.Duration) time.Duration { return min(grace/5, 5*time.Second) }

// drainBudget is how long a shutdown waits for executions: the grace less
// closeReserve, half of that when auto-checkpoints follow (they get the
// rest, and whatever the drain did not use).
func drainBudget(grace time.Duration, autoCheckpoint bool) time.Duration {
	left := grace - closeReserve(grace)
	if autoCheckpoint {
		return left / 2
	}
	return left
}

// shutdownCheckpoints saves the auto-checkpoints after the drain, until
// grace less closeReserve after the shutdown began.
func (c *core) shutdownCheckpoints(graceCtx context.Context, began time.Time) {
	if !c.cfg.AutoCheckpoint {
		return
	}
	ctx, cancel := context.WithDeadline(graceCtx, began.Add(c.cfg.ShutdownGrace-closeReserve(c.cfg.ShutdownGrace)))
	defer cancel()
	r := c.autoCheckpointAll(ctx)
	c.logger.Info("auto-checkpoints saved", "component", "checkpoint", "saved", len(r.Saved), "skipped", len(r.Skipped),
		"failed", len(r.Failed), "took", r.Duration.String())
}

// runServe runs the server until ctx ends (SIGINT/SIGTERM), then shuts down
// within the grace period. The port opens first, so the probes answer
// during the replay; the shutdown order is: refuse new work, let queued
// and running executions finish (up to the grace less closeReserve), stop
// HTTP, shut kernels down unless they outlive the server, then actors,
// NATS, read models (final snapshots) and the log.
func runServe(ctx context.Context, args []string) error {
	cfg, err := parseConfig("serve", args)
	if err != nil {
		return err
	}
	logger, err := cfg.logger()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		detail, fix := portProblem(cfg.Addr, err)
		return fmt.Errorf("%s — fix: %s", detail, fix)
	}
	c := newCore(cfg, logger)
	srv := &http.Server{Handler: c.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(c.stopEvents) // followers of /events end, so Shutdown does not wait on them
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// NB: the console's address without the token: logs are no place for it.
	logger.Info("serving", "component", "server", "addr", ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+pathMCP,
		"console", consoleURL(ln.Addr().String(), ""), "data_dir", cfg.DataDir)

	stopHTTP := func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	if err := c.open(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), closeReserve(cfg.ShutdownGrace))
		defer cancel()
		stopHTTP(sctx)
		if ctx.Err() != nil {
			logger.Info("stopped during start", "component", "server", "err", err)
			return nil
		}
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "component", "server", "grace", cfg.ShutdownGrace.String())
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case <-c.runner.Done():
		runErr = fmt.Errorf("read models: %w", c.runner.Wait())
	}
	start := time.Now()
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	dctx, dcancel := context.WithTimeout(graceCtx, drainBudget(cfg.ShutdownGrace, cfg.AutoCheckpoint))
	left := c.drain(dctx)
	dcancel()
	if left > 0 {
		logger.Warn("grace ran out; unfinished executions stay in the log and resume at the next start",
			"component", "scheduler", "unfinished", left)
	} else {
		logger.Info("every execution finished", "component", "scheduler", "waited", time.Since(start).String())
	}
	c.shutdownCheckpoints(graceCtx, start)
	hctx, hcancel := context.WithTimeout(graceCtx, closeReserve(cfg.ShutdownGrace)/2)
	stopHTTP(hctx)
	hcancel()
	if !cfg.KernelsOutlive {
		c.shutdownKernels(graceCtx)
	}
	if err := c.close(graceCtx); err != nil && runErr == nil {
		runErr = err
	}
	logger.Info("stopped", "component", "server", "took", time.Since(start).String())
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("http server: %w", err)
	}
	return runErr
}
