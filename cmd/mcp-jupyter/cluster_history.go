package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// The shared history of a cluster (docs/cluster.md, "Shared history"):
// this node publishes the records it writes to the history stream, and
// imports the other nodes' kernel, execution and server records into its
// own log, so its read models answer for the whole cluster. Models and
// workers that act (metrics, the process table, the culler, the notebook
// output writer, the event lines) look only at this node's own records.

// historyStartTimeout bounds the creation of the history stream at start
// (the cluster must have elected a JetStream leader).
const historyStartTimeout = 30 * time.Second

// openHistory creates the history stream and starts the history publisher
// and the importer. Cluster mode only; after the embedded NATS server is
// open and the cluster ready.
func (c *core) openHistory(ctx context.Context, fctx context.Context) error {
	cl := c.cfg.Cluster
	sctx, cancel := context.WithTimeout(ctx, historyStartTimeout)
	defer cancel()
	if err := c.nats.EnsureHistory(sctx, 0); err != nil {
		return fmt.Errorf("cluster history: %w", err)
	}
	logger := c.logger.With("component", "cluster")
	hist := natsbus.NewHistoryPublisher(c.log, c.nats, natsbus.HistoryOptions{Node: cl.Node, Logger: logger})
	imp := natsbus.NewImporter(c.log, c.nats, natsbus.ImporterOptions{Node: cl.Node, Logger: logger})
	if err := hist.Start(fctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.history = hist
	c.mu.Unlock()
	if err := imp.Start(fctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.importer = imp
	c.mu.Unlock()
	return nil
}

// closeHistory stops the importer, then the publisher (it saves its
// cursor); before the NATS server closes.
func (c *core) closeHistory(ctx context.Context) error {
	c.mu.RLock()
	imp, hist := c.importer, c.history
	c.mu.RUnlock()
	var err error
	if imp != nil {
		err = imp.Close(ctx)
	}
	if hist != nil {
		if e := hist.Close(ctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// runsHere reports whether this node runs kernel id: always for a single
// server; in a cluster, when its actors are on this node (the read models
// also know the other nodes' kernels).
func (c *core) runsHere(id string) bool {
	if c.cfg.Cluster.NodeName() == "" {
		return true
	}
	for _, k := range c.sys.KernelIDs() {
		if k == id {
			return true
		}
	}
	return false
}
