package kernels

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestSessionsAndFrontendsTranscript: the model keeps, per kernel, the
// Jupyter sessions open (opened, changed, moved to another kernel, closed,
// all gone at shutdown), the frontend sessions attached with the seq of
// their last FrontendAttached, and the time of its last event; a snapshot
// keeps all of it.
func TestSessionsAndFrontendsTranscript(t *testing.T) {
	m := New()
	var seq uint64
	apply := func(kernel string, p events.Payload) {
		t.Helper()
		seq++
		if err := m.Apply(ev(seq, kernel, p)); err != nil {
			t.Fatal(err)
		}
	}
	apply("k1", started("k1", 10))
	apply("k2", started("k2", 11))
	apply("k1", events.KernelSessionOpened{KernelID: "k1", SessionID: "a", Path: "x.ipynb", Type: "notebook"})
	apply("k1", events.KernelSessionOpened{KernelID: "k1", SessionID: "b", Path: "c.py", Type: "console"})
	apply("k1", events.KernelSessionOpened{KernelID: "k1", SessionID: "a", Path: "y.ipynb", Type: "notebook"})
	apply("k1", events.FrontendAttached{KernelID: "k1", Session: "f1", Username: "ann", Framing: "legacy"})
	apply("k1", events.FrontendAttached{KernelID: "k1", Session: "f2", Framing: "v1.kernel.websocket.jupyter.org"})
	apply("k1", events.FrontendAttached{KernelID: "k1", Session: "f1", Username: "ann", Framing: "legacy"})
	attachedAgain := seq
	k, _ := m.Get("k1")
	if len(k.Sessions) != 2 || k.Sessions[0].ID != "a" || k.Sessions[0].Path != "y.ipynb" || k.Sessions[1].ID != "b" {
		t.Fatalf("sessions: %+v", k.Sessions)
	}
	if len(k.Frontends) != 2 || k.Frontends[1].Session != "f1" || k.Frontends[1].Seq != attachedAgain || k.Frontends[1].Username != "ann" {
		t.Fatalf("frontends: %+v", k.Frontends)
	}
	if !k.LastActivity.Equal(t0.Add(secs(attachedAgain))) {
		t.Fatalf("last activity %v, want the time of the last event about it", k.LastActivity)
	}
	if f, ok := m.Frontend("k1", "f2"); !ok || f.Framing != "v1.kernel.websocket.jupyter.org" {
		t.Fatalf("frontend f2: %+v %v", f, ok)
	}
	if kid, s, ok := m.FindSession("b"); !ok || kid != "k1" || s.Path != "c.py" {
		t.Fatalf("find b: %s %+v %v", kid, s, ok)
	}

	// Moved to another kernel (PATCH kernel), then closed, then shut down.
	apply("k2", events.KernelSessionOpened{KernelID: "k2", SessionID: "b", Path: "c.py", Type: "console"})
	if kid, _, _ := m.FindSession("b"); kid != "k2" {
		t.Fatalf("b moved to k2, found on %q", kid)
	}
	if k, _ := m.Get("k1"); len(k.Sessions) != 1 {
		t.Fatalf("k1 keeps a moved session: %+v", k.Sessions)
	}
	if got := m.SessionsByPath("y.ipynb"); len(got) != 1 || got[0].KernelID != "k1" || got[0].Session.ID != "a" {
		t.Fatalf("by path: %+v", got)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	apply("k2", events.KernelSessionClosed{KernelID: "k2", SessionID: "b", Reason: "deleted"})
	apply("k1", events.KernelShutDown{KernelID: "k1", Reason: "requested"})
	if _, _, ok := m.FindSession("a"); ok || len(m.AllSessions()) != 0 {
		t.Fatalf("sessions after close and shutdown: %+v", m.AllSessions())
	}

	restored := New()
	if err := restored.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if all := restored.AllSessions(); len(all) != 2 || all[0].Session.ID != "a" || all[1].KernelID != "k2" {
		t.Fatalf("restored sessions: %+v", all)
	}
	if f, ok := restored.Frontend("k1", "f1"); !ok || f.Seq != attachedAgain {
		t.Fatalf("restored frontend: %+v %v", f, ok)
	}
}

// TestPerKernelTablesAreBounded: at most MaxSessions sessions and
// MaxFrontends frontends per kernel, the oldest going first.
func TestPerKernelTablesAreBounded(t *testing.T) {
	m := New()
	var seq uint64
	apply := func(p events.Payload) {
		t.Helper()
		seq++
		if err := m.Apply(ev(seq, "k", p)); err != nil {
			t.Fatal(err)
		}
	}
	apply(started("k", 1))
	for i := range MaxSessions + 2 {
		apply(events.KernelSessionOpened{KernelID: "k", SessionID: fmt.Sprint("s", i), Path: "p"})
		apply(events.FrontendAttached{KernelID: "k", Session: fmt.Sprint("f", i)})
	}
	k, _ := m.Get("k")
	if len(k.Sessions) != MaxSessions || k.Sessions[0].ID != "s2" || len(k.Frontends) != MaxFrontends || k.Frontends[0].Session != "f2" {
		t.Fatalf("%d sessions (first %s), %d frontends (first %s)", len(k.Sessions), k.Sessions[0].ID, len(k.Frontends), k.Frontends[0].Session)
	}
	if _, _, ok := m.FindSession("s0"); ok || len(m.sessions) != MaxSessions {
		t.Fatalf("the index keeps %d sessions", len(m.sessions))
	}
}

// TestGetTakesTheUUIDForm: a kernel is found by either form of its id.
func TestGetTakesTheUUIDForm(t *testing.T) {
	m := New()
	id := "01m8sdgtc5gzrf8ewvmpf4xt7d"
	uuid, _ := events.UUIDForm(id)
	if err := m.Apply(ev(1, id, started(id, 1))); err != nil {
		t.Fatal(err)
	}
	if k, ok := m.Get(uuid); !ok || k.ID != id {
		t.Fatalf("Get(%s): %+v %v", uuid, k, ok)
	}
	if owner, _, ok := m.Ownership(uuid, "bob"); !ok || owner != "" {
		t.Fatalf("Ownership(%s): %q %v", uuid, owner, ok)
	}
}

func secs(n uint64) time.Duration { return time.Duration(n) * time.Second }
