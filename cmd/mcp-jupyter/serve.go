package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// runServe runs the server until ctx ends (SIGINT/SIGTERM), then shuts down
// within the grace period: HTTP first, then actors, then the log.
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
		return fmt.Errorf("listen on %s: %w (another process holds the port? choose another with --addr)", cfg.Addr, err)
	}
	c, err := openCore(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-c.ready:
			writeJSON(w, 200, map[string]any{"status": "ready", "events": c.log.Last()})
		default:
			writeJSON(w, 503, map[string]string{"status": "replaying the event log"})
		}
	})
	mux.Handle("/mcp", c.mcp.HTTPHandler())
	eventsCtx, stopEvents := context.WithCancel(context.Background()) // ends `events tail -f` readers at shutdown
	events := mcpserver.Guard{Token: c.token, AllowedHosts: splitList(cfg.AllowedHosts), Logger: logger}.Wrap(eventsHandler(eventsCtx, c.log))
	mux.Handle("GET /events", events)
	mux.Handle("GET /events/", events)
	c.live.mount(mux, mcpserver.Guard{Token: c.token, AllowedHosts: splitList(cfg.AllowedHosts), Logger: logger.With("component", "http")})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(stopEvents)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+"/mcp", "data_dir", cfg.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-c.followErr:
		runErr = fmt.Errorf("read model: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("stop http: %w", err)
	}
	if err := c.close(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// runStdio serves one MCP client over stdin/stdout. Logs go to stderr:
// stdout is the protocol channel.
func runStdio(ctx context.Context, args []string) error {
	cfg, err := parseConfig("stdio", args)
	if err != nil {
		return err
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = "json"
	}
	logger, err := cfg.logger()
	if err != nil {
		return err
	}
	c, err := openCore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	serveErr := c.mcp.ServeStdio(ctx, stdin(), stdout())
	cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	closeErr := c.close(cctx)
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return fmt.Errorf("stdio: %w", serveErr)
	}
	return closeErr
}
