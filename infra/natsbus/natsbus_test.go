package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func openLog(t *testing.T, dir string) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(dir, eventlog.Options{Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func openBus(t testing.TB, opts natsbus.Options) *natsbus.Server {
	t.Helper()
	s, err := natsbus.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func startPublisher(t *testing.T, l *eventlog.Log, bus natsbus.Bus, opts natsbus.PublisherOptions) *natsbus.Publisher {
	t.Helper()
	p := natsbus.NewPublisher(l, bus, opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func subscribe(t *testing.T, s *natsbus.Server, subject string) *nats.Subscription {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the subscription is active on return
		t.Fatal(err)
	}
	return sub
}

func kernelDrafts(kernel string, n int) []events.Draft {
	var ds []events.Draft
	ds = append(ds, events.Draft{Stream: events.KernelStream(kernel), Kernel: kernel,
		Payload: events.KernelStarted{KernelID: kernel, Spec: "python3"}})
	for i := range n {
		x := fmt.Sprintf("%s-x%d", kernel, i)
		ds = append(ds, events.Draft{Stream: events.ExecutionStream(x), Kernel: kernel,
			Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "1+1"}})
	}
	return ds
}

func next(t *testing.T, sub *nats.Subscription) events.Event {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	var e events.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil {
		t.Fatalf("decode %s: %v", msg.Data, err)
	}
	if got := msg.Header.Get(natsbus.SeqHeader); got != strconv.FormatUint(e.Seq, 10) {
		t.Fatalf("%s header %q, event seq %d", natsbus.SeqHeader, got, e.Seq)
	}
	if msg.Subject != events.Subject(e) {
		t.Fatalf("subject %s, want %s", msg.Subject, events.Subject(e))
	}
	return e
}

func TestPublishesDurableEventsInOrder(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{})
	all := subscribe(t, bus, "mcpjupyter.ev.>")
	startPublisher(t, l, bus, natsbus.PublisherOptions{})
	evs, err := l.Append(context.Background(), kernelDrafts("k1", 20)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range evs {
		got := next(t, all)
		if got.Seq != want.Seq || got.Type != want.Type || got.Stream != want.Stream {
			t.Fatalf("got event %d %s on %s, want %d %s on %s", got.Seq, got.Type, got.Stream, want.Seq, want.Type, want.Stream)
		}
		if want.Type == events.TypeExecutionQueued {
			if p, ok := got.Payload.(events.ExecutionQueued); !ok || p.Code != "1+1" {
				t.Fatalf("payload of %d = %#v", got.Seq, got.Payload)
			}
		}
	}
}

func TestWildcardSelectsOneKernel(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{})
	k2 := subscribe(t, bus, "mcpjupyter.ev.k2.>")
	finished := subscribe(t, bus, "mcpjupyter.ev.*.kernel.*.KernelStarted")
	startPublisher(t, l, bus, natsbus.PublisherOptions{})
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, err := l.Append(context.Background(), kernelDrafts(k, 3)...); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if e := next(t, k2); e.Kernel != "k2" {
			t.Fatalf("k2 subscription got an event of %q", e.Kernel)
		}
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if e := next(t, finished); e.Type != events.TypeKernelStarted || e.Kernel != k {
			t.Fatalf("KernelStarted subscription got %s of %s", e.Type, e.Kernel)
		}
	}
	if msg, err := k2.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("k2 subscription got an extra message on %s", msg.Subject)
	}
}

func TestSlowSubscriberDoesNotSlowTheLog(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{})
	stuck := subscribe(t, bus, "mcpjupyter.ev.>")
	if err := stuck.SetPendingLimits(10, 1<<20); err != nil { // never read: overflows at once
		t.Fatal(err)
	}
	pub := startPublisher(t, l, bus, natsbus.PublisherOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last uint64
	for range 50 {
		evs, err := l.Append(ctx, kernelDrafts("k1", 20)...)
		if err != nil {
			t.Fatal(err)
		}
		last = evs[len(evs)-1].Seq
	}
	for pub.Published() < last { // the publisher keeps up although nobody reads
		select {
		case <-ctx.Done():
			t.Fatalf("published %d of %d", pub.Published(), last)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestCursorResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	bus := openBus(t, natsbus.Options{})
	pub := natsbus.NewPublisher(l, bus, natsbus.PublisherOptions{Cursor: "natsbus"})
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Append(context.Background(), kernelDrafts("k1", 5)...)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, fmt.Sprintf("the publisher publishes up to %d", evs[len(evs)-1].Seq), func() (bool, string) {
		return pub.Published() >= evs[len(evs)-1].Seq, fmt.Sprint("published up to ", pub.Published())
	})
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// NB: subscribed once the first publisher's messages are through the
	// server, so the first message seen is the restarted publisher's first.
	if err := bus.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, bus, "mcpjupyter.ev.>")
	more, err := l.Append(context.Background(), kernelDrafts("k2", 2)...)
	if err != nil {
		t.Fatal(err)
	}
	startPublisher(t, l, bus, natsbus.PublisherOptions{Cursor: "natsbus"})
	if e := next(t, sub); e.Seq != more[0].Seq {
		t.Fatalf("restarted publisher began at %d, want %d", e.Seq, more[0].Seq)
	}
}

// TestListenerRequiresCredentials: a TCP listener, loopback or not, needs a
// token or nkeys; --nats-insecure-loopback lets clients without them in on
// loopback only. Nobody outside publishes events, whatever they present.
func TestListenerRequiresCredentials(t *testing.T) {
	for _, o := range []natsbus.Options{
		{Listen: "0.0.0.0:0"},
		{Listen: "127.0.0.1:0"},
		{Listen: "0.0.0.0:0", InsecureLoopback: true},
		{Listen: "0.0.0.0:0", InsecureLoopback: true, Token: "s3cret"},
	} {
		_, err := natsbus.Open(o)
		if !errors.Is(err, natsbus.ErrCredentialsRequired) || !strings.Contains(err.Error(), "--nats-token") {
			t.Fatalf("Open(%+v) = %v, want ErrCredentialsRequired naming --nats-token", o, err)
		}
		if o.Listen == "127.0.0.1:0" && !strings.Contains(err.Error(), "--nats-insecure-loopback") {
			t.Fatalf("on loopback the error should name --nats-insecure-loopback: %v", err)
		}
	}

	tok := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", Token: "s3cret"})
	for _, opt := range []nats.Option{nats.Name("no credentials"), nats.Token("wrong")} {
		if nc, err := nats.Connect(tok.ClientURL(), opt, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("connected over loopback TCP without the token")
		}
	}
	nc, errs := outsideClient(t, tok.ClientURL(), nats.Token("s3cret"))
	cannotForgeEvents(t, tok, nc, errs)

	open := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", InsecureLoopback: true})
	nc, errs = outsideClient(t, open.ClientURL())
	cannotForgeEvents(t, open, nc, errs)
}

// outsideClient connects over TCP and returns the asynchronous errors the
// server sends it (permission violations).
func outsideClient(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts = append(opts, nats.MaxReconnects(0), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// cannotForgeEvents: the outside client nc receives real events, and its
// own publish on an event subject is refused and reaches no subscriber.
func cannotForgeEvents(t *testing.T, bus *natsbus.Server, nc *nats.Conn, errs <-chan error) {
	t.Helper()
	outside, err := nc.SubscribeSync("mcpjupyter.ev.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	inside := subscribe(t, bus, "mcpjupyter.ev.>")
	l := openLog(t, t.TempDir())
	startPublisher(t, l, bus, natsbus.PublisherOptions{})
	first, err := l.Append(context.Background(), kernelDrafts("k1", 0)...)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, outside); e.Seq != first[0].Seq {
		t.Fatalf("the outside client got event %d, want %d", e.Seq, first[0].Seq)
	}
	next(t, inside)
	_ = nc.Publish("mcpjupyter.ev.k1.kernel.k1.KernelDied", []byte(`{"seq":99,"type":"KernelDied"}`))
	_ = nc.Flush() // NB: the server has processed the forged publish when this returns
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("a forged event: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an outside client published an event without a permissions violation")
	}
	real, err := l.Append(context.Background(), kernelDrafts("k1", 0)...)
	if err != nil {
		t.Fatal(err)
	}
	// Had the forged message been routed, it would arrive before this one.
	if e := next(t, inside); e.Seq != real[0].Seq {
		t.Fatalf("after the forged publish a subscriber got event %d (%s), want the real %d", e.Seq, e.Type, real[0].Seq)
	}
}
