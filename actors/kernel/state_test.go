package kernel

import (
	"errors"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

func TestKernelLifecycleTranscript(t *testing.T) {
	var s State
	var seq uint64
	apply := func(p events.Payload) {
		seq++
		s = Apply(s, events.Event{Seq: seq, Stream: "kernel/k", Kernel: "k", Type: p.EventType(), Payload: p})
	}
	if err := DecideStart(s); err != nil {
		t.Fatal(err)
	}
	if _, err := DecideInterrupt(s, ""); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("interrupt before start: %v", err)
	}
	apply(events.KernelStarted{KernelID: "k", Spec: "python3", Process: events.KernelProcess{Pid: 10}})
	if s.Status != StatusRunning || s.Process.Pid != 10 || DecideStart(s) == nil {
		t.Fatalf("started: %+v", s)
	}
	if d, err := DecideInterrupt(s, ""); err != nil || len(d) != 1 {
		t.Fatalf("interrupt: %v %v", d, err)
	}
	apply(events.KernelDied{KernelID: "k", Reason: "exit code 1"})
	if _, err := DecideInterrupt(s, ""); err == nil || s.Status != StatusDead {
		t.Fatalf("dead kernel must refuse interrupt: %+v %v", s, err)
	}
	if DecideRestart(s) != nil {
		t.Fatal("a dead kernel can be restarted")
	}
	apply(events.KernelRestarted{KernelID: "k", Process: events.KernelProcess{Pid: 11}})
	if s.Status != StatusRunning || s.Process.Pid != 11 || s.Restarts != 1 {
		t.Fatalf("restarted: %+v", s)
	}
	apply(events.KernelShutDown{KernelID: "k"})
	if DecideShutdown(s) == nil || DecideRestart(s) == nil {
		t.Fatalf("a shut-down kernel stays down: %+v", s)
	}
	if s.LastSeq != seq {
		t.Fatalf("LastSeq %d want %d", s.LastSeq, seq)
	}
}

// TestRestoreHoldTranscript: KernelRestarted{Restore} holds the kernel
// (State.Restore, RestoreSeq); FinishRestore records KernelRestored with
// this kernel's id and ends it; a second one, or one on a kernel never
// relaunched into restore, is refused (ErrNotHeld).
func TestRestoreHoldTranscript(t *testing.T) {
	var s State
	var seq uint64
	apply := func(p events.Payload) {
		seq++
		s = Apply(s, events.Event{Seq: seq, Stream: "kernel/k", Kernel: "k", Type: p.EventType(), Payload: p})
	}
	apply(events.KernelStarted{KernelID: "k", Spec: "python3", Process: events.KernelProcess{Pid: 10}})
	if _, err := DecideFinishRestore(s, FinishRestore{}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("not held: %v", err)
	}
	apply(events.KernelRestarted{KernelID: "k", Process: events.KernelProcess{Pid: 11}, Reason: "gone", Restore: "auto-k"})
	if s.Restore != "auto-k" || s.RestoreSeq != seq || s.Status != StatusRunning {
		t.Fatalf("held: %+v", s)
	}
	d, err := DecideFinishRestore(s, FinishRestore{Restored: events.KernelRestored{KernelID: "other", Checkpoint: "auto-k"}})
	if err != nil || len(d) != 1 || d[0].Stream != "kernel/k" || d[0].Payload.(events.KernelRestored).KernelID != "k" {
		t.Fatalf("finish: %+v %v", d, err)
	}
	apply(d[0].Payload)
	if s.Restore != "" || s.RestoreSeq != 0 {
		t.Fatalf("after KernelRestored: %+v", s)
	}
	if _, err := DecideFinishRestore(s, FinishRestore{}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("finished twice: %v", err)
	}
	apply(events.KernelRestarted{KernelID: "k", Process: events.KernelProcess{Pid: 12}, Restore: "auto-k"})
	apply(events.KernelShutDown{KernelID: "k"})
	if s.Restore != "" {
		t.Fatalf("a shut-down kernel holds no restore: %+v", s)
	}
}
