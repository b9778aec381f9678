package kernels

import (
	"reflect"
	"sync"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

func share(kernel, principal, access string) events.KernelShared {
	return events.KernelShared{KernelID: kernel, Principal: principal, Access: access}
}

func TestOwnerAndSharesFold(t *testing.T) {
	m := New()
	owned := started("k1", 10)
	owned.Owner = "alice"
	for i, p := range []events.Payload{owned, share("k1", "bob", events.AccessRead), share("k1", "carol", events.AccessExecute),
		share("k1", "bob", events.AccessExecute), share("k1", "carol", events.AccessNone)} {
		if err := m.Apply(ev(uint64(i+1), "k1", p)); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := m.Get("k1")
	if k.Owner != "alice" || !reflect.DeepEqual(k.Shares, map[string]string{"bob": "execute"}) {
		t.Fatalf("owner %q shares %v, want alice and bob:execute", k.Owner, k.Shares)
	}
	if k.SharedWith("bob") != "execute" || k.SharedWith("carol") != "" {
		t.Fatalf("SharedWith: bob %q carol %q", k.SharedWith("bob"), k.SharedWith("carol"))
	}
	// Withdrawing the last share leaves none at all.
	if err := m.Apply(ev(6, "k1", share("k1", "bob", events.AccessNone))); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Get("k1"); k.Shares != nil {
		t.Fatalf("shares after every one was withdrawn: %v", k.Shares)
	}
}

// TestSharesAreCopiedOnRead: a caller changing the map it was handed
// changes nothing in the model, and reading while shares are applied does
// not race (run with -race).
func TestSharesAreCopiedOnRead(t *testing.T) {
	m := New()
	if err := m.Apply(ev(1, "k1", started("k1", 10))); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(ev(2, "k1", share("k1", "bob", events.AccessRead))); err != nil {
		t.Fatal(err)
	}
	k, _ := m.Get("k1")
	k.Shares["mallory"] = events.AccessExecute
	l := m.List()
	l[0].Shares["eve"] = events.AccessExecute
	if k, _ := m.Get("k1"); !reflect.DeepEqual(k.Shares, map[string]string{"bob": "read"}) {
		t.Fatalf("a caller's change reached the model: %v", k.Shares)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 500 {
			access := events.AccessRead
			if i%2 == 1 {
				access = events.AccessNone
			}
			_ = m.Apply(ev(uint64(3+i), "k1", share("k1", "dave", access)))
		}
	}()
	for range 500 {
		for _, k := range m.List() {
			for range k.Shares {
			}
		}
		if k, ok := m.Get("k1"); ok {
			_ = k.Shares["dave"]
		}
	}
	wg.Wait()
}

func TestSnapshotKeepsOwnerAndShares(t *testing.T) {
	m := New()
	owned := started("k1", 10)
	owned.Owner = "alice"
	_ = m.Apply(ev(1, "k1", owned))
	_ = m.Apply(ev(2, "k1", share("k1", "bob", events.AccessRead)))
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	if k, _ := r.Get("k1"); k.Owner != "alice" || k.SharedWith("bob") != "read" {
		t.Fatalf("restored owner %q shares %v", k.Owner, k.Shares)
	}
	// A snapshot written before principals existed restores with no owner
	// (the admin's) and no shares.
	old := []byte(`{"version":1,"kernels":[{"id":"k0","spec":"python3","state":"running","busy":false,"seq":3}]}`)
	if err := r.Restore(old); err != nil {
		t.Fatalf("restore a snapshot from before principals: %v", err)
	}
	if k, ok := r.Get("k0"); !ok || k.Owner != "" || k.Shares != nil {
		t.Fatalf("old snapshot restored as %+v", k)
	}
}

// TestFailedStartIsItsStarters: a KernelStartFailed carries no owner in
// its payload; the model takes it from the event's principal, so bob's
// failed start is bob's, not the admin's.
func TestFailedStartIsItsStarters(t *testing.T) {
	m := New()
	e := ev(1, "k1", events.KernelStartFailed{KernelID: "k1", Spec: "python3", Reason: "no such spec"})
	e.Principal = "bob"
	if err := m.Apply(e); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Get("k1"); k.Owner != "bob" {
		t.Fatalf("a failed start by bob is owned by %q", k.Owner)
	}
}

// TestLiveCountPerOwner: the per-owner count of starting or running
// kernels (read by the kernel quota on every start) follows starts, deaths,
// restarts and shutdowns, counts kernels from before principals as the
// admin's, and survives a snapshot.
func TestLiveCountPerOwner(t *testing.T) {
	m := New()
	apply := func(seq uint64, k string, p events.Payload) {
		t.Helper()
		if err := m.Apply(ev(seq, k, p)); err != nil {
			t.Fatal(err)
		}
	}
	owned := func(id, owner string) events.KernelStarted {
		s := started(id, 10)
		s.Owner = owner
		return s
	}
	want := func(name string, alice, bob, admin int) {
		t.Helper()
		for _, c := range []struct {
			p string
			n int
		}{{"alice", alice}, {"bob", bob}, {"admin", admin}} {
			if got := m.LiveCount(c.p, "admin"); got != c.n {
				t.Errorf("%s: LiveCount(%s) = %d, want %d", name, c.p, got, c.n)
			}
		}
	}
	apply(1, "a1", owned("a1", "alice"))
	apply(2, "a2", owned("a2", "alice"))
	apply(3, "b1", owned("b1", "bob"))
	apply(4, "old", owned("old", ""))
	apply(5, "a1", share("a1", "bob", events.AccessRead))
	want("started", 2, 1, 1)
	apply(6, "a1", events.KernelDied{KernelID: "a1", Reason: "exit"})
	apply(7, "b1", events.KernelShutDown{KernelID: "b1", Reason: "requested"})
	want("after a death and a shutdown", 1, 0, 1)
	apply(8, "a1", events.KernelRestarted{KernelID: "a1", Process: events.KernelProcess{Pid: 11}})
	want("after a restart", 2, 0, 1)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m = New()
	if err := m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	want("restored", 2, 0, 1)
}
