package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestNKeysAuth: beyond loopback with nkeys instead of a token; nkey users
// subscribe but cannot publish fake events; the server's own publisher can.
func TestNKeysAuth(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	if _, err := natsbus.Open(natsbus.Options{Listen: "0.0.0.0:0", NKeys: []string{"not-a-key"}}); err == nil || !strings.Contains(err.Error(), "public user nkey") {
		t.Fatalf("a bad nkey: %v", err)
	}
	if _, err := natsbus.Open(natsbus.Options{Token: "t", NKeys: []string{pub}}); err == nil {
		t.Fatal("token and nkeys together should be refused")
	}
	bus := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", NKeys: []string{pub}})
	if _, err := nats.Connect(bus.ClientURL(), nats.MaxReconnects(0)); err == nil {
		t.Fatal("connected without an nkey")
	}
	other, _ := nkeys.CreateUser()
	otherPub, _ := other.PublicKey()
	if _, err := nats.Connect(bus.ClientURL(), nats.Nkey(otherPub, other.Sign), nats.MaxReconnects(0)); err == nil {
		t.Fatal("connected with an nkey the server does not list")
	}
	errs := make(chan error, 1)
	nc, err := nats.Connect(bus.ClientURL(), nats.Nkey(pub, user.Sign),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect with the nkey: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("mcpjupyter.ev.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	l := openLog(t, t.TempDir())
	startPublisher(t, l, bus, natsbus.PublisherOptions{})
	if _, err := l.Append(context.Background(), kernelDrafts("k1", 1)...); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the nkey user receives events: %v", err)
	}
	_ = nc.Publish("mcpjupyter.ev.k1.kernel.k1.KernelDied", []byte(`{}`))
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("publish by an nkey user: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an nkey user published an event without a permissions violation")
	}
}

// TestJetStreamCatchUp: a subscriber away while events were published reads
// them all, in order, from the stream; the stream is bounded.
func TestJetStreamCatchUp(t *testing.T) {
	bus := openBus(t, natsbus.Options{JetStream: true, StoreDir: t.TempDir(), StreamMaxBytes: 64 << 10})
	l := openLog(t, t.TempDir())
	p := startPublisher(t, l, bus, natsbus.PublisherOptions{})
	evs, err := l.Append(context.Background(), kernelDrafts("k1", 20)...)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := bus.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, natsbus.StreamName, jetstream.ConsumerConfig{Durable: "late", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for len(seqs) < len(evs) {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("catch up after %v: %v", seqs, err)
		}
		n, _ := strconv.ParseUint(m.Headers().Get(natsbus.SeqHeader), 10, 64)
		seqs = append(seqs, n)
		_ = m.Ack()
	}
	if !slices.IsSorted(seqs) || seqs[0] != evs[0].Seq || seqs[len(seqs)-1] != evs[len(evs)-1].Seq {
		t.Fatalf("caught up %v", seqs)
	}
	// Bounded: 64 KiB holds far fewer than 2,000 events; the oldest go.
	big := kernelDrafts("k2", 2000)
	if _, err := l.Append(context.Background(), big...); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, fmt.Sprintf("the publisher publishes up to %d", l.Last()), func() (bool, string) {
		return p.Published() >= l.Last(), fmt.Sprint("published up to ", p.Published())
	})
	if err := bus.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, natsbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > 64<<10 || info.State.Msgs >= uint64(len(big)) {
		t.Fatalf("stream holds %d msgs, %d bytes: not bounded by 64 KiB", info.State.Msgs, info.State.Bytes)
	}
}

// TestSubscribersCannotEmptyTheStream: an outside client with the token
// reads the stream through a durable consumer but cannot purge, delete or
// reconfigure it.
func TestSubscribersCannotEmptyTheStream(t *testing.T) {
	bus := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", Token: "s3cret", JetStream: true, StoreDir: t.TempDir()})
	l := openLog(t, t.TempDir())
	p := startPublisher(t, l, bus, natsbus.PublisherOptions{})
	evs, err := l.Append(context.Background(), kernelDrafts("k1", 3)...)
	if err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, p, evs[len(evs)-1].Seq)
	nc, _ := outsideClient(t, bus.ClientURL(), nats.Token("s3cret"))
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, natsbus.StreamName, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("a token client creates a durable consumer: %v", err)
	}
	if m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Fatalf("a token client reads the stream: %v", err)
	} else {
		_ = m.Ack()
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if err := js.DeleteStream(short, natsbus.StreamName); err == nil {
		t.Fatal("a token client deleted the events stream")
	}
	s, err := js.Stream(ctx, natsbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(short); err == nil {
		t.Fatal("a token client purged the events stream")
	}
	own, err := bus.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ojs, _ := jetstream.New(own)
	os, err := ojs.Stream(ctx, natsbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Info(ctx); err != nil || info.State.Msgs != uint64(len(evs)) {
		t.Fatalf("the stream after the attempts: %+v %v, want %d messages", info, err, len(evs))
	}
}
