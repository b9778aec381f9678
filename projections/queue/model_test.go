package queue

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

type feeder struct {
	m   *Model
	seq uint64
}

func (f *feeder) add(p events.Payload, id string) {
	f.seq++
	_ = f.m.Apply(events.Event{Seq: f.seq, Time: time.Unix(int64(f.seq), 0).UTC(), Stream: events.ExecutionStream(id), Kernel: "k",
		Type: p.EventType(), Payload: p})
}

func TestModelQueueOrderAndBoundedMemory(t *testing.T) {
	f := &feeder{m: NewModel()}
	f.m.SetMaxFinished(5)
	for i := 0; i < 20; i++ {
		id := fmt.Sprint("x", i)
		f.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1"}, id)
	}
	if f.m.Depth("k") != 20 || f.m.Pending("k")[0].ID != "x0" {
		t.Fatalf("depth %d", f.m.Depth("k"))
	}
	for i := 0; i < 20; i++ {
		id := fmt.Sprint("x", i)
		f.add(events.ExecutionStarted{ExecutionID: id, KernelID: "k", MsgID: "m"}, id)
		if a, ok := f.m.Active("k"); !ok || a.ID != id {
			t.Fatalf("active %v", a)
		}
		f.add(events.ExecutionFinished{ExecutionID: id, Status: "ok", ExecutionCount: i + 1}, id)
	}
	if _, ok := f.m.Active("k"); ok || f.m.Depth("k") != 0 {
		t.Fatal("nothing should be active or pending")
	}
	if got := len(f.m.List("", "")); got != 5 {
		t.Fatalf("finished executions kept in memory: %d, want the bound 5", got)
	}
	if x, ok := f.m.Get("x19"); !ok || x.Status != StatusOK || x.ExecutionCount != 20 {
		t.Fatalf("newest kept: %+v", x)
	}
	snap, err := f.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back := NewModel()
	if err := back.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.List("", ""), f.m.List("", "")) || back.Seq() != f.m.Seq() {
		t.Fatal("snapshot round trip changed the model")
	}
}

// TestWaitingCountsPerPrincipal: the per-principal count of waiting
// executions (read on every submit by the queue quota, without a scan)
// follows queue, start and cancel, counts executions from before
// principals as the admin's, and survives a snapshot.
func TestWaitingCountsPerPrincipal(t *testing.T) {
	m := NewModel()
	seq := uint64(0)
	add := func(p events.Payload, id, by string) {
		seq++
		_ = m.Apply(events.Event{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Stream: events.ExecutionStream(id), Kernel: "k",
			Type: p.EventType(), Payload: p, Principal: by})
	}
	for i := 0; i < 3; i++ {
		add(events.ExecutionQueued{ExecutionID: fmt.Sprint("a", i), KernelID: "k", Code: "1"}, fmt.Sprint("a", i), "alice")
	}
	add(events.ExecutionQueued{ExecutionID: "b0", KernelID: "k2", Code: "1"}, "b0", "bob")
	add(events.ExecutionQueued{ExecutionID: "old", KernelID: "k2", Code: "1"}, "old", "")
	want := func(name string, alice, bob, admin int) {
		t.Helper()
		for _, c := range []struct {
			p string
			n int
		}{{"alice", alice}, {"bob", bob}, {"admin", admin}} {
			if got := m.Waiting(c.p, "admin"); got != c.n {
				t.Errorf("%s: Waiting(%s) = %d, want %d", name, c.p, got, c.n)
			}
		}
	}
	want("queued", 3, 1, 1)
	add(events.ExecutionStarted{ExecutionID: "a0", KernelID: "k", MsgID: "m"}, "a0", "alice")
	add(events.ExecutionCancelled{ExecutionID: "a1"}, "a1", "alice")
	add(events.ExecutionStarted{ExecutionID: "old", KernelID: "k2", MsgID: "m"}, "old", "")
	want("after a start and a cancel", 1, 1, 0)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m = NewModel()
	if err := m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	want("restored", 1, 1, 0)
}

// TestListByKernelFromIndex: a kernel's list comes from the per-kernel
// index, which follows drops of old finished executions and snapshots.
func TestListByKernelFromIndex(t *testing.T) {
	m := NewModel()
	m.SetMaxFinished(2)
	seq := uint64(0)
	add := func(p events.Payload, id, k string) {
		seq++
		_ = m.Apply(events.Event{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Stream: events.ExecutionStream(id), Kernel: k,
			Type: p.EventType(), Payload: p})
	}
	for i := 0; i < 4; i++ {
		for _, k := range []string{"k1", "k2"} {
			id := fmt.Sprint(k, "-", i)
			add(events.ExecutionQueued{ExecutionID: id, KernelID: k, Code: "1"}, id, k)
		}
	}
	ids := func(k string) []string {
		var out []string
		for _, x := range m.List(k, "") {
			out = append(out, x.ID)
		}
		return out
	}
	if got := ids("k1"); !reflect.DeepEqual(got, []string{"k1-0", "k1-1", "k1-2", "k1-3"}) {
		t.Fatalf("k1: %v", got)
	}
	for _, id := range []string{"k1-0", "k1-1", "k1-2"} {
		add(events.ExecutionCancelled{ExecutionID: id}, id, "k1")
	}
	if got := ids("k1"); !reflect.DeepEqual(got, []string{"k1-1", "k1-2", "k1-3"}) {
		t.Fatalf("k1 after k1-0 was dropped: %v", got)
	}
	snap, _ := m.Snapshot()
	m = NewModel()
	if err := m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if got := ids("k2"); len(got) != 4 || len(m.List("k1", StatusQueued)) != 1 {
		t.Fatalf("after restore: k2 %v, k1 queued %v", got, m.List("k1", StatusQueued))
	}
}

// TestPipelinedSurvivesSnapshotRestore: an execution pipelined behind the
// running one, restored from a snapshot, is shown running once the first
// ends; and a first one recorded lost after it ran (the kernel went on)
// starts it too, where one lost with its kernel would not.
func TestPipelinedSurvivesSnapshotRestore(t *testing.T) {
	f := &feeder{m: NewModel()}
	for _, id := range []string{"a", "b"} {
		f.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1"}, id)
	}
	f.add(events.ExecutionStarted{ExecutionID: "a", KernelID: "k", MsgID: "ma"}, "a")
	f.add(events.ExecutionStarted{ExecutionID: "b", KernelID: "k", MsgID: "mb", Behind: "a"}, "b")
	snap, err := f.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back := NewModel()
	back.behind["stale"] = "b" // NB: a reused model: Restore must reset the index
	if err := back.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if x, _ := back.Get("b"); x.Status != StatusQueued || x.Behind != "a" {
		t.Fatalf("restored pipelined execution: %+v", x)
	}
	g := &feeder{m: back, seq: f.seq}
	g.add(events.ExecutionFinished{ExecutionID: "a", Status: "ok", ExecutionCount: 1}, "a")
	if x, _ := back.Get("b"); x.Status != StatusRunning {
		t.Fatalf("after the first ended, the restored pipelined one is %s, want running", x.Status)
	}
	if len(back.behind) != 0 {
		t.Fatalf("behind index after restore and end: %v", back.behind)
	}

	h := &feeder{m: NewModel()}
	for _, id := range []string{"c", "d"} {
		h.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1"}, id)
	}
	h.add(events.ExecutionStarted{ExecutionID: "c", KernelID: "k", MsgID: "mc"}, "c")
	h.add(events.ExecutionStarted{ExecutionID: "d", KernelID: "k", MsgID: "md", Behind: "c"}, "d")
	h.add(events.ExecutionLost{ExecutionID: "c", Reason: "ran while the server was down", Ran: true}, "c")
	if x, _ := h.m.Get("d"); x.Status != StatusRunning {
		t.Fatalf("after the first was recorded lost (it ran), the pipelined one is %s, want running", x.Status)
	}
	// A loss with the kernel (it died): the pipelined one never started.
	for _, id := range []string{"e", "f"} {
		h.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k2", Code: "1"}, id)
	}
	h.add(events.ExecutionStarted{ExecutionID: "e", KernelID: "k2", MsgID: "me"}, "e")
	h.add(events.ExecutionStarted{ExecutionID: "f", KernelID: "k2", MsgID: "mf", Behind: "e"}, "f")
	h.add(events.ExecutionLost{ExecutionID: "e", Reason: "the kernel died"}, "e")
	if x, _ := h.m.Get("f"); x.Status != StatusQueued {
		t.Fatalf("after the first was lost with its kernel, the pipelined one is %s, want still queued", x.Status)
	}
}
