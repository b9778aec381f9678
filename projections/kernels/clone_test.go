package kernels

import (
	"reflect"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestCloneIsIndependent: a share, a session and a restart applied to a
// clone leave the original as it was (its kernels' maps and slices
// included), and the clone ends as a model that applied them all.
func TestCloneIsIndependent(t *testing.T) {
	first := []events.Event{
		ev(1, "k1", events.KernelStarted{KernelID: "k1", Spec: "python3", Owner: "alice"}),
		ev(2, "k1", events.KernelShared{KernelID: "k1", Principal: "bob", Access: events.AccessRead}),
		ev(3, "k1", events.KernelSessionOpened{KernelID: "k1", SessionID: "s1", Path: "a.ipynb"}),
	}
	more := []events.Event{
		ev(4, "k1", events.KernelShared{KernelID: "k1", Principal: "carol", Access: events.AccessExecute}),
		ev(5, "k1", events.KernelSessionOpened{KernelID: "k1", SessionID: "s1", Path: "moved.ipynb"}),
		ev(6, "k1", events.KernelRestarted{KernelID: "k1"}),
		ev(7, "k2", events.KernelStarted{KernelID: "k2", Spec: "python3", Owner: "bob"}),
	}
	m, direct := New(), New()
	for _, e := range first {
		_ = m.Apply(e)
		_ = direct.Apply(e)
	}
	before := m.List()
	c := m.Clone()
	for _, e := range more {
		if err := c.Apply(e); err != nil {
			t.Fatal(err)
		}
		_ = direct.Apply(e)
	}
	if after := m.List(); !reflect.DeepEqual(after, before) {
		t.Fatalf("the original changed with its clone:\n before %+v\n after  %+v", before, after)
	}
	if !reflect.DeepEqual(c.List(), direct.List()) || c.LiveCount("bob", "admin") != direct.LiveCount("bob", "admin") {
		t.Fatalf("the clone after the same events differs from a direct fold:\n clone  %+v\n direct %+v", c.List(), direct.List())
	}
	if _, s, ok := c.FindSession("s1"); !ok || s.Path != "moved.ipynb" {
		t.Fatalf("the clone's session: %+v %v", s, ok)
	}
}
