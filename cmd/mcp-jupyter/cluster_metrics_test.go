package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestClusterWorkMetricsMoveWithWork: on three real cluster cores, what
// the cluster parts do moves their /metrics counters: node0's records
// published and confirmed, imported on node1; an undecodable history
// message counted corrupt; a lease renewal failing once node0 is alone
// (no JetStream quorum) counted.
func TestClusterWorkMetricsMoveWithWork(t *testing.T) {
	cfgs := clusterConfigs(t, 3, "--cluster-lease", "3s")
	cores := make([]*core, 3)
	errs := make(chan error, 3)
	for i := range cores {
		cores[i] = newCore(cfgs[i], discard())
		go func() { errs <- cores[i].open(context.Background()) }() // NB: ends with open (bounded by clusterWait)
	}
	closed := make([]bool, 3)
	t.Cleanup(func() {
		for i, c := range cores {
			if !closed[i] {
				_ = c.close(context.Background())
			}
		}
	})
	for range cores {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(120 * time.Second):
			t.Fatal("the cores did not open")
		}
	}
	n0, n1 := cores[0], cores[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A record of node0: published, confirmed up to its sequence,
	// imported by node1.
	pub0, imp1 := gauge(t, n0, "mcp_jupyter_cluster_history_published_total"), gauge(t, n1, "mcp_jupyter_cluster_history_imported_total")
	evs, err := n0.log.Append(ctx, events.Draft{Stream: events.KernelStream("k-metrics"), Kernel: "k-metrics",
		Payload: events.KernelLost{KernelID: "k-metrics", Reason: "metrics test"}})
	if err != nil {
		t.Fatal(err)
	}
	seq := float64(evs[0].Seq)
	testkit.WaitUntil(t, 30*time.Second, "node0 publishes and confirms its record, node1 imports it", func() (bool, string) {
		p, c, i := gauge(t, n0, "mcp_jupyter_cluster_history_published_total"), gauge(t, n0, "mcp_jupyter_cluster_history_confirmed_sequence"),
			gauge(t, n1, "mcp_jupyter_cluster_history_imported_total")
		return p > pub0 && c >= seq && i > imp1, fmt.Sprintf("published %v (was %v), confirmed %v (record %v), imported on node1 %v (was %v)", p, pub0, c, seq, i, imp1)
	})

	// An undecodable message on the history stream.
	if gauge(t, n1, "mcp_jupyter_cluster_history_import_corrupt_total") != 0 {
		t.Fatal("corrupt records counted before any was sent")
	}
	if _, err := n0.nats.JetStream().Publish(ctx, natsbus.HistorySubject("ghost"), []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "node1 counts the corrupt message", func() (bool, string) {
		v := gauge(t, n1, "mcp_jupyter_cluster_history_import_corrupt_total")
		return v == 1, fmt.Sprint(v)
	})

	// A lease node0 cannot renew: the others gone, no quorum.
	if _, err := n0.own.owners.Claim(ctx, "k-metrics"); err != nil {
		t.Fatal(err)
	}
	if v := gauge(t, n0, "mcp_jupyter_cluster_lease_renew_failures_total"); v != 0 {
		t.Fatalf("renewal failures before any: %v", v)
	}
	for _, i := range []int{1, 2} {
		if err := cores[i].close(ctx); err != nil {
			t.Logf("close node%d: %v", i, err)
		}
		closed[i] = true
	}
	testkit.WaitUntil(t, 30*time.Second, "node0 counts a failed renewal", func() (bool, string) {
		v := gauge(t, n0, "mcp_jupyter_cluster_lease_renew_failures_total")
		return v > 0, fmt.Sprint(v)
	})
}
