package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// TestClusterOwnershipGuardsKernelCommands: in cluster mode (this node and
// two others, R3 buckets) a kernel's lease is claimed before it starts and
// released by its shutdown; once the node stops renewing (its Owners can
// no longer write the bucket, as when cut off) execute is refused with the
// "cannot prove it owns" message and nothing is queued; after another
// node takes the kernel, the refusal names that node.
func TestClusterOwnershipGuardsKernelCommands(t *testing.T) {
	const lease = 3 * time.Second
	// A 3-node cluster: this core (node-a) and two bare nodes, node-b
	// running the other Owners.
	addrs := []string{freeRouteAddr(t), freeRouteAddr(t), freeRouteAddr(t)}
	var routes []string
	for _, a := range addrs {
		routes = append(routes, "nats://"+a)
	}
	var peers []*natsbus.Server
	for i, node := range []string{"node-b", "node-c"} {
		nb, err := natsbus.Open(natsbus.Options{JetStream: true, StoreDir: t.TempDir(),
			Cluster: &natsbus.ClusterOptions{Node: node, Name: "mcp-jupyter", Listen: addrs[i+1], Routes: routes, Replicas: 3}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nb.Close(context.Background()) })
		peers = append(peers, nb)
	}
	c, cl := coreWith(t, func(cfg *config) {
		cfg.Cluster = clusterConfig{Node: "node-a", Listen: addrs[0], Routes: routes, Name: "mcp-jupyter", Replicas: 3, Lease: lease}
	})
	if c.own == nil || c.back.own == nil {
		t.Fatal("cluster mode without kernel ownership")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	other, err := peers[0].OpenOwners(ctx, "node-b", natsbus.OwnersOptions{Lease: lease, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	// NB: node-b runs no MCP server here: it says it can start only
	// another kernelspec, so placement keeps python3 kernels on node-a.
	other.Announce(natsbus.NodeInfo{Specs: []string{"julia-1.10"}, MemAvailable: 1 << 40})
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	waitOwnership(t, 10*time.Second, "node-a places julia kernels on node-b", func() bool { return c.placeKernel("julia-1.10") == "node-b" })
	if got := c.placeKernel("python3"); got != "node-a" {
		t.Fatalf("placeKernel(python3) = %q: node-b cannot start it", got)
	}

	k := startKernelTool(t, cl)
	if l, ok := c.own.owners.Owner(k); !ok || l.Node != "node-a" {
		t.Fatalf("kernel %s started without this node's lease: %+v %v", k, l, ok)
	}
	k2 := startKernelTool(t, cl)
	ok(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 1"})
	ok(t, cl, "shutdown_kernel", map[string]any{"kernel": k2})
	if _, held := c.own.owners.Owner(k2); held {
		t.Fatalf("kernel %s shut down but its lease stays", k2)
	}
	waitOwnership(t, 10*time.Second, "node-b sees k2 released", func() bool { _, ok := other.Owner(k2); return !ok })

	// The node stops renewing: within lease − lease/4 its commands for
	// the kernel are refused, before anything is queued.
	before, err := c.back.Executions(asAdmin(ctx), k, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.own.owners.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitOwnership(t, lease, "node-a stops holding its kernel", func() bool { return c.own.held(k) != nil })
	_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 2"})
	for _, want := range []string{"ERROR", "node node-a cannot prove it owns kernel " + k, "cut off from the cluster?", "nothing was run", "within " + lease.String()} {
		if !strings.Contains(text, want) {
			t.Fatalf("execute while not renewing: want %q in %s", want, text)
		}
	}
	if _, text := callTool(t, cl, "interrupt_kernel", map[string]any{"kernel": k}); !strings.Contains(text, "cannot prove it owns") {
		t.Fatalf("interrupt while not renewing: %s", text)
	}
	// NB: the server's own auto-checkpoint too: saved later, it would
	// overwrite the new owner's newer one in the cluster's store.
	kr, _ := c.kernels.Get(k)
	if _, err := c.ckpt.Save(ctx, checkpoint.SaveRequest{Name: autoCheckpointName(k), Owner: kr.Owner, KernelID: k, Overwrite: true}); err == nil ||
		!strings.Contains(err.Error(), "cannot prove it owns kernel "+k) {
		t.Fatalf("the server's auto-checkpoint while not renewing: %v, want the refusal", err)
	}
	after, err := c.back.Executions(asAdmin(ctx), k, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a refused execute was queued: %d executions before, %d after", len(before), len(after))
	}

	// Another node sees the lease lapse (a whole lease after the last
	// renewal, so after node-a stopped acting) and takes it; node-a keeps
	// refusing (once its routes heal it names the new owner: natsbus's
	// TestOwnersClusterCutOff).
	var l natsbus.Lease
	select {
	case l = <-other.Lapsed():
	case <-time.After(3 * lease):
		t.Fatal("node-b never saw the lease lapse")
	}
	if l.Kernel != k || l.Node != "node-a" {
		t.Fatalf("lapsed: %+v", l)
	}
	if _, err := other.Take(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := other.Held(k); err != nil {
		t.Fatalf("node-b took the kernel but does not hold it: %v", err)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 3"}); !strings.Contains(text, "cannot prove it owns") {
		t.Fatalf("execute on node-a after node-b took the kernel: %s", text)
	}
}

// TestSingleServerHasNoOwnership: without cluster flags nothing of the
// ownership runs: no Owners, no bucket.
func TestSingleServerHasNoOwnership(t *testing.T) {
	c, _ := coreWith(t, func(*config) {})
	if c.own != nil || c.back.own != nil {
		t.Fatal("a single server has kernel ownership")
	}
	if err := c.back.own.held("any"); err != nil {
		t.Fatalf("a single server refuses a kernel: %v", err)
	}
}

// freeRouteAddr is a loopback host:port free now, for --cluster-listen.
func freeRouteAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitOwnership(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
