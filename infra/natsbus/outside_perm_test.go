package natsbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The outside clients of these tests hold the outside token (--nats-token):
// they may read the events, and nothing of the cluster's JetStream state.

func openOutsideJS(t *testing.T) (*Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := Open(Options{Listen: "127.0.0.1:0", Token: "outside", JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	out, err := nats.Connect(s.ClientURL(), nats.Token("outside"), nats.MaxReconnects(0),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the violations are expected
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	ojs, err := jetstream.New(out)
	if err != nil {
		t.Fatal(err)
	}
	return s, out, ojs
}

// refusedCtx bounds an operation the server refuses: a refused publish
// gets no reply, so the request only ends by its deadline.
func refusedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// An outside client cannot create a stream that republishes onto a node's
// tool subject: that would be a tool call under any principal it writes.
func TestOutsideClientCannotForgeAToolCallByRepublish(t *testing.T) {
	s, out, ojs := openOutsideJS(t)
	r := openRouter(t, s, "a")
	ran := make(chan ToolCall, 1)
	if err := r.ServeTools(func(_ context.Context, c ToolCall) (ToolReply, error) {
		ran <- c
		return ToolReply{Result: []byte(`{"content":[]}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err := ojs.CreateStream(refusedCtx(t), jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.x"}, NoAck: true,
		RePublish: &jetstream.RePublish{Source: "evil.x", Destination: ToolSubject("a")}})
	if err == nil {
		t.Fatal("an outside client created a stream republishing onto a node's tool subject")
	}
	_ = out.PublishMsg(&nats.Msg{Subject: "evil.x", Header: nats.Header{hdrTool: {"execute"}, hdrPrincipal: {`{"Name":"admin","Scopes":255}`}}, Data: []byte(`{"code":"pwn"}`)})
	_ = out.Flush()
	select {
	case c := <-ran:
		t.Fatalf("a forged call ran as %+v: %s", c.Principal, c.Args)
	case <-time.After(time.Second):
	}
}

// An outside client can neither capture the routed calls and tunnels in a
// stream of its own nor read them, the server's JetStream replies, the
// leases, checkpoints or history by subscribing to everything.
func TestOutsideClientCannotCaptureTheCluster(t *testing.T) {
	s, out, ojs := openOutsideJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ojs.CreateStream(refusedCtx(t), jetstream.StreamConfig{Name: "SPY", Subjects: []string{"mcpjupyter.node.>", "mcpjupyter.tunnel.>"}, NoAck: true}); err == nil {
		t.Fatal("an outside client created a stream capturing the routed calls and tunnels")
	}
	spy, err := out.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}

	r := openRouter(t, s, "a")
	if err := r.ServeTools(func(_ context.Context, c ToolCall) (ToolReply, error) {
		return ToolReply{Result: []byte(`{"content":[]}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CallTool(ctx, "a", ToolCall{Principal: auth.Admin(), Tool: "execute", Args: []byte(`{"code":"SECRET"}`)}); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(s.Conn())
	if err := EnsureHistoryStream(ctx, js, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, HistorySubject("a"), []byte("print('SECRET')")); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: OwnersBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k1", []byte(`{"node":"a","secret":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: CheckpointBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "ck", []byte("SECRET-CHECKPOINT")); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.GetBytes(ctx, "ck"); err != nil {
		t.Fatal(err)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := spy.NextMsg(300 * time.Millisecond)
		if err != nil {
			break
		}
		if !strings.HasPrefix(m.Subject, "mcpjupyter.ev.") {
			t.Fatalf("an outside subscriber read %s: %q", m.Subject, m.Data)
		}
	}
}

// An outside client cannot read or write the leases, the checkpoints or
// the history, nor change or delete their streams.
func TestOutsideClientCannotTouchLeasesCheckpointsHistory(t *testing.T) {
	s, out, ojs := openOutsideJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, _ := jetstream.New(s.Conn())
	if err := EnsureHistoryStream(ctx, js, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, HistorySubject("a"), []byte("print('SECRET')")); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: OwnersBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k1", []byte(`{"node":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: CheckpointBucket}); err != nil {
		t.Fatal(err)
	}

	if _, err := ojs.KeyValue(refusedCtx(t), OwnersBucket); err == nil {
		t.Error("an outside client bound the owners bucket")
	}
	// Without the bucket's API, a bare publish onto a lease key.
	_ = out.Publish("$KV."+OwnersBucket+".k1", []byte(`{"node":"evil"}`))
	_ = out.Flush()
	if _, err := ojs.ObjectStore(refusedCtx(t), CheckpointBucket); err == nil {
		t.Error("an outside client bound the checkpoint store")
	}
	_ = out.Publish("$O."+CheckpointBucket+".C.x", []byte("forged"))
	if _, err := ojs.Stream(refusedCtx(t), HistoryStream); err == nil {
		t.Error("an outside client read the history stream's info")
	}
	if err := ojs.DeleteStream(refusedCtx(t), HistoryStream); err == nil {
		t.Error("an outside client deleted the history stream")
	}
	if err := ojs.DeleteStream(refusedCtx(t), "KV_"+OwnersBucket); err == nil {
		t.Error("an outside client deleted the owners bucket")
	}
	_ = out.Publish(HistorySubject("b"), []byte("forged"))
	_ = out.Flush()

	e, err := kv.Get(ctx, "k1")
	if err != nil || string(e.Value()) != `{"node":"a"}` || e.Revision() != 1 {
		t.Fatalf("the lease is now %v (%v)", e, err)
	}
	hs, err := js.Stream(ctx, HistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := hs.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("history holds %+v (%v), want the one message", info, err)
	}
	if info, err := js.Stream(ctx, "OBJ_"+CheckpointBucket); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Fatalf("checkpoint store %v", err)
	}
}
