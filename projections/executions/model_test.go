package executions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func queued(kernel, x string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(x), Kernel: kernel,
		Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "print('hi')"}}
}

func started(kernel, x string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(x), Kernel: kernel,
		Payload: events.ExecutionStarted{ExecutionID: x, KernelID: kernel, MsgID: "m-" + x}}
}

func finished(kernel, x string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(x), Kernel: kernel,
		Payload: events.ExecutionFinished{ExecutionID: x, Status: "ok", ExecutionCount: 1}}
}

func line(kernel, x string, i int) events.Draft {
	content, _ := json.Marshal(map[string]string{"name": "stdout", "text": fmt.Sprintf("%s line %d\n", x, i)})
	stream := events.KernelStream(kernel)
	if x != "" {
		stream = events.ExecutionStream(x)
	}
	return events.Draft{Stream: stream, Kernel: kernel, Payload: events.IOPubMessageReceived{
		KernelID: kernel, ExecutionID: x, MsgID: fmt.Sprintf("%s-%s-%d", kernel, x, i), MsgType: "stream", Content: content}}
}

func appendOne(t testing.TB, l *eventlog.Log, d events.Draft) uint64 {
	t.Helper()
	evs, err := l.Append(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return evs[len(evs)-1].Seq
}

type fixture struct {
	l *eventlog.Log
	m *executions.Model
	r *projections.Runner
}

func start(t testing.TB, l *eventlog.Log, opts executions.Options, ropts projections.Options) fixture {
	t.Helper()
	m := executions.New(opts, l)
	r := projections.NewRunner(l, ropts, m)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	f := fixture{l: l, m: m, r: r}
	f.sync(t)
	return f
}

// sync waits until the model applied everything in the log.
func (f fixture) sync(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.r.WaitFor(ctx, f.l.Last()); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) read(t testing.TB, id string, since uint64) executions.View {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := f.m.Read(ctx, id, since)
	if err != nil {
		t.Fatalf("read %s since %d: %v", id, since, err)
	}
	return v
}

// logOutputs is the truth: every output of x in the log with seq > since.
func logOutputs(t testing.TB, l *eventlog.Log, x string, since uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	err := l.ReadStream(context.Background(), events.ExecutionStream(x), since, func(e events.Event) error {
		if e.Type == events.TypeIOPubMessageReceived {
			seqs = append(seqs, e.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func seqs(outs []queue.Output) []uint64 {
	s := make([]uint64, 0, len(outs))
	for _, o := range outs {
		s = append(s, o.Seq)
	}
	return s
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestReadSinceReturnsExactlyTheNew: from any cursor, exactly the outputs
// after it, in order, with their text; from the reply's cursor, nothing.
func TestReadSinceReturnsExactlyTheNew(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	ds := []events.Draft{queued("k1", "x1"), started("k1", "x1"), queued("k2", "y")}
	for i := range 100 {
		ds = append(ds, line("k1", "x1", i))
		if i%10 == 0 {
			ds = append(ds, line("k2", "y", i), line("k1", "", i)) // other executions, kernel-level output
		}
	}
	testkit.AppendAll(t, l, ds)
	f := start(t, l, executions.Options{}, projections.Options{})

	all := logOutputs(t, l, "x1", 0)
	if len(all) != 100 {
		t.Fatalf("log holds %d outputs of x1", len(all))
	}
	for _, since := range []uint64{0, 1, 3, all[0], all[41], all[98], all[99]} {
		v := f.read(t, "x1", since)
		if got, want := fmt.Sprint(seqs(v.Outputs)), fmt.Sprint(logOutputs(t, l, "x1", since)); got != want {
			t.Fatalf("since %d: got %v, want %v", since, got, want)
		}
		if v.Execution.Status != queue.StatusRunning || v.Cursor != all[99] && since <= all[99] {
			t.Fatalf("since %d: status %s cursor %d, want running at %d", since, v.Execution.Status, v.Cursor, all[99])
		}
	}
	v := f.read(t, "x1", 0)
	var text strings.Builder
	for _, o := range v.Outputs {
		var c struct{ Text string }
		if err := json.Unmarshal(o.Content, &c); err != nil || o.MsgType != "stream" {
			t.Fatalf("output %d: %s %s (%v)", o.Seq, o.MsgType, o.Content, err)
		}
		text.WriteString(c.Text)
	}
	if !strings.HasPrefix(text.String(), "x1 line 0\nx1 line 1\n") || !strings.HasSuffix(text.String(), "x1 line 99\n") {
		t.Fatalf("text %q", text.String())
	}
	if v := f.read(t, "x1", v.Cursor); len(v.Outputs) != 0 {
		t.Fatalf("since the cursor: %d outputs, want none", len(v.Outputs))
	}
	// One more output: exactly it.
	seq := appendOne(t, l, line("k1", "x1", 100))
	f.sync(t)
	if v2 := f.read(t, "x1", v.Cursor); fmt.Sprint(seqs(v2.Outputs)) != fmt.Sprint([]uint64{seq}) || v2.Cursor != seq {
		t.Fatalf("after one more: %v cursor %d, want [%d]", seqs(v2.Outputs), v2.Cursor, seq)
	}
	if _, err := f.m.Read(context.Background(), "nope", 0); !errors.Is(err, executions.ErrUnknown) {
		t.Fatalf("unknown id: %v", err)
	}
}

// TestWakeOnlyOwnExecution: 64 executions on 64 kernels each have a
// waiter; one output wakes exactly its own execution's waiter, a status
// change likewise, and kernel-level output nobody.
func TestWakeOnlyOwnExecution(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	const n = 64
	var ds []events.Draft
	for i := range n {
		k, x := fmt.Sprint("k", i), fmt.Sprint("x", i)
		ds = append(ds, queued(k, x), started(k, x))
	}
	testkit.AppendAll(t, l, ds)
	f := start(t, l, executions.Options{}, projections.Options{})
	chans := make([]<-chan struct{}, n)
	for i := range n {
		chans[i] = f.read(t, fmt.Sprint("x", i), 0).Changed
	}
	check := func(what string, want int) {
		t.Helper()
		for i, ch := range chans {
			if got := closed(ch); got != (i == want) {
				t.Fatalf("%s: waiter %d woke=%v (want only waiter %d)", what, i, got, want)
			}
		}
	}
	before := f.m.Stats().Wakes
	appendOne(t, l, line("k7", "x7", 0))
	f.sync(t)
	check("output of x7", 7)
	if w := f.m.Stats().Wakes - before; w != 1 {
		t.Fatalf("%d wake-ups for one append, want 1", w)
	}
	chans[7] = f.read(t, "x7", 0).Changed
	appendOne(t, l, line("k3", "", 1)) // kernel-level output: no execution's
	appendOne(t, l, events.Draft{Stream: events.KernelStream("k9"), Kernel: "k9", Payload: events.KernelInterrupted{KernelID: "k9"}})
	f.sync(t)
	check("kernel-level events", -1)
	appendOne(t, l, finished("k42", "x42"))
	f.sync(t)
	check("x42 finished", 42)
	if w := f.m.Stats().Wakes - before; w != 2 {
		t.Fatalf("%d wake-ups for two execution events, want 2", w)
	}
}

// TestMemoryBound: however much output arrives, the outputs held never
// exceed the budget; finished executions are dropped first, and every
// execution still reads complete, from any cursor, paged from the log.
func TestMemoryBound(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	const budget = 64 << 10
	f := start(t, l, executions.Options{MaxOutputBytes: budget}, projections.Options{})
	peak := 0
	for x := range 6 {
		id := fmt.Sprint("x", x)
		testkit.AppendAll(t, l, []events.Draft{queued("k", id), started("k", id)})
		for i := range 500 { // ~100 bytes each: 6 x 500 x ~160 B is ~7x the budget
			appendOne(t, l, line("k", id, i))
			if i%50 == 0 {
				f.sync(t)
				peak = max(peak, f.m.Stats().OutputBytes)
			}
		}
		if x < 5 {
			appendOne(t, l, finished("k", id))
		}
		f.sync(t)
		st := f.m.Stats()
		peak = max(peak, st.OutputBytes)
		if st.OutputBytes > budget {
			t.Fatalf("after x%d: %d bytes held, budget %d", x, st.OutputBytes, budget)
		}
	}
	if peak == 0 || peak > budget {
		t.Fatalf("peak %d bytes held, budget %d", peak, budget)
	}
	// The running execution keeps its newest outputs; the finished ones
	// were dropped first (x5 alone is over budget, so nothing else is held).
	v := f.read(t, "x5", 0)
	if len(v.Outputs) != 500 {
		t.Fatalf("x5: %d outputs, want 500", len(v.Outputs))
	}
	for x := range 6 {
		id := fmt.Sprint("x", x)
		all := logOutputs(t, l, id, 0)
		for _, since := range []uint64{0, all[0], all[250], all[499]} {
			v := f.read(t, id, since)
			if got, want := fmt.Sprint(seqs(v.Outputs)), fmt.Sprint(logOutputs(t, l, id, since)); got != want {
				t.Fatalf("%s since %d: got %d outputs, want %d", id, since, len(v.Outputs), len(logOutputs(t, l, id, since)))
			}
		}
	}
	if st := f.m.Stats(); st.OutputBytes > budget {
		t.Fatalf("after reading: %d bytes held", st.OutputBytes)
	}
}

// TestStatusesBounded: beyond MaxFinished the oldest finished statuses are
// forgotten; reading one folds it from the log.
func TestStatusesBounded(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var ds []events.Draft
	for i := range 30 {
		id := fmt.Sprint("x", i)
		ds = append(ds, queued("k", id), started("k", id), line("k", id, 0), finished("k", id))
	}
	testkit.AppendAll(t, l, ds)
	f := start(t, l, executions.Options{MaxFinished: 10}, projections.Options{})
	if st := f.m.Stats(); st.Executions != 10 {
		t.Fatalf("%d statuses held, want 10", st.Executions)
	}
	if _, ok := f.m.Get("x0"); ok {
		t.Fatal("x0 still held")
	}
	v := f.read(t, "x0", 0)
	if v.Execution.Status != queue.StatusOK || len(v.Outputs) != 1 || v.Changed != nil {
		t.Fatalf("x0 from the log: %+v, %d outputs", v.Execution, len(v.Outputs))
	}
	// The kernel of an execution, held or not, without its outputs: what an
	// edge checks access on first.
	for _, id := range []string{"x0", "x29"} {
		if k, err := f.m.KernelOf(context.Background(), id); err != nil || k != "k" {
			t.Fatalf("KernelOf(%s) = %q, %v; want k", id, k, err)
		}
	}
	if _, err := f.m.KernelOf(context.Background(), "nope"); !errors.Is(err, executions.ErrUnknown) {
		t.Fatalf("KernelOf an unknown id: %v", err)
	}
}

// TestRestoreFromSnapshotPagesOutputs: after a restart from a snapshot the
// model answers for an old execution, its outputs paged from the log; the
// snapshot holds statuses, not outputs.
func TestRestoreFromSnapshotPagesOutputs(t *testing.T) {
	dir := testkit.TempDataDir(t)
	l, err := eventlog.Open(dir, eventlog.Options{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	ds := []events.Draft{queued("k", "old"), started("k", "old")}
	for i := range 2000 {
		ds = append(ds, line("k", "old", i))
	}
	ds = append(ds, finished("k", "old"), queued("k", "run"), started("k", "run"), line("k", "run", 0))
	testkit.AppendAll(t, l, ds)
	m := executions.New(executions.Options{}, l)
	r := projections.NewRunner(l, projections.Options{}, m)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, l.Last()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil { // the final snapshot
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := testkit.OpenLog(t, dir)
	seq, snap, ok, err := l2.LoadSnapshot(executions.Name)
	if err != nil || !ok || seq != l2.Last() {
		t.Fatalf("snapshot at %d (ok %v, %v), log ends at %d", seq, ok, err, l2.Last())
	}
	if len(snap) > 2048 || strings.Contains(string(snap), "line 1") {
		t.Fatalf("snapshot holds outputs (%d bytes)", len(snap))
	}
	f := start(t, l2, executions.Options{}, projections.Options{})
	if applied, _ := f.r.Progress(); applied != seq {
		t.Fatalf("restart replayed: applied %d, snapshot %d", applied, seq)
	}
	v := f.read(t, "old", 0)
	if v.Execution.Status != queue.StatusOK || len(v.Outputs) != 2000 {
		t.Fatalf("old after restart: %s with %d outputs", v.Execution.Status, len(v.Outputs))
	}
	all := logOutputs(t, l2, "old", 0)
	if v := f.read(t, "old", all[1500]); fmt.Sprint(seqs(v.Outputs)) != fmt.Sprint(all[1501:]) {
		t.Fatalf("old since %d: %d outputs", all[1500], len(v.Outputs))
	}
	// The running one keeps following: a new output is read from memory.
	vr := f.read(t, "run", 0)
	seq = appendOne(t, l2, line("k", "run", 1))
	f.sync(t)
	if !closed(vr.Changed) {
		t.Fatal("run's waiter not woken by its output after the restart")
	}
	if v := f.read(t, "run", 0); len(v.Outputs) != 2 || v.Outputs[1].Seq != seq {
		t.Fatalf("run after restart: %v", seqs(v.Outputs))
	}
}

// TestTruncatedOutputsAreAnError: a finished execution whose outputs left
// memory and then the retained log answers with an error naming the
// retention setting, never with fewer outputs.
func TestTruncatedOutputsAreAnError(t *testing.T) {
	const hint = "the server keeps the last N events (--retain-events)"
	l := testkit.OpenLogWith(t, testkit.TempDataDir(t), eventlog.Options{TruncatedHint: hint})
	f := start(t, l, executions.Options{MaxOutputBytes: 4 << 10}, projections.Options{})
	testkit.AppendAll(t, l, []events.Draft{queued("k", "old"), started("k", "old")})
	for i := range 200 {
		appendOne(t, l, line("k", "old", i))
	}
	appendOne(t, l, finished("k", "old"))
	testkit.AppendAll(t, l, []events.Draft{queued("k", "new"), started("k", "new")})
	for i := range 200 { // pushes old's outputs out of memory
		appendOne(t, l, line("k", "new", i))
	}
	f.sync(t)
	if got := len(f.read(t, "old", 0).Outputs); got != 200 {
		t.Fatalf("before truncation: %d outputs of old, want 200 (paged from the log)", got)
	}
	if _, err := l.TruncateBefore(l.Last()-10, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := f.m.Read(ctx, "old", 0)
	if !errors.Is(err, eventlog.ErrTruncated) || !strings.Contains(err.Error(), "--retain-events") {
		t.Fatalf("read of truncated outputs: %v, want an error wrapping eventlog.ErrTruncated naming the setting", err)
	}
	if v := f.read(t, "new", l.Last()-5); v.Execution.ID != "new" {
		t.Fatalf("the running execution: %+v", v.Execution)
	}
}

// TestReadIsBoundedInBytes: one Read returns at most MaxReadBytes of
// outputs (a single larger output alone), whether they are held in memory
// or paged from the log, and reading on from each cursor while More
// returns every output exactly once, in order. An execution that is not
// held any more (folded from the log) is bounded the same way.
func TestReadIsBoundedInBytes(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	const bound = 4 << 10
	f := start(t, l, executions.Options{MaxReadBytes: bound, MaxOutputBytes: 16 << 10, MaxFinished: 1}, projections.Options{})
	big := func(x string, i, n int) events.Draft {
		d := line("k", x, i)
		content, _ := json.Marshal(map[string]string{"name": "stdout", "text": fmt.Sprintf("%d %s\n", i, strings.Repeat("x", n))})
		p := d.Payload.(events.IOPubMessageReceived)
		p.Content = content
		d.Payload = p
		return d
	}
	appendOne(t, l, queued("k", "x1"))
	appendOne(t, l, started("k", "x1"))
	const n = 200
	for i := range n {
		size := 300
		if i == 77 {
			size = 3 * bound // larger than the bound: returned alone
		}
		appendOne(t, l, big("x1", i, size))
	}
	appendOne(t, l, finished("k", "x1"))
	f.sync(t)
	readAll := func(id string) {
		t.Helper()
		next, reads := 0, 0
		for since, more := uint64(0), true; more; reads++ {
			v, err := f.m.Read(context.Background(), id, since)
			if err != nil {
				t.Fatal(err)
			}
			size := 0
			for _, o := range v.Outputs {
				var c struct{ Text string }
				_ = json.Unmarshal(o.Content, &c)
				if !strings.HasPrefix(c.Text, fmt.Sprintf("%d ", next)) {
					t.Fatalf("read %d: output %q, want line %d", reads, c.Text[:min(len(c.Text), 20)], next)
				}
				next++
				size += len(o.Content)
			}
			if size > bound && len(v.Outputs) > 1 {
				t.Fatalf("read %d returned %d bytes in %d outputs, bound %d", reads, size, len(v.Outputs), bound)
			}
			since, more = v.Cursor, v.More
		}
		if next != n || reads < 2 {
			t.Fatalf("%d outputs in %d reads, want %d in several", next, reads, n)
		}
	}
	readAll("x1")
	// Another finished execution pushes x1's status out (MaxFinished 1): it is folded from the log.
	appendOne(t, l, queued("k", "x2"))
	appendOne(t, l, started("k", "x2"))
	appendOne(t, l, finished("k", "x2"))
	f.sync(t)
	if _, held := f.m.Get("x1"); held {
		t.Fatal("x1 is still held: the test does not reach the log path")
	}
	readAll("x1")
}

// TestSettledWakesOnceAtTheEnd: an execute waiting for its result is woken
// once, when its final event is applied — not by each of its outputs — and
// at once for an execution that has already settled.
func TestSettledWakesOnceAtTheEnd(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	testkit.AppendAll(t, l, []events.Draft{queued("k", "x"), started("k", "x")})
	seq := l.Last()
	f := start(t, l, executions.Options{}, projections.Options{})
	settled, release := f.m.Settled("x", seq)
	defer release()
	if settled == nil || closed(settled) {
		t.Fatal("a running execution's settle channel is nil or closed")
	}
	changed := f.read(t, "x", 0).Changed
	before := f.m.Stats().Wakes
	for i := range 50 {
		appendOne(t, l, line("k", "x", i))
	}
	f.sync(t)
	if closed(settled) {
		t.Fatal("output woke the settle channel")
	}
	if !closed(changed) {
		t.Fatal("output did not wake the change channel (the control)")
	}
	appendOne(t, l, finished("k", "x"))
	f.sync(t)
	if !closed(settled) {
		t.Fatal("the final event did not close the settle channel")
	}
	if w := f.m.Stats().Wakes - before; w != 2 {
		t.Fatalf("%d wake-ups, want 2: the change channel at the first output, the settle channel at the end", w)
	}
	again, release2 := f.m.Settled("x", seq)
	defer release2()
	if again == nil || !closed(again) {
		t.Fatal("a finished execution's settle channel is not closed at once")
	}
}

// TestSettledBeforeTheSubmitIsApplied: execute waits for an execution whose
// submit is not durable yet (the model only sees durable events): the wait
// is handed to the execution when its ExecutionQueued is applied, and it
// wakes at the end. A wait given up leaves nothing behind.
func TestSettledBeforeTheSubmitIsApplied(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	f := start(t, l, executions.Options{}, projections.Options{})
	next := l.Last() + 1
	settled, release := f.m.Settled("x", next)
	defer release()
	gone, giveUp := f.m.Settled("never-submitted", next)
	if settled == nil || gone == nil {
		t.Fatal("a wait for an execution not applied yet is nil")
	}
	if n := f.m.Stats().Awaiting; n != 2 {
		t.Fatalf("%d waits held, want 2", n)
	}
	giveUp()
	giveUp() // NB: idempotent
	if n := f.m.Stats().Awaiting; n != 1 {
		t.Fatalf("%d waits held after one was given up, want 1", n)
	}
	testkit.AppendAll(t, l, []events.Draft{queued("k", "x"), started("k", "x")})
	f.sync(t)
	if closed(settled) {
		t.Fatal("the settle channel closed when the execution was queued")
	}
	if n := f.m.Stats().Awaiting; n != 0 {
		t.Fatalf("%d waits held after the execution was applied, want 0", n)
	}
	testkit.AppendAll(t, l, []events.Draft{line("k", "x", 0), finished("k", "x")})
	f.sync(t)
	if !closed(settled) {
		t.Fatal("the settle channel did not close at the final event")
	}
}

// TestSettledWaitingForInput: input() settles an execute's wait (only the
// agent can answer it); after the answer a new wait waits for the end.
func TestSettledWaitingForInput(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	testkit.AppendAll(t, l, []events.Draft{queued("k", "x"), started("k", "x")})
	seq := l.Last()
	f := start(t, l, executions.Options{}, projections.Options{})
	settled, release := f.m.Settled("x", seq)
	defer release()
	x := events.ExecutionStream("x")
	appendOne(t, l, events.Draft{Stream: x, Kernel: "k", Payload: events.ExecutionInputRequested{ExecutionID: "x", Prompt: "name? "}})
	f.sync(t)
	if !closed(settled) {
		t.Fatal("input_required did not close the settle channel")
	}
	appendOne(t, l, events.Draft{Stream: x, Kernel: "k", Payload: events.ExecutionInputSent{ExecutionID: "x"}})
	f.sync(t)
	after, release2 := f.m.Settled("x", seq)
	defer release2()
	if closed(after) {
		t.Fatal("the settle channel is closed while the execution runs again after its input")
	}
	appendOne(t, l, finished("k", "x"))
	f.sync(t)
	if !closed(after) {
		t.Fatal("the settle channel did not close at the end")
	}
}

// TestSettledOfAnExecutionTheModelDropped: past the submit's seq, an id
// the model does not hold is not waited for (nil: read it from the log).
func TestSettledOfAnExecutionTheModelDropped(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var ds []events.Draft
	for i := range 5 {
		x := fmt.Sprint("x", i)
		ds = append(ds, queued("k", x), started("k", x), finished("k", x))
	}
	testkit.AppendAll(t, l, ds)
	seq := l.Last()
	f := start(t, l, executions.Options{MaxFinished: 2}, projections.Options{})
	settled, release := f.m.Settled("x0", seq)
	defer release()
	if settled != nil {
		t.Fatal("a dropped execution got a settle channel that would never close")
	}
	if n := f.m.Stats().Awaiting; n != 0 {
		t.Fatalf("%d waits held, want 0", n)
	}
}
