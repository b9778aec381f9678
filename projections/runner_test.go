package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func openLog(t testing.TB, dir string) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(dir, eventlog.Options{Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// workload returns a realistic mix: kernels starting, executions with
// their IOPub traffic, a death and a restart.
func workload(kernelsN, execs int) []events.Draft {
	var ds []events.Draft
	for k := range kernelsN {
		id := fmt.Sprintf("k%d", k)
		ds = append(ds, events.Draft{Stream: events.KernelStream(id), Kernel: id, Payload: events.KernelStarted{
			KernelID: id, Spec: "python3", Label: "l" + id, Process: events.KernelProcess{Pid: 100 + k}}})
	}
	for x := range execs {
		k := fmt.Sprintf("k%d", x%kernelsN)
		ds = append(ds, execution(k, fmt.Sprintf("x%d", x))...)
		if x == execs/2 {
			ds = append(ds, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelDied{KernelID: k, Reason: "oom"}},
				events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelRestarted{KernelID: k, Process: events.KernelProcess{Pid: 999}}})
		}
	}
	return ds
}

func execution(kernel, x string) []events.Draft {
	s := events.ExecutionStream(x)
	io := func(typ, content string) events.Draft {
		return events.Draft{Stream: s, Kernel: kernel, Payload: events.IOPubMessageReceived{KernelID: kernel, ExecutionID: x,
			MsgID: x + typ, ParentMsgID: x + "req", MsgType: typ, Content: json.RawMessage(content)}}
	}
	return []events.Draft{
		{Stream: s, Kernel: kernel, Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "print('hello')\n1+1"}},
		{Stream: s, Kernel: kernel, Payload: events.ExecutionStarted{ExecutionID: x, KernelID: kernel, MsgID: x + "req"}},
		io("status", `{"execution_state":"busy"}`),
		io("stream", `{"name":"stdout","text":"hello world, this is a line of output from the kernel about a hundred bytes long.\n"}`),
		io("execute_result", `{"execution_count":1,"data":{"text/plain":"2"},"metadata":{}}`),
		io("status", `{"execution_state":"idle"}`),
		{Stream: s, Kernel: kernel, Payload: events.ExecutionFinished{ExecutionID: x, Status: "ok", ExecutionCount: 1}},
	}
}

func appendAll(t testing.TB, l *eventlog.Log, ds []events.Draft) uint64 {
	t.Helper()
	evs, err := l.Append(context.Background(), ds...)
	if err != nil {
		t.Fatal(err)
	}
	return evs[len(evs)-1].Seq
}

func startRunner(t testing.TB, l projections.Log, opts projections.Options, ps ...projections.Projection) *projections.Runner {
	t.Helper()
	r := projections.NewRunner(l, opts, ps...)
	if err := r.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func waitReady(t testing.TB, r *projections.Runner) {
	t.Helper()
	select {
	case <-r.Ready():
	case <-r.Done():
		t.Fatalf("runner stopped before ready: %v", r.Wait())
	case <-time.After(30 * time.Second):
		t.Fatal("runner not ready after 30s")
	}
}

func snap(t testing.TB, p projections.Projection) string {
	t.Helper()
	b, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplayEqualsLiveFolding(t *testing.T) {
	l := openLog(t, t.TempDir())
	liveK, liveC := kernels.New(), newCounts("counts")
	live := startRunner(t, l, projections.Options{}, liveK, liveC)
	waitReady(t, live)
	ds := workload(3, 40)
	var last uint64
	for i := 0; i < len(ds); i += 7 { // several commits, applied live
		last = appendAll(t, l, ds[i:min(i+7, len(ds))])
	}
	if err := live.WaitFor(ctxT(t), last); err != nil {
		t.Fatal(err)
	}
	replayK, replayC := kernels.New(), newCounts("counts")
	replay := startRunner(t, l, projections.Options{Rebuild: true}, replayK, replayC)
	waitReady(t, replay)
	if got := replay.Applied(); got != last {
		t.Fatalf("replay ready at %d, want %d", got, last)
	}
	if a, b := snap(t, liveK), snap(t, replayK); a != b {
		t.Fatalf("kernels differ\nlive   %s\nreplay %s", a, b)
	}
	if a, b := snap(t, liveC), snap(t, replayC); a != b {
		t.Fatalf("counts differ\nlive   %s\nreplay %s", a, b)
	}
	if n := liveC.Get(events.TypeIOPubMessageReceived); n != 160 {
		t.Fatalf("IOPub count %d, want 160", n)
	}
	k, ok := replayK.Get("k1")
	if !ok || k.State != kernels.StateRunning || k.Busy || k.ExecutionState != "idle" {
		t.Fatalf("k1 = %+v", k)
	}
}

func TestSnapshotRestartResumesAtTheRightSeq(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	first := appendAll(t, l, workload(2, 10)) // 2 + 70 + 2 events
	r := projections.NewRunner(l, projections.Options{SnapshotEvery: 10}, kernels.New(), newCounts("counts"))
	if err := r.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitReady(t, r)
	if err := r.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	seq, _, ok, err := l.LoadSnapshot("counts")
	if err != nil || !ok || seq != first {
		t.Fatalf("snapshot after Close at %d (ok %v, err %v), want %d", seq, ok, err, first)
	}
	last := appendAll(t, l, workload(3, 5))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	k2, c2 := kernels.New(), newCounts("counts")
	r2 := startRunner(t, l, projections.Options{}, k2, c2)
	waitReady(t, r2)
	if c2.First() != first+1 {
		t.Fatalf("restarted runner first applied %d, want %d (resume after the snapshot)", c2.First(), first+1)
	}
	if s, _ := r2.Seq("kernels"); s != last {
		t.Fatalf("kernels at %d, want %d", s, last)
	}
	k3, c3 := kernels.New(), newCounts("counts")
	r3 := startRunner(t, l, projections.Options{Rebuild: true}, k3, c3)
	waitReady(t, r3)
	if a, b := snap(t, k2), snap(t, k3); a != b {
		t.Fatalf("kernels after restart differ from a rebuild\nrestart %s\nrebuild %s", a, b)
	}
	if !reflect.DeepEqual(c2.All(), c3.All()) {
		t.Fatalf("counts after restart %v, rebuild %v", c2.All(), c3.All())
	}
}

func TestRetentionTruncatesOnlyBelowTheSnapshots(t *testing.T) {
	l := openLog(t, t.TempDir())
	last := appendAll(t, l, workload(2, 13)) // 2 + 91 + 2 = 95 events
	if last != 95 {
		t.Fatalf("workload has %d events", last)
	}
	r := startRunner(t, l, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 1}},
		kernels.New(), newCounts("counts"))
	waitReady(t, r)
	// The last periodic snapshot is at 90; events 91..95 are not covered.
	if got := l.First(); got != 91 {
		t.Fatalf("log starts at %d, want 91 (just above the snapshots at 90)", got)
	}
	for _, name := range []string{"kernels", "counts"} {
		seq, _, ok, _ := l.LoadSnapshot(name)
		if !ok || seq+1 < l.First() {
			t.Fatalf("snapshot %s at %d does not cover the truncated prefix (first %d)", name, seq, l.First())
		}
	}

	// KeepEvents wins when it asks for more than the snapshots allow...
	l2 := openLog(t, t.TempDir())
	appendAll(t, l2, workload(2, 13))
	r2 := startRunner(t, l2, projections.Options{SnapshotEvery: 10, Retention: projections.Retention{KeepEvents: 30}}, newCounts("counts"))
	waitReady(t, r2)
	if got := l2.First(); got != 66 {
		t.Fatalf("log starts at %d, want 66 (keep the newest 30 of 95)", got)
	}
	// ...and Floor holds back another reader's events.
	l3 := openLog(t, t.TempDir())
	appendAll(t, l3, workload(2, 13))
	r3 := startRunner(t, l3, projections.Options{SnapshotEvery: 10,
		Retention: projections.Retention{KeepEvents: 1, Floors: floorAt(42)}}, newCounts("counts"))
	waitReady(t, r3)
	if got := l3.First(); got != 42 {
		t.Fatalf("log starts at %d, want 42 (the floor)", got)
	}
	// A projection without a snapshot covering the prefix cannot start.
	r4 := projections.NewRunner(l, projections.Options{}, newCounts("new-projection"))
	if err := r4.Start(ctxT(t)); !errors.Is(err, projections.ErrGap) {
		t.Fatalf("start of a projection the truncated log cannot rebuild: %v, want ErrGap", err)
	}
}

type failing struct {
	*counts
	at uint64
}

func (f failing) Apply(e events.Event) error {
	if e.Seq == f.at {
		return errors.New("refused")
	}
	return f.counts.Apply(e)
}

func TestApplyErrorNamesTheSeq(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendAll(t, l, workload(1, 2))
	r := startRunner(t, l, projections.Options{}, kernels.New(), failing{newCounts("failing"), 7})
	testkit.Closed(t, r.Done(), 30*time.Second, "the runner stops on the apply error")
	err := r.Wait()
	var ae *projections.ApplyError
	if !errors.As(err, &ae) || ae.Seq != 7 || ae.Projection != "failing" {
		t.Fatalf("Wait() = %v, want an ApplyError at 7 from failing", err)
	}
	if !strings.Contains(err.Error(), "event 7") {
		t.Fatalf("error %q does not name the sequence", err)
	}
	select {
	case <-r.Ready():
		t.Fatal("ready after a failed replay")
	default:
	}
	if err := r.WaitFor(ctxT(t), 8); !errors.As(err, &ae) {
		t.Fatalf("WaitFor after failure = %v, want the apply error", err)
	}
}

func TestWaitForIsSignalled(t *testing.T) {
	l := openLog(t, t.TempDir())
	c := newCounts("counts")
	r := startRunner(t, l, projections.Options{}, c)
	waitReady(t, r)
	errc := make(chan error, 1)
	go func() { errc <- r.WaitFor(ctxT(t), 3) }()
	appendAll(t, l, workload(3, 0))
	if err := testkit.Receive(t, errc, 30*time.Second, "WaitFor(3)"); err != nil {
		t.Fatal(err)
	}
	if c.Get(events.TypeKernelStarted) != 3 {
		t.Fatalf("after WaitFor(3) counts = %v (not read-your-writes)", c.All())
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(short, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(100) = %v, want deadline exceeded", err)
	}
	if err := r.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitFor(ctxT(t), 100); !errors.Is(err, projections.ErrClosed) {
		t.Fatalf("WaitFor after Close = %v, want ErrClosed", err)
	}
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait after Close = %v", err)
	}
}

// TestApplyErrorOfTheEarlierEventWins: catch-up applies the projections in
// two halves at once; when both fail, the error is the earlier event's,
// whichever half it came from.
func TestApplyErrorOfTheEarlierEventWins(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendAll(t, l, workload(1, 2))
	for _, order := range [][2]uint64{{9, 5}, {5, 9}} {
		late, early := failing{newCounts(fmt.Sprint("at-", order[0])), order[0]}, failing{newCounts(fmt.Sprint("at-", order[1])), order[1]}
		r := startRunner(t, l, projections.Options{}, late, early)
		testkit.Closed(t, r.Done(), 30*time.Second, "the runner stops on the apply error")
		var ae *projections.ApplyError
		if err := r.Wait(); !errors.As(err, &ae) || ae.Seq != 5 || ae.Projection != "at-5" {
			t.Fatalf("projections failing at %v: Wait() = %v, want the ApplyError at 5", order, err)
		}
		if applied := r.Applied(); applied >= 5 {
			t.Fatalf("projections failing at %v: applied %d, want below 5", order, applied)
		}
	}
}

// TestRestoreErrorNamesTheProjection: snapshots restore at the same time;
// a snapshot that does not decode stops Start with the error of the first
// such projection, in order, naming it and the snapshot's sequence.
func TestRestoreErrorNamesTheProjection(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendAll(t, l, workload(1, 2))
	for _, name := range []string{"a", "b", "c"} {
		if err := l.SaveSnapshot(name, 3, []byte(`not json`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SaveSnapshot("ok", 3, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(l, projections.Options{}, newCounts("ok"), newCounts("b"), newCounts("a"), newCounts("c"))
	err := r.Start(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "start projection b: restore snapshot at 3") {
		t.Fatalf("Start with undecodable snapshots = %v, want projection b's restore error", err)
	}
}
