package natsbus_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus/natsbustest"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// Three embedded servers form a cluster over loopback routes; a stream
// with three replicas written through one node is read on another, and
// each node holds a current replica.
func TestClusterFormsAndKeepsR3Stream(t *testing.T) {
	nodes := natsbustest.Cluster(t, 3, func(i int, o *natsbus.Options) {
		o.JetStream = true // the events stream, created with the cluster's replicas
		o.Cluster.Token = "route-secret"
	})
	for i, s := range nodes {
		if s.Replicas() != 3 || s.Node() != "node"+string(rune('0'+i)) || s.JetStream() == nil {
			t.Fatalf("node %d: replicas %d, name %q, jetstream %v", i, s.Replicas(), s.Node(), s.JetStream() != nil)
		}
		others := slices.DeleteFunc([]string{"node0", "node1", "node2"}, func(n string) bool { return n == s.Node() })
		if got := s.RoutedNodes(); !slices.Equal(got, others) {
			t.Fatalf("node %d routes to %v, want %v", i, got, others)
		}
		if st := s.ClusterState(); !st.Ready() || st.Nodes != 3 {
			t.Fatalf("node %d: %s", i, st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := nodes[2].JetStream().Stream(ctx, natsbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if r := ev.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("events stream has %d replicas, want 3", r)
	}
	if _, err := nodes[0].JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "R3TEST", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := nodes[1].JetStream().Publish(ctx, "r3.x", []byte{byte(i)}); err != nil {
			t.Fatalf("publish %d through node1: %v", i, err)
		}
	}
	st, err := nodes[2].JetStream().Stream(ctx, "R3TEST")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(ctx, 20)
	if err != nil || !bytes.Equal(msg.Data, []byte{19}) {
		t.Fatalf("message 20 read on node2: %v %v", msg, err)
	}
	testkit.WaitUntil(t, 10*time.Second, "every replica current", func() (bool, string) {
		info, err := st.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		c := info.Cluster
		if c == nil || c.Leader == "" || len(c.Replicas) != 2 {
			return false, "no leader and two replicas yet"
		}
		for _, r := range c.Replicas {
			if !r.Current || r.Offline {
				return false, r.Name + " not current"
			}
		}
		return info.State.Msgs == 20, "not 20 messages"
	})
}

// logSink collects a server's log lines (what nats-server says about a
// refused route).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// A node presenting the wrong token is refused: the two nodes sharing
// the token form a cluster; the third never joins. How it is proven (a
// route list alone cannot: the node that dials registers the route for a
// moment, before the other side checks its CONNECT and closes it): a
// message published on node0 every 100 ms for 4 s (four of nats-server's
// route retries) never reaches a subscriber on the third node; the
// third's wait for the cluster fails; node0 and node1 log the refused
// authorization; and the control: the same node restarted with the right
// token receives the same messages.
func TestClusterRouteWrongTokenRefused(t *testing.T) {
	opts := natsbustest.ClusterOptions(t, 3)
	sinks := make([]*logSink, 3)
	for i := range opts {
		sinks[i] = &logSink{}
		opts[i].Logger = sinks[i].logger()
		opts[i].Cluster.Token = "the-cluster-token"
		opts[i].Cluster.Replicas = 2
	}
	opts[2].Cluster.Token = "a-wrong-token"
	var servers []*natsbus.Server
	for _, o := range opts {
		s, err := natsbus.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		servers = append(servers, s)
	}
	testkit.WaitUntil(t, 20*time.Second, "node0 and node1 routed", func() (bool, string) {
		a, b := servers[0].RoutedNodes(), servers[1].RoutedNodes()
		return slices.Contains(a, "node1") && slices.Contains(b, "node0"), strings.Join(append(a, b...), ",")
	})
	if n := delivered(t, servers[0], servers[2], 4*time.Second); n != 0 {
		t.Fatalf("the node with the wrong token received %d messages published on node0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := servers[2].WaitClusterReady(ctx); err == nil {
		t.Fatal("the node with the wrong token says the cluster is ready")
	}
	refused := strings.ToLower(sinks[0].String() + sinks[1].String())
	if !strings.Contains(refused, "authorization") && !strings.Contains(refused, "authentication") {
		t.Fatalf("node0 and node1 logged no refused route:\n%s", refused)
	}
	// The control: the same node with the right token joins and receives.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = servers[2].Close(ctx)
	opts[2].Cluster.Token = "the-cluster-token"
	s, err := natsbus.Open(opts[2])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	testkit.WaitUntil(t, 20*time.Second, "node2 routed with the right token", func() (bool, string) {
		got := s.RoutedNodes()
		return slices.Equal(got, []string{"node0", "node1"}), strings.Join(got, ",")
	})
	if n := delivered(t, servers[0], s, time.Second); n == 0 {
		t.Fatal("with the right token, node2 received nothing published on node0")
	}
}

// delivered publishes on from every 100 ms for d and counts what a
// subscriber on to receives.
func delivered(t *testing.T, from, to *natsbus.Server, d time.Duration) int {
	t.Helper()
	sub, err := to.Conn().SubscribeSync("probe.route")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := to.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		if err := from.Conn().Publish("probe.route", []byte("x")); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := sub.NextMsg(100 * time.Millisecond); err != nil {
				break
			}
			n++
		}
	}
	return n
}

// Routes under TLS with a CA made here: three nodes with certificates it
// signed form a cluster and keep an R3 stream; a node whose certificate
// another CA signed is refused.
func TestClusterTLSRoutes(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	opts := natsbustest.ClusterOptions(t, 3)
	sink := &logSink{}
	for i := range opts {
		cert, key := ca.issue(t, dir, opts[i].Cluster.Node)
		opts[i].Cluster.TLSCert, opts[i].Cluster.TLSKey, opts[i].Cluster.TLSCA = cert, key, ca.certFile
	}
	opts[0].Logger = sink.logger()
	// node3 dials the three with a certificate of another CA (it trusts
	// ours, so only the others' check of its certificate can keep it out).
	in := opts[0]
	c := *in.Cluster
	in.Cluster, in.StoreDir, in.Logger = &c, filepath.Join(dir, "intruder"), nil
	c.Node, c.Listen = "node3", "127.0.0.1:0"
	other := newCA(t, dir, "other-ca")
	c.TLSCert, c.TLSKey = other.issue(t, dir, "node3")
	nodes := natsbustest.Start(t, opts)
	intruder, err := natsbus.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intruder.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := nodes[0].JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "TLSR3", Subjects: []string{"tls.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[2].JetStream().Publish(ctx, "tls.x", []byte("over TLS routes")); err != nil {
		t.Fatal(err)
	}
	if n := delivered(t, nodes[0], intruder, 3*time.Second); n != 0 {
		t.Fatalf("the node with another CA's certificate received %d messages published on node0", n)
	}
	if n := delivered(t, nodes[0], nodes[2], time.Second); n == 0 {
		t.Fatal("node2, with a certificate of the cluster's CA, received nothing published on node0")
	}
	if log := strings.ToLower(sink.String()); !strings.Contains(log, "tls") {
		t.Fatalf("node0 logged no TLS failure for the intruder:\n%s", log)
	}
}

// A node alone, waiting for peers that never come, says how many it sees
// and stops at its context.
func TestWaitClusterReadyIsBoundedAndSaysWhatIsMissing(t *testing.T) {
	opts := natsbustest.ClusterOptions(t, 3)
	s, err := natsbus.Open(opts[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.WaitClusterReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 nodes connected") {
		t.Fatalf("wait alone: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the wait took %s past its 700ms context", d)
	}
}

// Bad cluster options are refused at Open with what to fix.
func TestClusterOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	base := func() natsbus.ClusterOptions {
		return natsbus.ClusterOptions{Name: "c", Node: "n1", Listen: "127.0.0.1:0", Replicas: 1}
	}
	for _, tc := range []struct {
		name string
		edit func(*natsbus.ClusterOptions)
		want string
	}{
		{"no node name", func(c *natsbus.ClusterOptions) { c.Node = "" }, "node name"},
		{"node name with a space", func(c *natsbus.ClusterOptions) { c.Node = "a b" }, "node name"},
		{"no cluster name", func(c *natsbus.ClusterOptions) { c.Name = "" }, "needs a name"},
		{"six replicas", func(c *natsbus.ClusterOptions) { c.Replicas = 6 }, "1 to 5"},
		{"bad route", func(c *natsbus.ClusterOptions) { c.Routes = []string{"http://x:1"} }, "nats://host:port"},
		{"bad listen", func(c *natsbus.ClusterOptions) { c.Listen = "nowhere" }, "listen address"},
		{"cert without CA", func(c *natsbus.ClusterOptions) { c.TLSCert, c.TLSKey = "a", "b" }, "all three"},
		{"missing cert", func(c *natsbus.ClusterOptions) { c.TLSCert, c.TLSKey, c.TLSCA = "/nope", "/nope", "/nope" }, "load the route certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			s, err := natsbus.Open(natsbus.Options{StoreDir: dir, Cluster: &c})
			if err == nil {
				_ = s.Close(context.Background())
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// testCA is a certificate authority made for a test.
type testCA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, certFile: file}
}

// issue makes a certificate for a node on 127.0.0.1, usable by a route
// both ways (it serves and it dials), and returns its files.
func (ca *testCA) issue(t *testing.T, dir, node string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, node+"-"+ca.cert.Subject.CommonName+".pem"), filepath.Join(dir, node+"-"+ca.cert.Subject.CommonName+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// In a cluster every node publishes its own events into the one events
// stream: node1's event n is not a duplicate of node0's event n.
func TestClusterEventsStreamKeepsEveryNodesEvents(t *testing.T) {
	nodes := natsbustest.Cluster(t, 2, func(i int, o *natsbus.Options) { o.JetStream = true })
	const each = 5
	for i, s := range nodes {
		l, err := eventlog.Open(t.TempDir(), eventlog.Options{Node: s.Node()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		if _, err := l.Append(context.Background(), kernelDrafts(fmt.Sprintf("k%d", i), each-1)...); err != nil {
			t.Fatal(err)
		}
		startPublisher(t, l, s, natsbus.PublisherOptions{Node: s.Node()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := nodes[0].JetStream().Stream(ctx, natsbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 20*time.Second, "both nodes' events in the stream", func() (bool, string) {
		info, err := st.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs == 2*each, fmt.Sprintf("%d messages", info.State.Msgs)
	})
}

// ClusterHealthy, what /readyz's cluster check reads: fine on every node
// of a whole cluster and on the two left when one goes (a majority keeps
// working); failing, saying why, on the one left alone.
func TestClusterHealthyFollowsTheMajority(t *testing.T) {
	nodes := natsbustest.Cluster(t, 3, nil)
	for i, s := range nodes {
		if err := s.ClusterHealthy(); err != nil {
			t.Fatalf("node%d in a whole cluster: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		testkit.WaitUntil(t, 20*time.Second, fmt.Sprintf("node%d healthy with one node gone", i), func() (bool, string) {
			err := nodes[i].ClusterHealthy()
			return err == nil && nodes[i].ClusterRoutes() == 1, fmt.Sprint(err, nodes[i].RoutedNodes())
		})
	}
	if err := nodes[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 20*time.Second, "node0 alone is not healthy", func() (bool, string) {
		err := nodes[0].ClusterHealthy()
		return err != nil && strings.Contains(err.Error(), "no route to any other node"), fmt.Sprint(err)
	})
}
