package backlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func iopub(kernel, exec string, i int, text string) events.Draft {
	stream := events.KernelStream(kernel)
	if exec != "" {
		stream = events.ExecutionStream(exec)
	}
	content, _ := json.Marshal(map[string]string{"name": "stdout", "text": text})
	return events.Draft{Stream: stream, Kernel: kernel, Payload: events.IOPubMessageReceived{
		KernelID: kernel, ExecutionID: exec, MsgID: fmt.Sprintf("%s-%d", kernel, i), MsgType: "stream", Content: content}}
}

// runWith starts a projections runner over l with b and waits until it has
// applied everything.
func runWith(t testing.TB, l projections.Log, b *backlog.Model) *projections.Runner {
	t.Helper()
	r := projections.NewRunner(l, projections.Options{}, b)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRingBoundsAndReadFromLog(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var ds []events.Draft
	for i := range 250 {
		k, x := "k1", fmt.Sprint("x", i/50) // five executions on k1
		if i%5 == 0 {
			k, x = "k2", "y"
		}
		if i%7 == 0 {
			x = "" // kernel-level output
		}
		ds = append(ds, iopub(k, x, i, fmt.Sprintf("line %d\n", i)))
	}
	// Unrelated events in between must not disturb the ring.
	ds = append(ds, events.Draft{Stream: events.KernelStream("k1"), Kernel: "k1", Payload: events.KernelInterrupted{KernelID: "k1"}})
	testkit.AppendAll(t, l, ds)
	b := backlog.New(backlog.Options{MaxMessages: 50, MaxBytes: 1 << 20})
	runWith(t, l, b)

	// k1's ring holds its events: 200 outputs, then the interrupt.
	st := b.Stats("k1")
	if st.Messages != 50 || st.Evicted != 201-50 {
		t.Fatalf("k1 stats %+v, want 50 kept and 151 evicted", st)
	}
	if all := b.Stats(backlog.All); all.Messages != 50 || all.Evicted != 251-50 {
		t.Fatalf("All stats %+v, want 50 kept and 201 evicted", all)
	}
	if st2 := b.Stats("k2"); st2.Messages != 50 || st2.Evicted != 0 {
		t.Fatalf("k2 stats %+v", st2)
	}
	// Every cursor: exactly the later messages, in order, each with its own
	// execution, no gap and no duplicate.
	for _, after := range []uint64{0, 1, 17, 100, st.EvictTo - 1, st.EvictTo, st.EvictTo + 1, 249, 251} {
		var got []uint64
		err := b.Read(context.Background(), l, "k1", after, func(e backlog.Entry) error {
			got = append(got, e.Seq)
			if e.Type != events.TypeIOPubMessageReceived {
				if e.Seq != 251 || e.Type != events.TypeKernelInterrupted || e.Kernel != "k1" {
					t.Errorf("seq %d: %s about %q", e.Seq, e.Type, e.Kernel)
				}
				return nil
			}
			var p events.IOPubMessageReceived
			if err := json.Unmarshal(e.Payload, &p); err != nil {
				return err
			}
			if p.ExecutionID != e.ExecutionID || p.KernelID != "k1" {
				t.Errorf("seq %d attributed to %q, recorded under %q", e.Seq, e.ExecutionID, p.ExecutionID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for i := range 250 {
			if seq := uint64(i + 1); i%5 != 0 && seq > after {
				want = append(want, seq)
			}
		}
		if after < 251 {
			want = append(want, 251) // the interrupt
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %d: got %v\nwant %v", after, got, want)
		}
	}
}

func TestByteBound(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	big := strings.Repeat("x", 10_000)
	var ds []events.Draft
	for i := range 100 {
		ds = append(ds, iopub("k", "x", i, big))
	}
	testkit.AppendAll(t, l, ds)
	b := backlog.New(backlog.Options{MaxMessages: 1000, MaxBytes: 100_000})
	r := runWith(t, l, b)
	if st := b.Stats("k"); st.Bytes > 100_000 || st.Messages < 5 || st.Messages >= 10 || st.Evicted != uint64(100-st.Messages) {
		t.Fatalf("stats %+v: the byte bound does not hold, or evictions are not counted", st)
	}
	testkit.AppendAll(t, l, []events.Draft{iopub("k", "x", 100, strings.Repeat("y", 200_000))}) // larger than the whole ring
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	st := b.Stats("k")
	if st.Bytes > 100_000 || st.Messages != 0 || st.Evicted != 101 {
		t.Fatalf("stats %+v: bytes over the bound or evictions not counted", st)
	}
	if st.EvictTo != 101 {
		t.Fatalf("the oversized message was not counted as evicted: %+v", st)
	}
	n := 0
	if err := b.Read(context.Background(), l, "k", 0, func(backlog.Entry) error { n++; return nil }); err != nil || n != 101 {
		t.Fatalf("read from 0: %d messages, %v; want all 101 (from the log)", n, err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var ds []events.Draft
	for i := range 30 {
		ds = append(ds, iopub("k", "x", i, "a"))
	}
	testkit.AppendAll(t, l, ds)
	b := backlog.New(backlog.Options{MaxMessages: 20})
	runWith(t, l, b)
	data, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	c := backlog.New(backlog.Options{MaxMessages: 10}) // tighter bound after restart
	if err := c.Restore(data); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats("k"); st.Messages != 10 || st.Evicted != 20 || st.EvictTo != 20 {
		t.Fatalf("restored stats %+v", st)
	}
	if err := c.Restore([]byte("{not json")); err == nil {
		t.Fatal("bad snapshot accepted")
	}
}

// TestAllRingAndOldSnapshot: the All ring serves every event from any
// cursor (the log for what it evicted); a version 1 snapshot (IOPub only)
// sends readers to the log for everything it covers.
func TestAllRingAndOldSnapshot(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var ds []events.Draft
	for i := range 120 {
		ds = append(ds, iopub(fmt.Sprint("k", i%3), "x", i, "a"))
		if i%10 == 0 {
			ds = append(ds, events.Draft{Stream: events.ServerStream("n"), Payload: events.ServerStarted{Node: "n"}})
		}
	}
	testkit.AppendAll(t, l, ds)
	b := backlog.New(backlog.Options{MaxMessages: 40})
	runWith(t, l, b)
	last := l.Last()
	for _, after := range []uint64{0, 5, last - 41, last - 40, last - 1, last} {
		var got []uint64
		if err := b.Read(context.Background(), l, backlog.All, after, func(e backlog.Entry) error {
			got = append(got, e.Seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for s := after + 1; s <= last; s++ {
			want = append(want, s)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("All after %d: got %v, want %v", after, got, want)
		}
	}
	if ents, complete, _ := b.Since(backlog.All, last-10); !complete || len(ents) != 10 || ents[0].Seq != last-9 {
		t.Fatalf("Since(All, %d): %d entries, complete %v", last-10, len(ents), complete)
	}
	old := fmt.Sprintf(`{"seq":%d,"rings":[{"kernel":"k1","entries":[],"stats":{}}]}`, last)
	c := backlog.New(backlog.Options{})
	if err := c.Restore([]byte(old)); err != nil {
		t.Fatal(err)
	}
	if _, complete, _ := c.Since("k2", last-1); complete {
		t.Fatal("a version 1 snapshot claimed to hold every event")
	}
	if _, complete, _ := c.Since("k2", last); !complete {
		t.Fatal("nothing after the old snapshot, yet incomplete")
	}
}
