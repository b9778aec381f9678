package lease_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkGC100k: 100,000 assets, 10% still leased, the rest expired. One
// Collect must delete exactly the expired ones, in under 5 s (figure).
// Baseline in the same run: unlinking the same number of files with
// os.Remove and nothing else (no log, no decision). Reports gc-s and
// ratio-gc-vs-unlink.
func BenchmarkGC100k(b *testing.B) {
	const n, leasedEvery = 100_000, 10
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		c := newClock()
		t0 := c.Now()
		l := testkit.OpenLog(b, filepath.Join(dir, "events"))
		st, err := assetstore.Open(filepath.Join(dir, "assets"))
		if err != nil {
			b.Fatal(err)
		}
		// Setup: files written without fsync (the figure is the GC, not
		// 100,000 durable writes); their events appended in bulk.
		// Baseline files: the same names and bytes, in a scratch dir,
		// written at the same time as the assets.
		scratch := filepath.Join(dir, "scratch")
		_ = os.MkdirAll(scratch, 0o700)
		sums := make([]string, n)
		ds := make([]events.Draft, 0, 2*n)
		for i := range n {
			data := fmt.Appendf(nil, "asset %d", i)
			sums[i] = assetstore.Sum(data)
			if err := os.WriteFile(filepath.Join(st.Dir(), sums[i]), data, 0o600); err != nil {
				b.Fatal(err)
			}
			if i%leasedEvery != 0 {
				_ = os.WriteFile(filepath.Join(scratch, sums[i]), data, 0o600)
			}
			exp := t0.Add(time.Hour)
			if i%leasedEvery == 0 {
				exp = t0.Add(48 * time.Hour)
			}
			s := events.AssetStream(sums[i])
			ds = append(ds,
				events.Draft{Stream: s, Kernel: "k", Payload: events.AssetStored{SHA256: sums[i], MIME: "text/plain", Size: int64(len(data)), KernelID: "k", ExecutionID: "x"}},
				events.Draft{Stream: s, Kernel: "k", Payload: events.LeaseGranted{SHA256: sums[i], Holder: "execution/x", ExpiresAt: exp}})
		}
		testkit.AppendAll(b, l, ds)
		tf := &timedFiles{Store: st}
		tl := &timedLog{Log: l}
		a, err := lease.Open(context.Background(), lease.Config{System: newSystem(b), Log: tl, Files: tf, TTL: time.Hour, Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		c.Advance(2 * time.Hour)
		b.StartTimer()
		start := time.Now()
		res, err := a.Collect(context.Background())
		gc := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		// Baseline: a plain sequential unlink of the same files.
		start = time.Now()
		for i, sum := range sums {
			if i%leasedEvery != 0 {
				_ = os.Remove(filepath.Join(scratch, sum))
			}
		}
		base := time.Since(start)
		if len(res.Sums) != n-n/leasedEvery {
			b.Fatalf("collected %d, want %d", len(res.Sums), n-n/leasedEvery)
		}
		for i, sum := range sums {
			_, err := os.Stat(filepath.Join(st.Dir(), sum))
			if leased := i%leasedEvery == 0; leased != (err == nil) {
				b.Fatalf("asset %d leased=%v, file present=%v", i, leased, err == nil)
			}
		}
		b.ReportMetric(time.Duration(tf.d.Load()).Seconds(), "delete-s")
		b.ReportMetric(time.Duration(tl.d.Load()).Seconds(), "append-s")
		b.ReportMetric(gc.Seconds(), "gc-s")
		b.ReportMetric(base.Seconds(), "unlink-s")
		b.ReportMetric(gc.Seconds()/base.Seconds(), "ratio-gc-vs-unlink")
		if gc > 5*time.Second {
			b.Errorf("GC took %v, over the 5 s figure (plain unlink of the same files: %v; in Delete %v, in Append %v)", gc, base, time.Duration(tf.d.Load()), time.Duration(tl.d.Load()))
		}
		b.StartTimer()
	}
}

// timedFiles and timedLog add up the time spent in Delete and Append (the
// deleter goroutine and the actor each call one of them, one at a time).
type timedFiles struct {
	*assetstore.Store
	d atomic.Int64
}

func (f *timedFiles) Delete(sums ...string) error {
	start := time.Now()
	defer func() { f.d.Add(int64(time.Since(start))) }()
	return f.Store.Delete(sums...)
}

type timedLog struct {
	lease.Log
	d atomic.Int64
}

func (l *timedLog) Append(ctx context.Context, ds ...events.Draft) ([]events.Event, error) {
	start := time.Now()
	defer func() { l.d.Add(int64(time.Since(start))) }()
	return l.Log.Append(ctx, ds...)
}
