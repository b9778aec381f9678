package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// noSnapshots hides the log's snapshots: Open then scans the whole log, as
// it did before the registry snapshot.
type noSnapshots struct{ *eventlog.Log }

func (noSnapshots) LoadSnapshot(string) (uint64, []byte, bool, error) { return 0, nil, false, nil }
func (noSnapshots) SaveSnapshot(string, uint64, []byte) error         { return nil }

// historyLog is a log of n IOPub events of a kernel that was started and
// shut down (Open recovers nothing from it: only finding that out costs).
func historyLog(tb testing.TB, n int) *eventlog.Log {
	tb.Helper()
	l, err := eventlog.Open(filepath.Join(tb.TempDir(), "events"), eventlog.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	k := "k-old"
	if _, err := l.Append(ctx, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelStarted{KernelID: k, Spec: "python3"}}); err != nil {
		tb.Fatal(err)
	}
	content := json.RawMessage(`{"name":"stdout","text":"a line of output\n"}`)
	batch := make([]events.Draft, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.IOPubMessageReceived{
			KernelID: k, MsgID: fmt.Sprint("m", i), MsgType: "stream", Content: content}})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(ctx, batch...); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := l.Append(ctx, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelShutDown{KernelID: k, Reason: "requested"}}); err != nil {
		tb.Fatal(err)
	}
	return l
}

func openOnce(tb testing.TB, l *eventlog.Log, sc system.Scanner) time.Duration {
	tb.Helper()
	start := time.Now()
	s, err := system.Open(context.Background(), system.Config{Log: l, Scanner: sc})
	took := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	if ids := s.KernelIDs(); len(ids) != 0 {
		tb.Fatalf("a shut-down kernel was recovered: %v", ids)
	}
	_ = s.Close(context.Background())
	return took
}

// BenchmarkSystemOpen: system.Open on a log of 200,000 events, from the
// kernel registry snapshot (what Open and Close save) beside a scan of the
// whole log from seq 0 (what it did before), alternating, in the same run.
func BenchmarkSystemOpen(b *testing.B) {
	l := historyLog(b, 200_000)
	openOnce(b, l, l) // saves the snapshot
	var full, snap time.Duration
	b.ResetTimer()
	for range b.N {
		full += openOnce(b, l, noSnapshots{l})
		snap += openOnce(b, l, l)
	}
	b.ReportMetric(float64(full.Microseconds())/float64(b.N), "full-scan-µs")
	b.ReportMetric(float64(snap.Microseconds())/float64(b.N), "snapshot-µs")
	b.ReportMetric(float64(snap)/float64(full), "ratio-snapshot-vs-full")
}

// TestOpenRecoversFromRegistrySnapshotAndTail: kernels known from the
// snapshot and those started after it are recovered; one shut down after
// it is not.
func TestOpenRecoversFromRegistrySnapshotAndTail(t *testing.T) {
	l := historyLog(t, 10)
	ctx := context.Background()
	reg, _ := json.Marshal([]map[string]string{{"id": "a"}, {"id": "b"}})
	if err := l.SaveSnapshot(system.RegistrySnapshot, l.Last(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx,
		events.Draft{Stream: events.KernelStream("b"), Kernel: "b", Payload: events.KernelShutDown{KernelID: "b"}},
		events.Draft{Stream: events.KernelStream("c"), Kernel: "c", Payload: events.KernelStartFailed{KernelID: "c"}}); err != nil {
		t.Fatal(err)
	}
	s, err := system.Open(ctx, system.Config{Log: l, Scanner: l})
	if err != nil {
		t.Fatal(err)
	}
	got := s.KernelIDs()
	_ = s.Close(ctx)
	// a's actor finds its stream empty (never started): it stays new.
	if len(got) != 1 || got[0] != "a" {
		t.Fatalf("recovered %v, want [a]", got)
	}
	seq, _, ok, err := l.LoadSnapshot(system.RegistrySnapshot)
	if err != nil || !ok || seq != l.Last() {
		t.Fatalf("Open and Close keep the snapshot at the log's end: seq %d of %d (%v %v)", seq, l.Last(), ok, err)
	}
}
