package restores

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// ev builds an event as the runner hands it over: envelope and raw
// payload (the model decodes nothing).
func ev(seq uint64, stream, kernel string, p events.Payload) events.Event {
	raw, _ := json.Marshal(p)
	return events.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Stream: stream, Kernel: kernel,
		Type: p.EventType(), Version: 1, Raw: raw}
}

// TestRestoresTranscript: Friday's executions, the relaunch that lost x2,
// x3 queued before the restore and run after it, the restore, the server's
// idle auto-checkpoint save and a Jupyter frontend's execution (neither
// is the agent's), then x4 (the first an MCP caller queued after it) and
// x5. Affects picks x2, x3 and x4; a second
// restore starts over; a snapshot keeps all of it; a shutdown forgets the
// kernel.
func TestRestoresTranscript(t *testing.T) {
	m := New()
	apply := func(e events.Event) {
		t.Helper()
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	queued := func(seq uint64, id, kernel string) events.Event {
		e := ev(seq, events.ExecutionStream(id), kernel, events.ExecutionQueued{ExecutionID: id, KernelID: kernel})
		e.Principal = "agent"
		return e
	}
	// The server's own execution (an auto-checkpoint save, the culler's
	// save) names no principal and skips the history.
	serverSave := func(seq uint64, id, kernel string) events.Event {
		return ev(seq, events.ExecutionStream(id), kernel, events.ExecutionQueued{ExecutionID: id, KernelID: kernel, SkipHistory: true})
	}
	// A Jupyter frontend's execution names who authenticated and its Origin.
	frontend := func(seq uint64, id, kernel string) events.Event {
		e := ev(seq, events.ExecutionStream(id), kernel, events.ExecutionQueued{ExecutionID: id, KernelID: kernel,
			Origin: &events.Origin{Kind: events.OriginFrontend, Session: "s1"}})
		e.Principal = "agent"
		return e
	}
	apply(queued(1, "x1", "k"))
	apply(queued(2, "x2", "k"))
	apply(queued(3, "x3", "k"))
	apply(queued(4, "y1", "other"))
	if _, ok := m.Get("k"); ok {
		t.Fatal("a kernel never restored has a restore")
	}
	apply(ev(10, events.KernelStream("k"), "k", events.KernelRestored{KernelID: "k", Checkpoint: "auto-k", Lost: []string{"x2"}}))
	apply(queued(11, "y2", "other"))
	apply(serverSave(12, "save1", "k"))
	apply(frontend(13, "f1", "k"))
	if a, _ := m.Get("k"); a.First != "" {
		t.Fatalf("the server's save or a frontend's execution took the agent's notice: first %q", a.First)
	}
	apply(queued(14, "x4", "k"))
	apply(queued(15, "x5", "k"))
	a, ok := m.Get("k")
	if !ok || a.Seq != 10 || a.First != "x4" {
		t.Fatalf("after the restore of k: %+v %v", a, ok)
	}
	r := Restore{Seq: a.Seq, Lost: []string{"x2"}, FirstAfter: a.First}
	for _, c := range []struct {
		id           string
		queued, last uint64
		want         bool
	}{
		{"x1", 1, 5, false},  // Friday's, ended before the restore
		{"x2", 2, 9, true},   // lost by the relaunch
		{"x3", 3, 14, true},  // queued before, ran after
		{"x4", 14, 16, true}, // the first one an MCP caller queued after
		{"x5", 15, 17, false},
		{"save1", 12, 13, false}, // the server's save
		{"f1", 13, 14, false},    // a frontend's
	} {
		if got := r.Affects(c.id, c.queued, c.last); got != c.want {
			t.Errorf("Affects(%s) = %v, want %v", c.id, got, c.want)
		}
	}
	if (Restore{}).Affects("x4", 12, 15) {
		t.Error("no restore affects nothing")
	}
	if _, ok := m.Get("other"); ok {
		t.Fatal("another kernel's executions made it restored")
	}

	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back := New()
	if err := back.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if b, _ := back.Get("k"); b != a {
		t.Fatalf("snapshot round trip: %+v, want %+v", b, a)
	}

	apply(ev(20, events.KernelStream("k"), "k", events.KernelRestored{KernelID: "k", Error: "no auto-checkpoint"}))
	if a, _ := m.Get("k"); a.Seq != 20 || a.First != "" {
		t.Fatalf("a later restore starts over: %+v", a)
	}
	apply(ev(21, events.KernelStream("k"), "k", events.KernelShutDown{KernelID: "k"}))
	if _, ok := m.Get("k"); ok || m.Len() != 0 {
		t.Fatal("a shut down kernel keeps its restore")
	}
}
