// Package natsbustest starts real NATS clusters of embedded natsbus
// servers in one test process, on loopback ports, for the tests of what
// runs on a cluster (history, ownership, checkpoints, routing).
package natsbustest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// ClusterName is the cluster's name in Cluster.
const ClusterName = "test-cluster"

// Cluster starts n nodes, node0 … node<n-1>, routed to each other on
// loopback ports with Replicas = n (at most 3), each storing in its own
// temporary directory, and waits until each is ready (WaitClusterReady).
// tune, when not nil, changes a node's options before it starts. The
// servers close at the end of the test.
func Cluster(t testing.TB, n int, tune func(i int, o *natsbus.Options)) []*natsbus.Server {
	t.Helper()
	opts := ClusterOptions(t, n)
	for i := range opts {
		if tune != nil {
			tune(i, &opts[i])
		}
	}
	return Start(t, opts)
}

// ClusterOptions are the options of n nodes routed to each other on free
// loopback ports (Cluster's, before they start).
func ClusterOptions(t testing.TB, n int) []natsbus.Options {
	t.Helper()
	ports := FreePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	opts := make([]natsbus.Options, n)
	for i := range opts {
		opts[i] = natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), ReadyTimeout: 20 * time.Second,
			Cluster: &natsbus.ClusterOptions{Name: ClusterName, Node: fmt.Sprintf("node%d", i),
				Listen: "127.0.0.1:" + strconv.Itoa(ports[i]), Routes: routes, Replicas: min(n, 3)}}
	}
	return opts
}

// Start opens a server per options (all at once: a node's
// WaitClusterReady needs the others) and waits until every one is ready.
func Start(t testing.TB, opts []natsbus.Options) []*natsbus.Server {
	t.Helper()
	servers := make([]*natsbus.Server, len(opts))
	for i, o := range opts {
		s, err := natsbus.Open(o)
		if err != nil {
			t.Fatalf("open node %d: %v", i, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = s.Close(ctx)
		})
		servers[i] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.WaitClusterReady(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	return servers
}

// FreePorts returns n loopback TCP ports free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}
