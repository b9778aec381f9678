package natsbus_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// storedUpTo is the newest sequence of node's records the history stream
// holds (0: none).
func storedUpTo(t *testing.T, js jetstream.JetStream, node string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natsbus.HistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, natsbus.HistorySubject(node))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(natsbus.SeqHeader), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestWaitConfirmedWaitsForTheStream: WaitConfirmed does not return while
// the history stream cannot acknowledge (here: it does not exist yet), and
// returns once the stream (three servers, R3) holds the record; after the
// publisher closed, a wait for a record it never confirmed ends with
// ErrClosed instead of blocking.
func TestWaitConfirmedWaitsForTheStream(t *testing.T) {
	buses := clusterBuses(t)
	l, err := eventlog.Open(testkit.TempDataDir(t), eventlog.Options{Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	pub := natsbus.NewHistoryPublisher(l, buses[0], natsbus.HistoryOptions{Node: "a", RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Append(context.Background(), kernelDrafts("k1", 3)...)
	if err != nil {
		t.Fatal(err)
	}
	seq := evs[len(evs)-1].Seq
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = pub.WaitConfirmed(ctx, seq)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConfirmed with no stream to acknowledge: %v, want the deadline", err)
	}
	js, err := jetstream.New(buses[1].Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := natsbus.EnsureHistoryStream(ctx, js, 3, 0); err != nil {
		t.Fatal(err)
	}
	waits := make(chan error, 2)
	for range 2 { // NB: two waiters of one record: both are woken
		go func() { waits <- pub.WaitConfirmed(ctx, seq) }()
	}
	for range 2 {
		if err := <-waits; err != nil {
			t.Fatalf("WaitConfirmed once the stream exists: %v (%v)", err, pub.Healthy())
		}
	}
	if got := storedUpTo(t, js, "a"); got < seq {
		t.Fatalf("WaitConfirmed returned for record %d but the stream holds up to %d", seq, got)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := pub.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitConfirmed(ctx, seq); err != nil {
		t.Fatalf("a record confirmed before the close: %v", err)
	}
	if err := pub.WaitConfirmed(ctx, seq+1); !errors.Is(err, natsbus.ErrClosed) {
		t.Fatalf("WaitConfirmed of a record never published, after the close: %v, want ErrClosed", err)
	}
}

// BenchmarkExecuteStartConfirmR3 is what the at-most-once gate adds to an
// execute in cluster mode: from ExecutionStarted put in the log's write
// path (AppendAsync, as the scheduler does) until the history stream of a
// three-server in-process cluster (R3) acknowledged it, when the
// execute_request may leave; on a single server it leaves at once.
// Reports p50 and p99 in ms.
func BenchmarkExecuteStartConfirmR3(b *testing.B) {
	nodes := histCluster(b, clusterBuses(b), "a")
	a := nodes[0]
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		x := "x" + strconv.Itoa(i)
		start := time.Now()
		p, err := a.log.AppendAsync(ctx, events.Draft{Stream: events.ExecutionStream(x), Kernel: "k1",
			Payload: events.ExecutionStarted{ExecutionID: x, KernelID: "k1", MsgID: "m" + x}})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.pub.WaitConfirmed(ctx, p.Events()[0].Seq); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkExecuteStartDurable is BenchmarkExecuteStartConfirmR3's
// baseline: the same append until it is durable in the local log only (its
// fsync), without the history stream.
func BenchmarkExecuteStartDurable(b *testing.B) {
	l, err := eventlog.Open(testkit.TempDataDir(b), eventlog.Options{Node: "a"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		x := "x" + strconv.Itoa(i)
		start := time.Now()
		p, err := l.AppendAsync(ctx, events.Draft{Stream: events.ExecutionStream(x), Kernel: "k1",
			Payload: events.ExecutionStarted{ExecutionID: x, KernelID: "k1", MsgID: "m" + x}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
