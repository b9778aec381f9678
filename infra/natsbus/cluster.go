package natsbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions make the embedded server a node of a NATS cluster: routes
// to the other nodes and JetStream on every node, replicated with Raft
// (docs/cluster.md). Nil: a single server.
type ClusterOptions struct {
	// Name is the NATS cluster's name, the same on every node.
	Name string
	// Node is this server's stable name (nats-server's server_name): the
	// JetStream peers know each other by it, so it must survive restarts.
	Node string
	// Listen is host:port the routes of the other nodes connect to.
	Listen string
	// Routes are the other nodes' routes, nats://host:port (this node's
	// own route may be listed: nats-server ignores a route to itself).
	Routes []string
	// Token is the secret every node presents on its routes; a route
	// without it is refused. "" leaves routes unauthenticated (loopback
	// tests only: the command line requires it otherwise).
	Token string
	// TLSCert, TLSKey and TLSCA (PEM files) put the routes under TLS, both
	// ways: each node presents its certificate and verifies its peer's
	// against TLSCA. All three or none.
	TLSCert, TLSKey, TLSCA string
	// Replicas is the JetStream replication of what the cluster keeps
	// (streams, buckets, object store); at most 1 + len(Routes), which
	// Replicas caps it to.
	Replicas int
}

// clusterMaxPayload is max_payload in cluster mode: a routed tool call
// carries up to 1 MiB of code and a reply up to the output budget, over
// the routes, with room to spare. NB: nats-server warns above 8 MiB.
const clusterMaxPayload = 8 << 20

// routeUser is the user name routes present with the cluster token as
// password (nats-server's cluster authorization is user and password).
const routeUser = "mcp-jupyter"

var serverNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// clusterServerOptions puts the cluster's settings into so.
func clusterServerOptions(c *ClusterOptions, so *server.Options) error {
	if !serverNamePattern.MatchString(c.Node) {
		return fmt.Errorf("start nats cluster: node name %q: give a stable name of letters, digits, '-' or '_' (at most 63)", c.Node)
	}
	if c.Name == "" {
		return errors.New("start nats cluster: the cluster needs a name, the same on every node")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("start nats cluster: %d replicas: give 1 to 5 (JetStream's limit)", c.Replicas)
	}
	host, port, err := splitListen(c.Listen)
	if err != nil {
		return fmt.Errorf("start nats cluster: %w", err)
	}
	so.ServerName = c.Node
	so.MaxPayload = clusterMaxPayload
	// NB: nats-server retries an explicit route for ever, every second (a
	// node restarting, a network cut healing): no backoff, so a node back
	// rejoins within a second.
	so.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	if c.Token != "" {
		so.Cluster.Username, so.Cluster.Password = routeUser, c.Token
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats" || u.Hostname() == "" || u.Port() == "" {
			return fmt.Errorf("start nats cluster: route %q: give nats://host:port", r)
		}
		if c.Token != "" {
			// NB: the route presents the token on connect (sendRouteConnect
			// reads the URL's user info).
			u.User = url.UserPassword(routeUser, c.Token)
		}
		so.Routes = append(so.Routes, u)
	}
	if c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" {
		tc, err := RouteTLS(c.TLSCert, c.TLSKey, c.TLSCA)
		if err != nil {
			return err
		}
		so.Cluster.TLSConfig, so.Cluster.TLSTimeout = tc, 5
	}
	return nil
}

// RouteTLS is the routes' TLS: this node's certificate, presented to
// peers and accepted from them only when signed by the CA (routes are
// both client and server). The error says which file is wrong.
func RouteTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("start nats cluster: TLS routes need a certificate, its key and the CA: give all three or none")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("start nats cluster: load the route certificate %s and key %s: %w", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("start nats cluster: read the route CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("start nats cluster: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}, nil
}

// Node returns this server's node name ("" for a single server).
func (s *Server) Node() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.Node
}

// Replicas is the JetStream replication for what the cluster keeps: the
// configured replicas, at most the nodes expected (1 + routes); 1 for a
// single server.
func (s *Server) Replicas() int {
	if s.cluster == nil {
		return 1
	}
	return min(s.cluster.Replicas, 1+len(s.cluster.Routes))
}

// JetStream returns the JetStream API on the server's own connection, nil
// when JetStream is off (a single server without Options.JetStream).
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// Clustered reports whether the server is a node of a cluster.
func (s *Server) Clustered() bool { return s.cluster != nil }

// ClusterRoutes counts the other nodes this node has a route to now (a
// node is counted once, however many pooled connections link them).
func (s *Server) ClusterRoutes() int { return len(s.RoutedNodes()) }

// RoutedNodes are the names of the nodes this node has a route to now,
// sorted.
func (s *Server) RoutedNodes() []string {
	if s.cluster == nil {
		return nil
	}
	rz, err := s.ns.Routez(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes {
		if !slices.Contains(names, r.RemoteName) {
			names = append(names, r.RemoteName)
		}
	}
	slices.Sort(names)
	return names
}

// ClusterState is what WaitClusterReady waits for, as it stands now.
type ClusterState struct {
	// Nodes is how many nodes this one sees: itself and those it has a
	// route to.
	Nodes int
	// Want is how many it needs: Replicas.
	Want int
	// Leader is the JetStream meta leader's node name ("" while none is
	// elected or known).
	Leader string
}

// Ready reports whether JetStream can create what the cluster keeps with
// Replicas replicas: enough nodes and a meta leader.
func (st ClusterState) Ready() bool { return st.Nodes >= st.Want && st.Leader != "" }

// String says what is missing, for /readyz.
func (st ClusterState) String() string {
	switch {
	case st.Nodes < st.Want:
		return fmt.Sprintf("%d of %d nodes connected (the routes to the others are not up: are they started, is --cluster-routes right, same --cluster-token?)", st.Nodes, st.Want)
	case st.Leader == "":
		return fmt.Sprintf("%d nodes connected, no JetStream meta leader elected yet", st.Nodes)
	}
	return fmt.Sprintf("%d nodes connected, JetStream meta leader %s", st.Nodes, st.Leader)
}

// ClusterState reads the cluster as this node sees it now.
func (s *Server) ClusterState() ClusterState {
	st := ClusterState{Nodes: 1, Want: s.Replicas()}
	if s.cluster == nil {
		return st
	}
	st.Nodes += s.ClusterRoutes()
	if jsi, err := s.ns.Jsz(&server.JSzOptions{}); err == nil && jsi.Meta != nil {
		st.Leader = jsi.Meta.Leader
	}
	return st
}

// WaitClusterReady returns once the cluster can keep data with Replicas
// replicas (Replicas nodes connected, a JetStream meta leader elected and
// answering), then creates the events stream when Options.JetStream asked
// for it (it needs the peers). Every stream, bucket and object store of
// the cluster is created after it. A single server returns at once.
func (s *Server) WaitClusterReady(ctx context.Context) error {
	if s.cluster == nil {
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var st ClusterState
	for {
		if st = s.ClusterState(); st.Ready() && s.metaAnswers(ctx) && s.placeable(ctx) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the nats cluster (%s): %w", st, ctx.Err())
		case <-t.C:
		}
	}
	return s.createEventsStream(ctx)
}

// metaAnswers reports whether the JetStream meta leader answered a
// request of this node (the names of the streams: only the leader answers
// it). NB: right after the routes form, the interest in this connection's
// reply inbox may not have reached the leader yet, and its answer is lost:
// a request answered is what proves the way back, so that the creations
// after WaitClusterReady are not lost the same way.
func (s *Server) metaAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	names := s.js.StreamNames(ctx)
	for range names.Name() {
	}
	return names.Err() == nil
}

// placeable reports whether the meta leader can place a stream of
// Replicas replicas now, by creating (and deleting) a tiny one of this
// node's. NB: routes up and a leader elected are not enough: a node whose
// JetStream joined the meta group after the election is not selectable
// until the leader has its first statistics, and every creation meanwhile
// fails with "no suitable peers for placement" (err_code 10005).
func (s *Server) placeable(ctx context.Context) bool {
	if s.Replicas() <= 1 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	name := "MCPJUPYTER_PLACEMENT_" + s.cluster.Node
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"mcpjupyter.placement." + s.cluster.Node},
		Storage: jetstream.MemoryStorage, Replicas: s.Replicas(), MaxMsgs: 1, MaxBytes: 1024})
	if err != nil {
		return false
	}
	_ = s.js.DeleteStream(ctx, name) // NB: a leftover is harmless (1 KiB, memory) and replaced at the next start
	return true
}

// createEventsStream creates the events stream once, if Options.JetStream
// asked for it (a failed creation is tried again by the next call).
func (s *Server) createEventsStream(ctx context.Context) error {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.eventsStream == nil {
		return nil
	}
	if err := s.createStream(ctx, s.eventsStream.maxBytes, s.eventsStream.maxMsgSize); err != nil {
		return err
	}
	s.eventsStream = nil
	return nil
}

// routeAddr is the address the routes listen on ("" for a single
// server): what the other nodes' --cluster-routes name.
func (s *Server) routeAddr() string {
	if s.cluster == nil {
		return ""
	}
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// RouteURL is nats://host:port of this node's route listener, as the
// other nodes' routes name it ("" for a single server).
func (s *Server) RouteURL() string {
	if a := s.routeAddr(); a != "" {
		return "nats://" + a
	}
	return ""
}

// JetStream is the JetStream API (nats.go's jetstream package), named
// here so that code outside infra can hold the handle without importing
// NATS.
type JetStream = jetstream.JetStream

// ClusterHealthy says whether this node is in working order in its
// cluster now: routes to the other nodes up, a JetStream meta leader
// known and this node current with it. Unlike WaitClusterReady, a node
// down among several does not fail it: what the cluster keeps needs a
// majority of its replicas, not all. Nil for a single server.
func (s *Server) ClusterHealthy() error {
	if s.cluster == nil {
		return nil
	}
	routes := s.ClusterRoutes()
	if routes == 0 && s.Replicas() > 1 {
		return fmt.Errorf("no route to any other node (are they up, is this node cut off from them?); routes: %d configured", len(s.cluster.Routes))
	}
	st := s.ClusterState()
	if st.Leader == "" {
		return fmt.Errorf("%d of the nodes connected, no JetStream meta leader known (no majority of the cluster can be reached)", st.Nodes)
	}
	if !s.ns.JetStreamIsCurrent() {
		return fmt.Errorf("JetStream on this node is not current with the meta leader %s (catching up, or cut off)", st.Leader)
	}
	return nil
}
