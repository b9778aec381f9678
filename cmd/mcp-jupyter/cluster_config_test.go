package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
)

// clusterArgs are the flags of a valid node; a case replaces or drops some.
func clusterArgs(over map[string]string) []string {
	flags := map[string]string{"--data-dir": "/tmp/unused", "--token": "agent-token-0123456789abcdef", "--node-name": "node-1",
		"--cluster-listen": "10.0.0.1:6222", "--cluster-routes": "nats://node-2:6222,nats://node-3:6222", "--cluster-token": "route-token"}
	for k, v := range over {
		if v == "<unset>" {
			delete(flags, k)
			continue
		}
		flags[k] = v
	}
	var args []string
	for k, v := range flags {
		args = append(args, k, v)
	}
	return args
}

// Every refusal of the cluster flags names the setting and what to give.
func TestParseClusterRefusals(t *testing.T) {
	t.Setenv(checkpointfile.SecretEnv, "cluster-secret")
	for _, tc := range []struct {
		name string
		over map[string]string
		want string
	}{
		{"no node name", map[string]string{"--node-name": "<unset>"}, "--node-name \"\": a cluster node needs a stable name"},
		{"node name upper-case", map[string]string{"--node-name": "Node1"}, "--node-name \"Node1\""},
		{"node name too long", map[string]string{"--node-name": strings.Repeat("a", 64)}, "at most 63"},
		{"node name ending in a dash", map[string]string{"--node-name": "node-"}, "--node-name \"node-\""},
		{"listen without port", map[string]string{"--cluster-listen": "10.0.0.1"}, "--cluster-listen \"10.0.0.1\": give host:port"},
		{"listen bad port", map[string]string{"--cluster-listen": "10.0.0.1:99999"}, "bad port"},
		{"route not nats", map[string]string{"--cluster-routes": "http://node-2:6222"}, "--cluster-routes: \"http://node-2:6222\" is not a route"},
		{"route without port", map[string]string{"--cluster-routes": "nats://node-2"}, "give nats://host:port"},
		{"replicas zero", map[string]string{"--cluster-replicas": "0"}, "--cluster-replicas \"0\": give a whole number from 1 to 5"},
		{"replicas six", map[string]string{"--cluster-replicas": "6"}, "from 1 to 5"},
		{"lease too short", map[string]string{"--cluster-lease": "500ms"}, "--cluster-lease \"500ms\": give a duration of at least 1s"},
		{"lease not a duration", map[string]string{"--cluster-lease": "ten"}, "--cluster-lease \"ten\""},
		{"tls cert without key", map[string]string{"--cluster-tls-cert": "c.pem"}, "go together"},
		{"tls without ca", map[string]string{"--cluster-tls-cert": "c.pem", "--cluster-tls-key": "k.pem"}, "go together"},
		{"no route token off loopback", map[string]string{"--cluster-token": "<unset>"}, "--cluster-token (MCP_CLUSTER_TOKEN) is required"},
		{"no route token, one route off loopback", map[string]string{"--cluster-token": "<unset>", "--cluster-listen": "127.0.0.1:6222",
			"--cluster-routes": "nats://127.0.0.1:6223,nats://10.0.0.2:6222"}, "--cluster-token (MCP_CLUSTER_TOKEN) is required"},
		// A kernel on the same host could join a token-less loopback cluster.
		{"no route token on loopback", map[string]string{"--cluster-token": "<unset>", "--cluster-listen": "127.0.0.1:6222",
			"--cluster-routes": "nats://127.0.0.1:6223,nats://localhost:6224"}, "--cluster-token (MCP_CLUSTER_TOKEN) is required"},
		{"anonymous nats subscribers", map[string]string{"--nats-listen": "127.0.0.1:4222", "--nats-insecure-loopback": "true"},
			"--nats-insecure-loopback cannot be used in cluster mode"},
		{"no agent token", map[string]string{"--token": "<unset>"}, "cluster mode needs --token (MCP_TOKEN)"},
		{"cluster flags without listen", map[string]string{"--cluster-listen": "<unset>"}, "need --cluster-listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("serve", clusterArgs(tc.over))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	t.Run("no checkpoint secret", func(t *testing.T) {
		t.Setenv(checkpointfile.SecretEnv, "")
		if _, err := parseConfig("serve", clusterArgs(nil)); err == nil || !strings.Contains(err.Error(), "cluster mode needs "+checkpointfile.SecretEnv) {
			t.Fatalf("error %v", err)
		}
	})
}

// What a valid node parses to; replicas are capped at the nodes expected;
// no flag is a single server.
func TestParseClusterAccepts(t *testing.T) {
	t.Setenv(checkpointfile.SecretEnv, "cluster-secret")
	cfg, err := parseConfig("serve", clusterArgs(map[string]string{"--cluster-replicas": "5", "--cluster-lease": "3s"}))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if !c.Enabled() || c.Node != "node-1" || c.Name != "mcp-jupyter" || len(c.Routes) != 2 || c.Replicas != 3 || c.Lease != 3*time.Second || c.Token != "route-token" {
		t.Fatalf("parsed %+v", c)
	}
	if n := c.natsCluster(); n == nil || n.Node != "node-1" || n.Replicas != 3 || n.Listen != "10.0.0.1:6222" {
		t.Fatalf("natsbus options %+v", n)
	}
	single, err := parseConfig("serve", []string{"--data-dir", "/tmp/unused"})
	if err != nil || single.Cluster.Enabled() || single.Cluster.natsCluster() != nil {
		t.Fatalf("no cluster flags: %+v %v", single.Cluster, err)
	}
}
