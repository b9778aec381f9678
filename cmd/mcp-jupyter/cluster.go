package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// How a node joins its cluster (docs/cluster.md, membership): its embedded
// NATS server routes to the others, JetStream on; open waits until the
// cluster can keep data with --cluster-replicas replicas before anything
// that needs it (the events stream, ownership, history) starts.

// stageCluster is open's stage while it waits for the other nodes.
const stageCluster = "waiting for the cluster"

// clusterWait bounds that wait: a node whose peers do not come within it
// fails to start (and its supervisor starts it again), saying what it saw.
var clusterWait = 5 * time.Minute

// natsCluster is what natsbus needs of the cluster settings (nil for a
// single server).
func (c clusterConfig) natsCluster() *natsbus.ClusterOptions {
	if !c.Enabled() {
		return nil
	}
	return &natsbus.ClusterOptions{Name: c.Name, Node: c.Node, Listen: c.Listen, Routes: c.Routes, Token: c.Token,
		TLSCert: c.TLSCert, TLSKey: c.TLSKey, TLSCA: c.TLSCA, Replicas: c.Replicas}
}

// waitCluster waits, bounded by clusterWait, until the cluster can keep
// data; /readyz says "waiting for the cluster: …" meanwhile (the cluster
// check). A single server returns at once.
func (c *core) waitCluster(ctx context.Context, nb *natsbus.Server) error {
	if !nb.Clustered() {
		return nil
	}
	c.setStage(stageCluster)
	ctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	start := time.Now()
	if err := nb.WaitClusterReady(ctx); err != nil {
		return fmt.Errorf("join the cluster %q as %s within %s: %w", c.cfg.Cluster.Name, c.cfg.Cluster.Node, clusterWait, err)
	}
	c.logger.Info("cluster ready", "component", "cluster", "node", nb.Node(), "state", nb.ClusterState().String(),
		"routes", nb.RoutedNodes(), "replicas", nb.Replicas(), "waited", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// registerCluster exports mcp_jupyter_cluster_routes (the live route
// table of the embedded NATS server) and the cluster parts' counters
// (clusterWork) in cluster mode.
func (c *core) registerCluster(nb *natsbus.Server) error {
	if !nb.Clustered() {
		return nil
	}
	if err := c.reg.Register(metrics.NewClusterCollector(nb.ClusterRoutes, nb.Replicas()-1)); err != nil {
		return fmt.Errorf("register cluster metrics: %w", err)
	}
	if err := c.reg.Register(metrics.NewClusterWorkCollector(c.clusterWork)); err != nil {
		return fmt.Errorf("register cluster metrics: %w", err)
	}
	return nil
}

// clusterWork is what the history publisher, the importer and the
// ownership counted (zero for those not started yet).
func (c *core) clusterWork() metrics.ClusterWork {
	c.mu.RLock()
	hist, imp, own := c.history, c.importer, c.own
	c.mu.RUnlock()
	var w metrics.ClusterWork
	if hist != nil {
		w.Published, w.Confirmed, w.Oversize = hist.Published(), hist.Confirmed(), hist.Oversize()
	}
	if imp != nil {
		st := imp.Stats()
		w.Imported, w.Corrupt, w.Lost = st.Imported, st.Corrupt, st.Lost
	}
	if own != nil {
		w.RenewFailures = own.owners.RenewFailures()
	}
	return w
}

// clusterNATS is the embedded NATS server when this server is a node of a
// cluster, nil otherwise (a single server, or before open started it).
func (c *core) clusterNATS() *natsbus.Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.nats == nil || !c.nats.Clustered() {
		return nil
	}
	return c.nats
}

// clusterJS is the cluster's JetStream (ownership buckets, history stream,
// checkpoint store), nil for a single server.
func (c *core) clusterJS() natsbus.JetStream {
	if nb := c.clusterNATS(); nb != nil {
		return nb.JetStream()
	}
	return nil
}

// clusterReadiness is /readyz's cluster check: "" when fine, else why.
// NB: called with c.mu held (readiness).
func (c *core) clusterReadiness() string {
	if c.nats == nil {
		return "the embedded NATS server is not started yet"
	}
	if c.stage == stageCluster {
		return stageCluster + ": " + c.nats.ClusterState().String()
	}
	if err := c.nats.ClusterHealthy(); err != nil {
		return err.Error()
	}
	return ""
}

// checkCluster is doctor's cluster line: the route port free, every route
// resolvable, the TLS files readable.
func checkCluster(cfg config) finding {
	f := finding{Check: "cluster"}
	cl := cfg.Cluster
	if !cl.Enabled() {
		f.OK, f.Detail = true, "a single server (no --cluster-listen)"
		return f
	}
	ln, err := net.Listen("tcp", cl.Listen)
	if err != nil {
		f.Detail = fmt.Sprintf("cannot listen for routes on %s: %v", cl.Listen, err)
		f.Fix = "free that port (is a node already running here?) or give another --cluster-listen / MCP_CLUSTER_LISTEN"
		return f
	}
	ln.Close()
	var bad []error
	for _, r := range cl.Routes {
		u, _ := url.Parse(r) // NB: parseCluster checked them
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
		cancel()
		if err != nil {
			bad = append(bad, fmt.Errorf("route %s: %w", u.Host, err))
		}
	}
	if len(bad) > 0 {
		f.Detail = "node " + cl.Node + ": " + errors.Join(bad...).Error()
		f.Fix = "fix --cluster-routes / MCP_CLUSTER_ROUTES (under Kubernetes, a pod's name resolves once the pod exists: start the pods in parallel)"
		return f
	}
	if cl.TLSCert != "" {
		if _, err := natsbus.RouteTLS(cl.TLSCert, cl.TLSKey, cl.TLSCA); err != nil {
			f.Detail, f.Fix = err.Error(), "give readable PEM files to --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca"
			return f
		}
	}
	f.OK = true
	f.Detail = fmt.Sprintf("node %s, routes on %s (free), %d route(s) resolvable, %d replicas, cluster %q", cl.Node, cl.Listen, len(cl.Routes), cl.Replicas, cl.Name)
	if cl.TLSCert == "" && cl.Token != "" {
		f.Warn, f.Fix = true, "routes are authenticated but not encrypted: give --cluster-tls-* unless the network between nodes is private"
	}
	return f
}
