package natsbus_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// jsClusterConns starts n routed JetStream servers (startJSCluster,
// routecut_test.go) and returns them with a client connection to each.
func jsClusterConns(t *testing.T, n int) ([]*server.Server, []*nats.Conn) {
	t.Helper()
	c := startJSCluster(t, n)
	var conns []*nats.Conn
	for _, s := range c.servers {
		nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		conns = append(conns, nc)
	}
	return c.servers, conns
}

// openR3 opens the checkpoint store with 3 replicas once the cluster has
// elected its JetStream meta leader (retried until then).
func openR3(t *testing.T, nc *nats.Conn) *natsbus.Checkpoints {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := natsbus.OpenCheckpoints(ctx, js, 3)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("open the R3 checkpoint store: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCheckpointObjectsAcrossACluster: on three routed JetStream servers a
// checkpoint put through node 0 is got through node 1; with node 0 gone the
// other two (a quorum) still serve it; with one node left (no quorum) a
// put fails within its deadline instead of hanging — the case a save
// reports as "saved on this node only".
func TestCheckpointObjectsAcrossACluster(t *testing.T) {
	servers, conns := jsClusterConns(t, 3)
	c0 := openR3(t, conns[0])
	dir := t.TempDir()
	src, want := randomFile(t, dir, "src", 3<<20+5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c0.Put(ctx, "alice~friday", src, map[string]string{"node": "n0"}); err != nil {
		t.Fatal(err)
	}
	c1, c2 := openR3(t, conns[1]), openR3(t, conns[2])
	dst := filepath.Join(dir, "dst")
	if err := c1.Get(ctx, "alice~friday", dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Fatal("node 1 got other bytes than node 0 put")
	}

	servers[0].Shutdown()
	servers[0].WaitForShutdown()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = os.Remove(dst)
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		err := c2.Get(gctx, "alice~friday", dst)
		gcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with node 0 gone, node 2 cannot get the checkpoint: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Fatal("node 2 got other bytes with node 0 gone")
	}

	servers[1].Shutdown()
	servers[1].WaitForShutdown()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	began := time.Now()
	if err := c2.Put(pctx, "alice~monday", src, nil); err == nil {
		t.Fatal("a put without a quorum succeeded")
	}
	if took := time.Since(began); took > 8*time.Second {
		t.Fatalf("a put without a quorum took %s, past its 5 s deadline", took)
	}
}
