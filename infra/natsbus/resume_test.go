package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// gate is a fault injector in front of the real server (errorfs-style):
// cut closes the publisher's real connections, and while refusing it
// refuses new ones, as a server that went away would.
type gate struct {
	bus    *natsbus.Server
	refuse atomic.Bool
	dials  atomic.Int64
	mu     sync.Mutex
	conns  []*nats.Conn
}

func (g *gate) Connect(opts ...nats.Option) (*nats.Conn, error) {
	g.dials.Add(1)
	if g.refuse.Load() {
		return nil, errors.New("test gate: the NATS server refuses connections")
	}
	nc, err := g.bus.Connect(opts...)
	if err == nil {
		g.mu.Lock()
		g.conns = append(g.conns, nc)
		g.mu.Unlock()
	}
	return nc, err
}

func (g *gate) MaxMessage() int64 { return g.bus.MaxMessage() }

// cut refuses new connections and closes the open ones.
func (g *gate) cut() {
	g.refuse.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, nc := range g.conns {
		nc.Close()
	}
	g.conns = nil
}

// TestStoppedPublisherIsUnhealthyThenResumes: the publisher's connection
// closes and the server refuses it for a while: Healthy says so; once it
// may connect again it resumes from its cursor, and a TCP subscriber sees
// every event exactly once, in order.
func TestStoppedPublisherIsUnhealthyThenResumes(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", Token: "s3cret"})
	nc, _ := outsideClient(t, bus.ClientURL(), nats.Token("s3cret"))
	sub, err := nc.SubscribeSync("mcpjupyter.ev.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	g := &gate{bus: bus}
	pub := startPublisher(t, l, g, natsbus.PublisherOptions{Cursor: "natsbus", RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err := pub.Healthy(); err != nil {
		t.Fatalf("healthy after Start: %v", err)
	}
	var want []uint64
	appendSome := func(k string) {
		evs, err := l.Append(context.Background(), kernelDrafts(k, 4)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			want = append(want, e.Seq)
		}
	}
	appendSome("k1")
	waitConfirmed(t, pub, want[len(want)-1])

	g.cut()
	testkit.WaitUntil(t, 10*time.Second, "the publisher reports it stopped", func() (bool, string) {
		err := pub.Healthy()
		return err != nil, fmt.Sprint(err)
	})
	appendSome("k2") // while it is down
	dials := g.dials.Load()
	testkit.WaitUntil(t, 10*time.Second, "the publisher retries", func() (bool, string) {
		return g.dials.Load() >= dials+3, fmt.Sprint(g.dials.Load(), " dials")
	})
	err = pub.Healthy()
	if err == nil || !strings.Contains(err.Error(), "refuses connections") || !strings.Contains(err.Error(), "publisher stopped after event") {
		t.Fatalf("Healthy while the server refuses = %v; want what stopped it and why", err)
	}

	g.refuse.Store(false)
	testkit.WaitUntil(t, 10*time.Second, "the publisher resumes", func() (bool, string) {
		err := pub.Healthy()
		return err == nil, fmt.Sprint(err)
	})
	appendSome("k3")
	var got []uint64
	for len(got) < len(want) {
		got = append(got, receive(t, sub).seq)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the subscriber saw %v, want each of %v exactly once, in order", got, want)
	}
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("an extra message after the last event: %s", m.Header.Get(natsbus.SeqHeader))
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seq, _, _, _ := l.LoadSnapshot("natsbus"); seq != want[len(want)-1] {
		t.Fatalf("cursor saved at %d, want %d", seq, want[len(want)-1])
	}
}

// recorder keeps the records a slog logger receives.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	kind := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "kind" {
			kind = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message+" "+kind)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestStoppedPublisherBacksOffAndLogsOncePerKind: a publisher that cannot
// reconnect waits at least RetryMin between attempts (no busy loop), and
// logs each kind of failure once a minute, not once per attempt.
func TestStoppedPublisherBacksOffAndLogsOncePerKind(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{})
	g := &gate{bus: bus}
	rec := &recorder{}
	const retryMin = 5 * time.Millisecond
	pub := startPublisher(t, l, g, natsbus.PublisherOptions{RetryMin: retryMin, RetryMax: 20 * time.Millisecond, Logger: slog.New(rec)})
	start, dials := time.Now(), g.dials.Load()
	g.cut()
	if _, err := l.Append(context.Background(), kernelDrafts("k1", 3)...); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 20*time.Second, "20 failed reconnections", func() (bool, string) {
		return g.dials.Load() >= dials+20, fmt.Sprint(g.dials.Load()-dials, " reconnections")
	})
	attempts, elapsed := g.dials.Load()-dials, time.Since(start)
	if limit := int64(elapsed/retryMin) + 1; attempts > limit {
		t.Fatalf("%d reconnections in %s: more than one per %s", attempts, elapsed, retryMin)
	}
	if n := rec.count("nats publisher stopped; retrying connection"); n != 1 {
		t.Fatalf("the lost connection was logged %d times, want once: %q", n, rec.msgs)
	}
	if n := rec.count("nats publisher stopped; retrying connect"); n != 1 {
		t.Fatalf("%d refused reconnections were logged %d times, want once: %q", attempts, n, rec.msgs)
	}
	if pub.Healthy() == nil {
		t.Fatal("healthy while it cannot connect")
	}
}
