package natsbus_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// routeNet carries a test cluster's routes through TCP proxies the test
// owns, so that a node can be cut off for real: its routes close and new
// ones are refused, while its process, its server and its own clients stay
// up (what a network partition does). Every node advertises its proxy as
// its route address, so even the routes nats-server learns by gossip pass
// through one. A proxy tells who dials from the route's CONNECT line (its
// "name" is the dialing server's id).
type routeNet struct {
	mu    sync.Mutex
	cut   map[string]bool // server ids cut off
	pairs []*routePair
	lns   []net.Listener
	wg    sync.WaitGroup
}

type routePair struct {
	src, dst     string // server ids ("" src: not known yet)
	client, back net.Conn
}

func (p *routePair) close() {
	_ = p.client.Close()
	_ = p.back.Close()
}

// proxy listens on a free loopback port and forwards to target, the
// cluster listener of server dst.
func (rn *routeNet) proxy(t testing.TB, dst string, target func() string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rn.mu.Lock()
	rn.lns = append(rn.lns, ln)
	rn.mu.Unlock()
	rn.wg.Add(1)
	go func() {
		defer rn.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rn.wg.Add(1)
			go func() { defer rn.wg.Done(); rn.serve(c, dst, target()) }()
		}
	}()
	return ln.Addr().String()
}

func (rn *routeNet) serve(c net.Conn, dst, target string) {
	rn.mu.Lock()
	refused := rn.cut[dst]
	rn.mu.Unlock()
	if refused {
		_ = c.Close()
		return
	}
	back, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p := &routePair{dst: dst, client: c, back: back}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(c, back); _ = c.Close(); close(done) }()
	// NB: the accepting server speaks first (INFO); the dialer answers
	// with CONNECT {"name": its id, ...}: who dials is known from it.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	line, err := br.ReadSlice('\n')
	_ = c.SetReadDeadline(time.Time{})
	if err == nil {
		var ci struct {
			Name string `json:"name"`
		}
		if j := bytes.TrimPrefix(bytes.TrimSpace(line), []byte("CONNECT ")); json.Unmarshal(j, &ci) == nil {
			p.src = ci.Name
		}
	}
	rn.mu.Lock()
	refused = err != nil || rn.cut[p.src] || rn.cut[dst]
	if !refused {
		rn.pairs = append(rn.pairs, p)
	}
	rn.mu.Unlock()
	if !refused {
		if _, err := back.Write(line); err == nil {
			_, _ = io.Copy(back, br)
		}
	}
	p.close()
	<-done
}

// cutOff closes every route to or from server id and refuses new ones.
func (rn *routeNet) cutOff(id string) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.cut[id] = true
	kept := rn.pairs[:0]
	for _, p := range rn.pairs {
		if p.src == id || p.dst == id {
			p.close()
			continue
		}
		kept = append(kept, p)
	}
	rn.pairs = kept
}

// heal lets server id's routes through again (nats-server redials them).
func (rn *routeNet) heal(id string) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	delete(rn.cut, id)
}

func (rn *routeNet) close() {
	rn.mu.Lock()
	for _, ln := range rn.lns {
		_ = ln.Close()
	}
	for _, p := range rn.pairs {
		p.close()
	}
	rn.pairs = nil
	rn.mu.Unlock()
	rn.wg.Wait()
}

// jsCluster is n embedded nats-servers with JetStream forming one cluster
// on loopback, every route through a routeNet proxy.
type jsCluster struct {
	servers []*server.Server
	net     *routeNet
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startJSCluster(t testing.TB, n int) *jsCluster {
	t.Helper()
	c := &jsCluster{net: &routeNet{cut: map[string]bool{}}}
	ports := make([]int, n)
	proxies := make([]string, n)
	ids := make([]string, n)
	// NB: not DontListen: nats-server starts routing only once its client
	// listener is up (Server.Start), so a cluster node needs one.
	servers := make([]*server.Server, n)
	opts := make([]*server.Options, n)
	for i := range n {
		ports[i] = freePort(t)
		opts[i] = &server.Options{ServerName: "node" + strconv.Itoa(i), Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, JetStream: true,
			StoreDir: t.TempDir(), Cluster: server.ClusterOpts{Name: "owners-test", Host: "127.0.0.1", Port: ports[i],
				Compression: server.CompressionOpts{Mode: server.CompressionOff}}}
		ns, err := server.NewServer(opts[i])
		if err != nil {
			t.Fatal(err)
		}
		servers[i], ids[i] = ns, ns.ID()
		target := "127.0.0.1:" + strconv.Itoa(ports[i])
		proxies[i] = c.net.proxy(t, ids[i], func() string { return target })
		opts[i].Cluster.Advertise = proxies[i]
	}
	for i := range n {
		for j := range n {
			if j != i {
				u, _ := url.Parse("nats://" + proxies[j])
				opts[i].Routes = append(opts[i].Routes, u)
			}
		}
	}
	c.servers = servers
	t.Cleanup(func() {
		for _, ns := range c.servers {
			ns.Shutdown()
		}
		for _, ns := range c.servers {
			ns.WaitForShutdown()
		}
		c.net.close()
	})
	for _, ns := range servers {
		go ns.Start()
	}
	for i, ns := range servers {
		if !ns.ReadyForConnections(20 * time.Second) {
			t.Fatalf("node%d not ready", i)
		}
	}
	return c
}

// js is a JetStream client on node i (in process), closed by the test.
func (c *jsCluster) js(t testing.TB, i int) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(c.servers[i]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// cutOff cuts node i off and waits until it has no route left (a route
// that bypassed the proxies would fail the test here).
func (c *jsCluster) cutOff(t testing.TB, i int) {
	t.Helper()
	c.net.cutOff(c.servers[i].ID())
	deadline := time.Now().Add(10 * time.Second)
	for c.servers[i].NumRoutes() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node%d still has %d routes after being cut off", i, c.servers[i].NumRoutes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *jsCluster) heal(i int) { c.net.heal(c.servers[i].ID()) }

func (c *jsCluster) String() string { return fmt.Sprintf("%d-node cluster", len(c.servers)) }
