package natsbus_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// historyDrafts are n realistic records of the kinds a cluster shares
// (executions with their outputs, kernels).
func historyDrafts(n int) []events.Draft {
	var out []events.Draft
	for m := n; len(out) < n; m *= 2 {
		out = out[:0]
		for _, d := range testkit.RealisticDrafts(m) {
			if slices.Contains(natsbus.ImportedKinds, events.StreamKind(d.Stream)) {
				out = append(out, d)
			}
		}
	}
	return out[:n]
}

// BenchmarkHistoryImport: b.N records of node a, already in the history
// stream (a three-server in-process cluster, R3), imported by node b from a cold start (JetStream consumer,
// decode, batches of ≤1024 records / 1 MiB through AppendForeign: the log's
// write path with an fsync per batch) until CaughtUp. Its baseline is
// BenchmarkHistoryImportBaselinePebbleBatch.
func BenchmarkHistoryImport(b *testing.B) {
	nodes := histCluster(b, clusterBuses(b), "a", "b")
	a, bn := nodes[0], nodes[1]
	bn.stop(b)
	testkit.AppendAll(b, a.log, historyDrafts(b.N))
	settled(b, a)
	b.ResetTimer()
	start := time.Now()
	bn.start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := bn.imp.CaughtUp(ctx, "a"); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := bn.imp.Stats().Imported; got != uint64(b.N) {
		b.Fatalf("imported %d records, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/float64(bn.imp.Stats().Batches), "records/batch")
}

// BenchmarkHistoryImportBaselinePebbleBatch: the same records written
// straight into a bare Pebble store, in batches of 1024 with a synced
// commit each and the same keys (record, stream and kernel index, mark):
// what an import costs at least on this disk.
func BenchmarkHistoryImportBaselinePebbleBatch(b *testing.B) {
	ds := historyDrafts(b.N)
	recs := make([][]byte, len(ds))
	for i, d := range ds {
		e := events.Event{Seq: uint64(i + 1), Time: time.Now(), Stream: d.Stream, Kernel: d.Kernel, Node: "a", Payload: d.Payload,
			Type: d.Payload.EventType(), Version: 1}
		rec, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = rec
	}
	db, err := pebble.Open(b.TempDir(), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietPebble{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ResetTimer()
	start := time.Now()
	for lo := 0; lo < len(ds); lo += 1024 {
		batch := db.NewBatch()
		for i := lo; i < min(lo+1024, len(ds)); i++ {
			seq := binary.BigEndian.AppendUint64([]byte{'e'}, uint64(i+1))
			_ = batch.Set(seq, recs[i], nil)
			_ = batch.Set(append(append([]byte{'s'}, ds[i].Stream...), seq[1:]...), nil, nil)
			_ = batch.Set(append(append([]byte{'k'}, ds[i].Kernel...), seq[1:]...), nil, nil)
			_ = batch.Set(append([]byte{'f'}, seq[1:]...), seq[1:], nil)
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			b.Fatal(err)
		}
		_ = batch.Close()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// quietPebble drops Pebble's messages (its default logger prints to stdout,
// into the benchmark's output).
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)         {}
func (quietPebble) Errorf(string, ...any)        {}
func (quietPebble) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
