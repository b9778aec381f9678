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
