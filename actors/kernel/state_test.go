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
