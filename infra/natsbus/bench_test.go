package natsbus_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

func quantile(d []time.Duration, q float64) float64 {
	slices.Sort(d)
	return float64(d[int(q*float64(len(d)-1))].Microseconds())
}

// BenchmarkDeliveryAfterDurable: time from Append returning (durable) to a
// TCP subscriber receiving the event, beside the baseline of a bare NATS
// publish to the same subscriber. Target: p99 ≤ 5 ms.
func BenchmarkDeliveryAfterDurable(b *testing.B) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	bus, err := natsbus.Open(natsbus.Options{Listen: "127.0.0.1:0", Token: "bench-token"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bus.Close(context.Background()) })
	p := natsbus.NewPublisher(l, bus, natsbus.PublisherOptions{})
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	nc, err := nats.Connect(bus.ClientURL(), nats.Token("bench-token"))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("mcpjupyter.ev.>", got); err != nil {
		b.Fatal(err)
	}
	raw := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("bench.raw", raw); err != nil {
		b.Fatal(err)
	}
	_ = nc.Flush()
	d := kernelDrafts("k", 0)[0]
	ours := make([]time.Duration, 0, b.N)
	base := make([]time.Duration, 0, b.N)
	wait := func(ch chan *nats.Msg) {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			b.Fatal("no message after 10s")
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := l.Append(context.Background(), d); err != nil {
			b.Fatal(err)
		}
		durable := time.Now()
		wait(got)
		ours = append(ours, time.Since(durable))
		b.StopTimer()
		start := time.Now()
		if err := bus.Conn().Publish("bench.raw", []byte(`{"seq":1}`)); err != nil {
			b.Fatal(err)
		}
		wait(raw)
		base = append(base, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	p99, rawP99 := quantile(ours, 0.99), quantile(base, 0.99)
	b.ReportMetric(quantile(ours, 0.5), "p50-µs")
	b.ReportMetric(p99, "p99-µs")
	b.ReportMetric(rawP99, "raw-p99-µs")
	b.ReportMetric(p99/max(rawP99, 1), "ratio-p99")
}
