package testkit

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestRouteLinksPartitionANATSCluster checks the harness's partition on
// real nats-servers (in this process, routed only through the harness's
// proxies as StartCluster's nodes are): the three form a full mesh, no
// route bypasses the proxies despite nats-server's gossip of the real
// addresses, Cut(2) leaves node 2 with no route and the others with one
// each, and Heal(2) brings the mesh back.
func TestRouteLinksPartitionANATSCluster(t *testing.T) {
	const n = 3
	c := &Cluster{t: t}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, &ClusterNode{Name: "node" + strconv.Itoa(i), RouteAddr: FreeAddr(t)})
	}
	c.startLinks()
	servers := make([]*server.Server, n+1)
	for i := 1; i <= n; i++ {
		host, port, _ := net.SplitHostPort(c.nodes[i-1].RouteAddr)
		p, _ := strconv.Atoi(port)
		opts := &server.Options{ServerName: c.nodes[i-1].Name, Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "harness", Host: host, Port: p}}
		opts.Routes = server.RoutesFromStr(c.routes(i))
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	peers := func(want ...int) func() (bool, string) {
		return func() (bool, string) {
			state := ""
			ok := true
			for i := 1; i <= n; i++ {
				got := peersOf(t, servers[i])
				state += c.nodes[i-1].Name + "=" + strconv.Itoa(got) + " "
				if got != want[i-1] {
					ok = false
				}
			}
			return ok, state
		}
	}
	WaitUntil(t, 30*time.Second, "a full mesh of routes", peers(2, 2, 2))
	// NB: gossip may open a direct route a little after the mesh formed.
	time.Sleep(2 * time.Second)
	if by := c.Bypasses(); len(by) > 0 {
		t.Fatalf("routes bypass the proxies: %v", by)
	}
	c.Cut(2)
	WaitUntil(t, 30*time.Second, "node2 cut off", func() (bool, string) {
		ok, state := peers(1, 0, 1)()
		return ok, state + "; node2's routes:" + routesOf(t, servers[2]) + "; bypasses: " + strings.Join(c.Bypasses(), "; ")
	})
	// NB: a cut node's routes retry and must stay refused.
	time.Sleep(3 * time.Second)
	if ok, state := peers(1, 0, 1)(); !ok {
		t.Fatalf("node2 got a route back while cut: %s", state)
	}
	c.Heal(2)
	WaitUntil(t, 30*time.Second, "the mesh back after the heal", peers(2, 2, 2))
}

// routesOf describes s's routes (for a failure message).
func routesOf(t *testing.T, s *server.Server) string {
	rz, err := s.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, r := range rz.Routes {
		out += fmt.Sprintf(" [%s at %s:%d, solicited %v]", r.RemoteName, r.IP, r.Port, r.DidSolicit)
	}
	return out
}

// peersOf counts the distinct servers s has routes to (nats-server opens a
// pool of connections per peer).
func peersOf(t *testing.T, s *server.Server) int {
	rz, err := s.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rz.Routes {
		ids[r.RemoteID] = true
	}
	return len(ids)
}
