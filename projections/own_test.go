package projections_test

import (
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// TestWrittenByFoldsOnlyItsNode: a model wrapped for node b ignores the
// records node a wrote, folds b's, and keeps the model's name.
func TestWrittenByFoldsOnlyItsNode(t *testing.T) {
	km := kernels.New()
	p := projections.WrittenBy("b", km)
	if p.Name() != km.Name() {
		t.Fatalf("name %q, want the model's %q", p.Name(), km.Name())
	}
	for i, node := range []string{"a", "b"} {
		id := "k-" + node
		e := events.Event{Seq: uint64(i + 1), Stream: events.KernelStream(id), Kernel: id, Node: node, Type: events.TypeKernelStarted,
			Payload: events.KernelStarted{KernelID: id, Spec: "python3"}}
		if err := p.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := km.Get("k-a"); ok {
		t.Fatal("the model wrapped for b folded a's KernelStarted")
	}
	if _, ok := km.Get("k-b"); !ok {
		t.Fatal("the model wrapped for b did not fold b's KernelStarted")
	}
}
