package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
)

// clusterConfig is the cluster mode's settings (--cluster-*, --node-name):
// several servers acting as one over a NATS cluster (docs/cluster.md).
// The zero value is a single server.
type clusterConfig struct {
	// Node is this server's stable name in the cluster (--node-name),
	// stamped as Node on the events it writes.
	Node string
	// Listen is host:port for NATS routes (--cluster-listen); set, it turns
	// cluster mode on.
	Listen string
	// Routes are the other nodes' routes, nats://host:port (--cluster-routes).
	Routes []string
	// Name is the NATS cluster's name, the same on every node.
	Name string
	// Token authenticates routes (--cluster-token).
	Token string
	// TLSCert, TLSKey and TLSCA put routes under TLS, peers verified
	// against TLSCA.
	TLSCert, TLSKey, TLSCA string
	// Replicas is the JetStream replication of the cluster's stream,
	// buckets and object store, at most the nodes expected (1 + routes).
	Replicas int
	// Lease is how long a kernel's ownership lasts without a renewal.
	Lease time.Duration
}

// Enabled reports whether the server runs as a node of a cluster.
func (c clusterConfig) Enabled() bool { return c.Listen != "" }

// NodeName is this node's name in cluster mode, "" for a single server
// (whose log stamps its default node name, changing with each process, and
// whose whole log is its own).
func (c clusterConfig) NodeName() string {
	if !c.Enabled() {
		return ""
	}
	return c.Node
}

var nodeNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// clusterSettings are the cluster mode's flags (appended to settings).
var clusterSettings = []setting{
	{"node-name", "MCP_NODE_NAME", "", "this server's stable name in a cluster (lower-case letters, digits and '-', at most 63; required with --cluster-listen; under Kubernetes the pod's name); stamped on its events"},
	{"cluster-listen", "MCP_CLUSTER_LISTEN", "", "host:port the embedded NATS server accepts other nodes' routes on; setting it makes this server a node of a cluster (docs/cluster.md)"},
	{"cluster-routes", "MCP_CLUSTER_ROUTES", "", "comma-separated routes of the other nodes, e.g. nats://node-1:6222,nats://node-2:6222 (this node's own route may be listed)"},
	{"cluster-name", "MCP_CLUSTER_NAME", "mcp-jupyter", "the NATS cluster's name, the same on every node"},
	{"cluster-token", "MCP_CLUSTER_TOKEN", "", "secret every node presents on its routes (required, loopback clusters included); set it from a secret store"},
	{"cluster-tls-cert", "MCP_CLUSTER_TLS_CERT", "", "certificate (PEM) this node presents on routes; with --cluster-tls-key and --cluster-tls-ca, routes use TLS and peers are verified"},
	{"cluster-tls-key", "MCP_CLUSTER_TLS_KEY", "", "private key (PEM) of --cluster-tls-cert"},
	{"cluster-tls-ca", "MCP_CLUSTER_TLS_CA", "", "CA (PEM) the other nodes' route certificates must be signed by"},
	{"cluster-replicas", "MCP_CLUSTER_REPLICAS", "3", "JetStream replicas of the cluster's history stream, ownership buckets and checkpoint store (at most the nodes: 1 + routes)"},
	{"cluster-lease", "MCP_CLUSTER_LEASE", "10s", "how long a node owns a kernel without renewing (it renews every third of it); another node takes the kernel over once it lapsed"},
}

// parseCluster reads the cluster settings; token is the MCP token
// (--token), which every node must share.
func parseCluster(get func(string) string, token string) (clusterConfig, error) {
	c := clusterConfig{Node: get("node-name"), Listen: get("cluster-listen"), Name: get("cluster-name"), Token: get("cluster-token"),
		TLSCert: get("cluster-tls-cert"), TLSKey: get("cluster-tls-key"), TLSCA: get("cluster-tls-ca")}
	for _, r := range splitList(get("cluster-routes")) {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats" || u.Hostname() == "" || u.Port() == "" {
			return c, fmt.Errorf("--cluster-routes: %q is not a route: give nats://host:port, comma-separated", r)
		}
		c.Routes = append(c.Routes, r)
	}
	var err error
	if c.Replicas, err = strconv.Atoi(get("cluster-replicas")); err != nil || c.Replicas < 1 || c.Replicas > 5 {
		return c, fmt.Errorf("--cluster-replicas %q: give a whole number from 1 to 5 (JetStream's limit)", get("cluster-replicas"))
	}
	if c.Lease, err = time.ParseDuration(get("cluster-lease")); err != nil || c.Lease < time.Second {
		return c, fmt.Errorf("--cluster-lease %q: give a duration of at least 1s, such as 10s", get("cluster-lease"))
	}
	if !c.Enabled() {
		if c.Node != "" || len(c.Routes) > 0 || c.Token != "" || c.TLSCert != "" {
			return c, errors.New("--node-name, --cluster-routes, --cluster-token and --cluster-tls-* need --cluster-listen (MCP_CLUSTER_LISTEN): without it the server runs alone")
		}
		return c, nil
	}
	if len(c.Routes) == 0 {
		return c, errors.New("--cluster-listen needs --cluster-routes (MCP_CLUSTER_ROUTES): a cluster's JetStream needs the other nodes' routes; for one server alone leave --cluster-listen unset")
	}
	if !nodeNamePattern.MatchString(c.Node) {
		return c, fmt.Errorf("--node-name %q: a cluster node needs a stable name of lower-case letters, digits and '-' (at most 63), e.g. the pod's name", c.Node)
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return c, fmt.Errorf("--cluster-listen %q: give host:port, e.g. 0.0.0.0:6222", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return c, fmt.Errorf("--cluster-listen %q: bad port", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") || (c.TLSCert != "" && c.TLSCA == "") {
		return c, errors.New("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together: give all three for TLS routes, or none")
	}
	// Even a loopback cluster needs the token: a kernel on the same host
	// could otherwise join as a route and read (and forge) everything.
	if c.Token == "" {
		return c, fmt.Errorf("--cluster-token (MCP_CLUSTER_TOKEN) is required: whoever reaches %s, a kernel on this host included, could otherwise join the cluster and read every event; set the same random secret on every node, e.g. openssl rand -hex 32", c.Listen)
	}
	if token == "" {
		return c, errors.New("cluster mode needs --token (MCP_TOKEN), the same on every node: an agent's credential must work on whichever node it reaches")
	}
	if os.Getenv(checkpointfile.SecretEnv) == "" {
		return c, fmt.Errorf("cluster mode needs %s, the same on every node: a checkpoint saved on one node is verified on the node that restores it", checkpointfile.SecretEnv)
	}
	if max := 1 + len(c.Routes); c.Replicas > max {
		c.Replicas = max
	}
	return c, nil
}
