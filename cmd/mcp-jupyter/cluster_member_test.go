package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus/natsbustest"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// clusterConfigs are the configs of n nodes of one cluster on loopback
// ports, each with its own data dir (the same token and checkpoint secret,
// as cluster mode requires).
func clusterConfigs(t *testing.T, n int, extra ...string) []config {
	t.Helper()
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	t.Setenv(checkpointfile.SecretEnv, "cluster-test-secret")
	ports := natsbustest.FreePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	cfgs := make([]config, n)
	for i := range cfgs {
		args := append([]string{"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--token", "cluster-test-token",
			"--node-name", fmt.Sprintf("node%d", i), "--cluster-listen", "127.0.0.1:" + strconv.Itoa(ports[i]), "--cluster-token", "cluster-route-token",
			"--cluster-routes", strings.Join(routes, ",")}, extra...)
		cfg, err := parseConfig("serve", args)
		if err != nil {
			t.Fatal(err)
		}
		cfgs[i] = cfg
	}
	return cfgs
}

// Three cores join one cluster: the first waits (and /readyz says for
// what) until the others come; then each is ready with the cluster
// check, stamps its node name on its events, exposes the cluster's
// JetStream, and counts its routes, which drop when a node goes.
func TestClusterCoresJoin(t *testing.T) {
	cfgs := clusterConfigs(t, 3, "--nats-jetstream", "true")
	cores := make([]*core, 3)
	opened := make([]chan error, 3)
	open := func(i int) {
		cores[i] = newCore(cfgs[i], discard())
		opened[i] = make(chan error, 1)
		go func() { opened[i] <- cores[i].open(context.Background()) }() // NB: ends with open (bounded by clusterWait)
	}
	t.Cleanup(func() {
		for _, c := range cores {
			if c != nil {
				_ = c.close(context.Background())
			}
		}
	})
	open(0)
	testkit.WaitUntil(t, 30*time.Second, "node0 says it waits for the cluster", func() (bool, string) {
		rd := cores[0].probes.ready(time.Now())
		return strings.HasPrefix(rd.Checks["cluster"], "waiting for the cluster: 1 of 3 nodes connected") && rd.Status == "not ready", fmt.Sprint(rd)
	})
	open(1)
	open(2)
	for i := range cores {
		select {
		case err := <-opened[i]:
			if err != nil {
				t.Fatalf("node%d: %v", i, err)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("node%d did not open", i)
		}
	}
	for i, c := range cores {
		name := fmt.Sprintf("node%d", i)
		testkit.WaitUntil(t, 20*time.Second, name+" ready with the cluster check", func() (bool, string) {
			rd := c.probes.ready(time.Now())
			return rd.Checks["cluster"] == "ok", fmt.Sprint(rd.Checks)
		})
		if c.log.Node() != name {
			t.Fatalf("node%d's log stamps %q", i, c.log.Node())
		}
		// NB: the log also holds the other nodes' starts, imported from the
		// cluster's history (cluster_history.go): each node's own is its
		// first, and every node's appears on every node.
		testkit.WaitUntil(t, 30*time.Second, name+" holds every node's server start", func() (bool, string) {
			started := map[string]string{}
			err := c.log.Scan(context.Background(), 1, 0, func(e events.Event) error {
				if e.Type == events.TypeServerStarted {
					started[e.Node] = e.Stream
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for j := range cores {
				n := fmt.Sprintf("node%d", j)
				if started[n] != events.ServerStream(n) {
					return false, fmt.Sprint(started)
				}
			}
			return true, ""
		})
		testkit.WaitUntil(t, 20*time.Second, name+" ready with the history check", func() (bool, string) {
			rd := c.probes.ready(time.Now())
			return rd.Checks["history"] == "ok", fmt.Sprint(rd.Checks)
		})
		if c.clusterJS() == nil || c.clusterNATS().Replicas() != 3 {
			t.Fatalf("node%d: no cluster JetStream, or not 3 replicas", i)
		}
		if v := gauge(t, c, "mcp_jupyter_cluster_routes"); v != 2 {
			t.Fatalf("node%d counts %v routes, want 2", i, v)
		}
	}
	// The events stream is the cluster's, with its replicas.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cores[1].clusterJS().Stream(ctx, "MCPJUPYTER_EVENTS")
	if err != nil || st.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("events stream: %v", err)
	}
	// A node goes: the others count one route less and stay ready (a
	// majority of the replicas remains).
	if err := cores[2].close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cores[2] = nil
	for i := range 2 {
		testkit.WaitUntil(t, 20*time.Second, fmt.Sprintf("node%d counts 1 route", i), func() (bool, string) {
			v := gauge(t, cores[i], "mcp_jupyter_cluster_routes")
			return v == 1, fmt.Sprint(v)
		})
		testkit.WaitUntil(t, 20*time.Second, fmt.Sprintf("node%d still ready", i), func() (bool, string) {
			rd := cores[i].probes.ready(time.Now())
			return rd.Checks["cluster"] == "ok", fmt.Sprint(rd.Checks)
		})
	}
}

// A single server has no cluster: no cluster check, no JetStream handle,
// no route metric.
func TestSingleServerHasNoCluster(t *testing.T) {
	c, err := openCore(context.Background(), testConfig(t, t.TempDir()), discard())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(context.Background())
	testkit.WaitUntil(t, 20*time.Second, "ready", func() (bool, string) {
		rd := c.probes.ready(time.Now())
		return rd.Checks["replay"] == "ok", fmt.Sprint(rd.Checks)
	})
	if _, ok := c.probes.ready(time.Now()).Checks["cluster"]; ok || c.clusterJS() != nil || c.clusterNATS() != nil {
		t.Fatal("a single server shows a cluster")
	}
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "mcp_jupyter_cluster") {
			t.Fatalf("a single server exports %s", mf.GetName())
		}
	}
}

// threeNodes opens three cores in cluster mode in this process, routed to
// each other on loopback (opened at once: each waits for its peers).
func threeNodes(t *testing.T) []*core {
	t.Helper()
	cfgs := clusterConfigs(t, 3, "--nats-jetstream", "true")
	cores := make([]*core, 3)
	opened := make([]chan error, 3)
	for i := range cores {
		cores[i] = newCore(cfgs[i], discard())
		t.Cleanup(func() { _ = cores[i].close(context.Background()) })
		t.Cleanup(func() { testkit.KillKernels(t, cfgs[i].DataDir) })
		opened[i] = make(chan error, 1)
		go func() { opened[i] <- cores[i].open(context.Background()) }() // NB: ends with open (bounded by clusterWait)
		if i == 0 {
			// NB: node0 first, as TestClusterCoresJoin starts them.
			testkit.WaitUntil(t, 30*time.Second, "node0 waits for the cluster", func() (bool, string) {
				rd := cores[0].probes.ready(time.Now())
				return strings.HasPrefix(rd.Checks["cluster"], "waiting for the cluster"), fmt.Sprint(rd)
			})
		}
	}
	for i := range cores {
		select {
		case err := <-opened[i]:
			if err != nil {
				t.Fatalf("open node %d: %v", i, err)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("node %d did not open", i)
		}
	}
	return cores
}

// nodeKernel starts a kernel of alice's on c itself (no routing) and runs
// code in it.
func nodeKernel(t *testing.T, c *core, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// NB: the backend's start: this node claims the kernel's lease first.
	k, err := c.back.StartKernel(auth.WithPrincipal(ctx, agent("alice", 0)), mcpserver.StartKernelRequest{Spec: "python3", Label: "ckpt"})
	if err != nil {
		t.Fatal(err)
	}
	if code != "" {
		nodeRun(t, c, k.ID, code)
	}
	return k.ID
}

// nodeRun runs code on kernelID of node c itself and returns its output.
func nodeRun(t *testing.T, c *core, kernelID, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := checkpointRunner{System: c.sys, Queue: c.queue, Log: c.log}.Run(ctx, kernelID, code)
	if err != nil {
		t.Fatalf("run %q on %s: %v", code, c.cfg.Cluster.Node, err)
	}
	return strings.TrimSpace(out)
}
