package natsbus

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The tunnels one node holds are bounded (each may buffer TunnelWindow
// bytes): at most MaxTunnelsPerNode with one other node, MaxTunnels in all.
// A refused dial says which bound; closing a tunnel frees its place.
func TestTunnelsAreBoundedPerNodeAndInAll(t *testing.T) {
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	b := openRouter(t, s, "b")
	l, err := b.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // b's server: each accepted end closes at the dialler's FIN
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(r *Router, n int) []net.Conn {
		t.Helper()
		var cs []net.Conn
		for i := range n {
			c, err := r.DialNode(ctx, "b")
			if err != nil {
				t.Fatalf("node %s's tunnel %d to b: %v", r.node, i+1, err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	a := openRouter(t, s, "a")
	fromA := dial(a, MaxTunnelsPerNode)
	if _, err := a.DialNode(ctx, "b"); err == nil || !strings.Contains(err.Error(), "MaxTunnelsPerNode") {
		t.Fatalf("tunnel %d from a to b: %v, want refused by MaxTunnelsPerNode", MaxTunnelsPerNode+1, err)
	}
	c := openRouter(t, s, "c")
	dial(c, MaxTunnels-MaxTunnelsPerNode) // another node still gets its share
	d := openRouter(t, s, "d")
	if _, err := d.DialNode(ctx, "b"); err == nil || !strings.Contains(err.Error(), "MaxTunnels") {
		t.Fatalf("tunnel %d to b: %v, want refused by MaxTunnels", MaxTunnels+1, err)
	}
	if err := fromA[0].Close(); err != nil {
		t.Fatal(err)
	}
	// NB: b frees the place once a's FIN arrived.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := d.DialNode(ctx, "b")
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed tunnel did not free its place: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
