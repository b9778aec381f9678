package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus/natsbustest"
)

// TestRoutingOnAClusterAsServeBuildsIt: three nodes as `serve` starts them
// (natsbus.Options.Cluster: JetStream, route auth): a tool call and a
// tunnel from node0 reach node2; once node2 is gone, both fail at once
// naming it.
func TestRoutingOnAClusterAsServeBuildsIt(t *testing.T) {
	servers := natsbustest.Cluster(t, 3, nil)
	routers := make([]*natsbus.Router, len(servers))
	for i, s := range servers {
		r, err := natsbus.NewRouter(s, s.Node(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		routers[i] = r
	}
	if err := routers[2].ServeTools(func(_ context.Context, c natsbus.ToolCall) (natsbus.ToolReply, error) {
		return natsbus.ToolReply{Result: json.RawMessage(`{"content":[],"ran_as":"` + c.Principal.Name + `"}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	l, err := routers[2].ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() { // ends with the listener (deferred Close)
		c, err := l.Accept()
		if err == nil {
			_, err = io.Copy(c, c) // echo until the dialler closes
			_ = c.Close()
		}
		accepted <- err
	}()
	node2 := servers[2].Node()
	var rep natsbus.ToolReply
	deadline := time.Now().Add(10 * time.Second)
	for { // the route propagates node2's subscription
		rep, err = routers[0].CallTool(context.Background(), node2, natsbus.ToolCall{Principal: auth.Principal{Name: "alice", Scopes: auth.ScopeExecute}, Tool: "execute"})
		var ue *natsbus.NodeUnreachableError
		if err == nil || !errors.As(err, &ue) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || string(rep.Result) != `{"content":[],"ran_as":"alice"}` {
		t.Fatalf("routed call: %s %v", rep.Result, err)
	}
	c, err := routers[0].DialNode(context.Background(), node2)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("through the cluster's route")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q %v", got, err)
	}
	_ = c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("owner side: %v", err)
	}

	// node2 goes away: its subjects lose their interest across the routes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = routers[2].Close(ctx)
	testkitWait(t, func() bool {
		// NB: a call sent while node0 still saw node2's interest is lost
		// with it: each attempt has its own deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := routers[0].CallTool(ctx, node2, natsbus.ToolCall{Principal: auth.Admin(), Tool: "execute"})
		var ue *natsbus.NodeUnreachableError
		return errors.As(err, &ue) && ue.Node == node2
	})
	start := time.Now()
	_, err = routers[0].DialNode(context.Background(), node2)
	var ue *natsbus.NodeUnreachableError
	if !errors.As(err, &ue) || time.Since(start) > 2*time.Second {
		t.Fatalf("dial a gone node: %v after %s", err, time.Since(start))
	}
}

func testkitWait(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("not within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
