package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

func stdin() io.Reader  { return os.Stdin }
func stdout() io.Writer { return os.Stdout }

// runStdio serves one MCP client over stdin/stdout. Logs go to stderr:
// stdout is the protocol channel. On SIGTERM it refuses new work and lets
// running executions finish within the grace, as serve does.
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
	began := time.Now()
	if ctx.Err() != nil { // a signal, not the client hanging up
		dctx, dcancel := context.WithTimeout(cctx, drainBudget(cfg.ShutdownGrace, cfg.AutoCheckpoint))
		c.drain(dctx)
		dcancel()
	}
	c.shutdownCheckpoints(cctx, began)
	if !cfg.KernelsOutlive {
		c.shutdownKernels(cctx)
	}
	closeErr := c.close(cctx)
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return fmt.Errorf("stdio: %w", serveErr)
	}
	return closeErr
}
