package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/httpapi"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// runServe is the serve subcommand: parse, open, run until a signal or a
// failure, close within the grace period.
func runServe(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseServe(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mcp-jupyter serve: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)

	// NB: signals are caught before open, so a signal during a long replay
	// still shuts down in order.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reason string
	var reasonMu sync.Mutex
	closed := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() { // owned: ends when closed closes
		defer close(watcherDone)
		select {
		case sig := <-sigc:
			reasonMu.Lock()
			reason = sig.String()
			reasonMu.Unlock()
			logger.Info("shutting down", "component", "server", "signal", sig.String(), "grace", cfg.ShutdownGrace)
			cancel()
		case <-closed:
			return
		}
		select {
		case sig := <-sigc:
			logger.Error("second signal: exiting without a clean shutdown", "component", "server", "signal", sig.String())
			os.Exit(1)
		case <-closed:
		}
	}()
	defer func() { close(closed); <-watcherDone }()

	s := newServer(cfg, logger)
	if err := s.open(ctx); err != nil {
		fmt.Fprintf(stderr, "mcp-jupyter serve: %v\n", err)
		closeCtx, cancelClose := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancelClose()
		if cerr := s.close(closeCtx, "open failed: "+err.Error()); cerr != nil {
			fmt.Fprintf(stderr, "mcp-jupyter serve: %v\n", cerr)
		}
		return 1
	}
	runErr := s.run(ctx)
	reasonMu.Lock()
	why := reason
	reasonMu.Unlock()
	if runErr != nil {
		why = "error: " + runErr.Error()
		logger.Error("server failed", "component", "server", "err", runErr)
	}
	closeCtx, cancelClose := context.WithDeadline(context.Background(), s.shutdownDeadline())
	defer cancelClose()
	closeErr := s.close(closeCtx, why)
	if closeErr != nil {
		logger.Error("shutdown incomplete", "component", "server", "err", closeErr)
	}
	if runErr != nil || closeErr != nil {
		return 1
	}
	logger.Info("stopped", "component", "server")
	return 0
}

// server is one running mcp-jupyter: what it owns, and the three steps of
// its life. Later components slot into each step in the documented order:
//
//	open:  log -> ServerStarted -> projections -> NATS -> (actors) -> HTTP edges (+ /mcp)
//	run:   one errgroup; every owned goroutine reports to it
//	close: HTTP edges -> (actors) -> projections -> NATS -> ServerStopped -> log
type server struct {
	cfg    config
	logger *slog.Logger

	log     *eventlog.Log
	kernels *kernels.Model
	runner  *projections.Runner
	bus     *natsbus.Server
	pub     *natsbus.Publisher
	httpSrv *http.Server
	ln      net.Listener

	// lifetime is the context of long-lived components; close cancels it
	// after their own Close.
	lifetime     context.Context
	stopLifetime context.CancelFunc

	mu         sync.Mutex
	deadline   time.Time // set when shutdown begins
	closing    bool
	closedOnce sync.Once
	closeErr   error
}

func newServer(cfg config, logger *slog.Logger) *server {
	lifetime, stop := context.WithCancel(context.Background())
	return &server{cfg: cfg, logger: logger, lifetime: lifetime, stopLifetime: stop}
}

// open acquires everything in order. On error the caller still calls close,
// which releases whatever was opened.
func (s *server) open(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	log, err := eventlog.Open(filepath.Join(s.cfg.DataDir, "events"), eventlog.Options{Logger: s.logger})
	if err != nil {
		return err // *eventlog.InUseError says which pid holds the dir
	}
	s.log = log
	started, err := log.Append(ctx, events.Draft{Stream: events.ServerStream(log.Node()),
		Payload: events.ServerStarted{Node: log.Node(), Pid: os.Getpid(), Version: buildVersion()}})
	if err != nil {
		return fmt.Errorf("record server start: %w", err)
	}
	s.logger.Info("event log open", "component", "persistence", "dir", log.Dir(),
		"first", log.First(), "last", log.Last(), "node", log.Node())

	s.kernels = kernels.New()
	s.runner = projections.NewRunner(log, projections.Options{SnapshotEvery: 10_000,
		Logger: s.logger}, s.kernels)
	if err := s.runner.Start(s.lifetime); err != nil {
		return fmt.Errorf("start projections: %w", err)
	}

	s.bus, err = natsbus.Open(natsbus.Options{Listen: s.cfg.NATSListen, Token: s.cfg.NATSToken, Logger: s.logger})
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	s.pub = natsbus.NewPublisher(log, s.bus.Conn(), natsbus.PublisherOptions{Cursor: "natsbus",
		After: started[0].Seq - 1, Logger: s.logger})
	if err := s.pub.Start(s.lifetime); err != nil {
		return fmt.Errorf("start nats publisher: %w", err)
	}

	mux := http.NewServeMux()
	httpapi.Probes(mux, s.ready)
	s.ln, err = net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.logger.With("component", "http").Handler(), slog.LevelWarn)}
	s.logger.Info("serving", "component", "http", "addr", s.ln.Addr().String())
	return nil
}

// ready is /readyz: the read models have caught up with the log.
func (s *server) ready() error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return errors.New("shutting down")
	}
	select {
	case <-s.runner.Ready():
		return nil
	case <-s.runner.Done():
		return fmt.Errorf("projections stopped: %v", s.runner.Wait())
	default:
		applied, target := s.runner.Progress()
		return fmt.Errorf("projections catching up: %d of %d events applied", applied, target)
	}
}

// run serves until ctx ends (a signal) or an owned goroutine fails, then
// stops the edges (HTTP) before returning: they are first in the shutdown
// order. The error is the first failure, nil after a signal.
func (s *server) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.httpSrv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithDeadline(context.Background(), s.beginShutdown())
		defer cancel()
		if err := s.httpSrv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-s.runner.Done():
			if err := s.runner.Wait(); err != nil {
				return fmt.Errorf("projections: %w", err)
			}
			return errors.New("projections stopped")
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		select {
		case <-s.pub.Done():
			if err := s.pub.Wait(); err != nil {
				return fmt.Errorf("nats publisher: %w", err)
			}
			return errors.New("nats publisher stopped")
		case <-gctx.Done():
			return nil
		}
	})
	return g.Wait()
}

// beginShutdown marks the server closing and fixes the deadline of the
// whole shutdown (grace period from now) on the first call.
func (s *server) beginShutdown() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		s.deadline = time.Now().Add(s.cfg.ShutdownGrace)
	}
	return s.deadline
}

func (s *server) shutdownDeadline() time.Time { return s.beginShutdown() }

// close releases everything open, in order, and returns the first error.
// It is idempotent and tolerates a partial open.
func (s *server) close(ctx context.Context, reason string) error {
	s.closedOnce.Do(func() {
		s.beginShutdown()
		var errs []error
		if s.httpSrv != nil { // normally already shut down by run
			if err := s.httpSrv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shut down http: %w", err))
			}
		} else if s.ln != nil {
			_ = s.ln.Close()
		}
		if s.runner != nil {
			if err := s.runner.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if s.pub != nil {
			if err := s.pub.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if s.bus != nil {
			if err := s.bus.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopLifetime()
		if s.log != nil {
			if _, err := s.log.Append(ctx, events.Draft{Stream: events.ServerStream(s.log.Node()),
				Payload: events.ServerStopped{Node: s.log.Node(), Reason: reason}}); err != nil {
				errs = append(errs, fmt.Errorf("record server stop: %w", err))
			}
			if err := s.log.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
