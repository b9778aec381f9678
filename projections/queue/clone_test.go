package queue

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestCloneIsIndependent: events applied to a clone leave the original as
// it was, and the clone ends exactly as a model that applied them all.
func TestCloneIsIndependent(t *testing.T) {
	f := &feeder{m: NewModel()}
	for i := range 4 {
		id := fmt.Sprint("x", i)
		f.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1"}, id)
	}
	f.add(events.ExecutionStarted{ExecutionID: "x0", KernelID: "k", MsgID: "m"}, "x0")
	f.add(events.ExecutionOutputLost{ExecutionID: "x0", Messages: 2, Reason: "gap"}, "x0")
	before := f.m.List("", "")
	beforeSnap, _ := f.m.Snapshot()

	direct := &feeder{m: NewModel(), seq: 0}
	replay := func(g *feeder) {
		for i := range 4 {
			id := fmt.Sprint("x", i)
			g.add(events.ExecutionQueued{ExecutionID: id, KernelID: "k", Code: "1"}, id)
		}
		g.add(events.ExecutionStarted{ExecutionID: "x0", KernelID: "k", MsgID: "m"}, "x0")
		g.add(events.ExecutionOutputLost{ExecutionID: "x0", Messages: 2, Reason: "gap"}, "x0")
	}
	replay(direct)
	more := func(g *feeder) {
		g.add(events.ExecutionOutputLost{ExecutionID: "x0", Messages: 1, Reason: "another"}, "x0")
		g.add(events.ExecutionFinished{ExecutionID: "x0", Status: "error", ErrorName: "E", Traceback: []string{"tb"}}, "x0")
		g.add(events.ExecutionStarted{ExecutionID: "x1", KernelID: "k", MsgID: "m1"}, "x1")
		g.add(events.ExecutionCancelled{ExecutionID: "x2", Reason: "r"}, "x2")
	}
	c := &feeder{m: f.m.Clone(), seq: f.seq}
	more(c)
	more(direct)
	if after := f.m.List("", ""); !reflect.DeepEqual(after, before) {
		t.Fatalf("the original changed with its clone:\n before %+v\n after  %+v", before, after)
	}
	if snap, _ := f.m.Snapshot(); string(snap) != string(beforeSnap) {
		t.Fatalf("the original's snapshot changed with its clone")
	}
	a, _ := c.m.Snapshot()
	b, _ := direct.m.Snapshot()
	if string(a) != string(b) || c.m.Depth("k") != direct.m.Depth("k") || c.m.Waiting("", "") != direct.m.Waiting("", "") {
		t.Fatalf("the clone after the same events differs from a direct fold:\n clone  %s\n direct %s", a, b)
	}
	if x, ok := c.m.Active("k"); !ok || x.ID != "x1" {
		t.Fatalf("the clone's running execution: %+v %v", x, ok)
	}
}
