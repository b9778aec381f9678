package kernels

import (
	"reflect"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestRelaunchedKernelKeepsItsLastRestore: a kernel the server relaunched
// at start is running with the reason, restoring its checkpoint until
// KernelRestored; the last KernelRestored is kept with its seq (a later
// one replaces it), survives a snapshot, and Get hands out a copy.
func TestRelaunchedKernelKeepsItsLastRestore(t *testing.T) {
	m := New()
	reason := "the kernel process was gone when the server started (attach kernel pid 10: process gone): a fresh process runs under the same id"
	first := events.KernelRestored{KernelID: "k1", Checkpoint: "auto-k1", SavedAt: t0, Restored: []string{"a", "b"},
		Skipped: []events.CheckpointVariable{{Name: "conn", Reason: "cannot pickle socket"}}, Mismatched: []string{"numpy==1.26.4"}, Lost: []string{"x9"}}
	for i, p := range []events.Payload{
		started("k1", 10), events.KernelRestarted{KernelID: "k1", Process: events.KernelProcess{Pid: 11}, Reason: reason, Restore: "auto-k1"},
	} {
		if err := m.Apply(ev(uint64(i+1), "k1", p)); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := m.Get("k1")
	if k.State != StateRunning || k.Pid != 11 || k.RestartReason != reason || k.Restoring != "auto-k1" || k.Restored != nil {
		t.Fatalf("relaunched, restore under way: %+v", k)
	}
	if err := m.Apply(ev(3, "k1", first)); err != nil {
		t.Fatal(err)
	}
	k, _ = m.Get("k1")
	if k.Restoring != "" || k.RestoredSeq != 3 || !reflect.DeepEqual(*k.Restored, first) || k.State != StateRunning {
		t.Fatalf("restored: %+v", k)
	}
	k.Restored.Restored[0] = "changed"
	if again, _ := m.Get("k1"); again.Restored.Restored[0] != "a" {
		t.Fatal("Get handed out the model's KernelRestored, not a copy")
	}

	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Get("k1"); got.RestoredSeq != 3 || !got.Restored.SavedAt.Equal(first.SavedAt) || !reflect.DeepEqual(got.Restored.Skipped, first.Skipped) {
		t.Fatalf("after a snapshot: %+v", got.Restored)
	}

	second := events.KernelRestored{KernelID: "k1", Error: "no auto-checkpoint of kernel k1 was saved"}
	_ = m.Apply(ev(4, "k1", events.KernelRestarted{KernelID: "k1", Process: events.KernelProcess{Pid: 12}, Reason: reason, Restore: "auto-k1"}))
	_ = m.Apply(ev(5, "k1", second))
	_ = m.Apply(ev(6, "k1", events.KernelRestarted{KernelID: "k1", Process: events.KernelProcess{Pid: 13}}))
	k, _ = m.Get("k1")
	if k.RestoredSeq != 5 || k.Restored.Error != second.Error || k.RestartReason != "" || k.Restoring != "" || k.Restarts != 3 {
		t.Fatalf("the last restore is kept; a requested restart has no reason: %+v", k)
	}
}
