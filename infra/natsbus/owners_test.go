package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// singleJS is a JetStream client on one embedded server (natsbus.Open).
func singleJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	s, err := natsbus.Open(natsbus.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// startOwners opens and starts node's Owners (retrying while a new
// cluster elects its JetStream leaders); the test closes it.
func startOwners(t testing.TB, js jetstream.JetStream, node string, lease time.Duration, replicas int) *natsbus.Owners {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		o, err := natsbus.OpenOwners(octx, js, node, natsbus.OwnersOptions{Lease: lease, Replicas: replicas})
		if err == nil {
			err = o.Start(octx)
		}
		ocancel()
		if err == nil {
			t.Cleanup(func() { _ = o.Close(context.Background()) })
			return o
		}
		if ctx.Err() != nil {
			t.Fatalf("start owners of %s: %v", node, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20ms until it holds or d passed.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func notOwner(t testing.TB, err error) *natsbus.NotOwnerError {
	t.Helper()
	var ne *natsbus.NotOwnerError
	if !errors.As(err, &ne) {
		t.Fatalf("want a *NotOwnerError, got %v", err)
	}
	return ne
}

func TestOwnersClaimRenewHeld(t *testing.T) {
	js := singleJS(t)
	const lease = time.Second
	a := startOwners(t, js, "a", lease, 1)
	b := startOwners(t, js, "b", lease, 1)
	ctx := ctxT(t, 30*time.Second)

	l, err := a.Claim(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if l.Node != "a" || l.Kernel != "k1" || l.Revision == 0 {
		t.Fatalf("claim: %+v", l)
	}
	if err := a.Held("k1"); err != nil {
		t.Fatalf("held right after the claim: %v", err)
	}
	// Another node's claim of the same kernel is refused, naming the owner.
	_, err = b.Claim(ctx, "k1")
	if ne := notOwner(t, err); ne.Owner != "a" || ne.Reason != natsbus.ReasonOwnedElsewhere {
		t.Fatalf("b's claim: %+v", ne)
	}
	eventually(t, 5*time.Second, "b sees a as the owner", func() bool {
		o, ok := b.Owner("k1")
		return ok && o.Node == "a"
	})
	if ne := notOwner(t, b.Held("k1")); ne.Reason != natsbus.ReasonOwnedElsewhere || !strings.Contains(ne.Error(), "owned by node a") {
		t.Fatalf("b.Held: %v", ne)
	}
	if ne := notOwner(t, a.Held("nope")); ne.Reason != natsbus.ReasonNoLease {
		t.Fatalf("a.Held of an unknown kernel: %v", ne)
	}

	// Renewals keep it held across several leases, each a new revision,
	// and b never sees it lapse.
	until := time.Now().Add(3 * lease)
	for time.Now().Before(until) {
		if err := a.Held("k1"); err != nil {
			t.Fatalf("held while renewing: %v", err)
		}
		select {
		case x := <-b.Lapsed():
			t.Fatalf("b saw a renewed lease lapse: %+v", x)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if o, _ := b.Owner("k1"); o.Revision <= l.Revision+3 {
		t.Fatalf("after 3 leases the revision is %d (claimed at %d): not renewed every lease/3", o.Revision, l.Revision)
	}

	// a stops renewing (its node stops): Held fails within lease − lease/4
	// of the last renewal, and says so; b sees the lease lapse.
	stopped := time.Now()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, lease, "a no longer holds k1 once it stopped renewing", func() bool { return a.Held("k1") != nil })
	ne := notOwner(t, a.Held("k1"))
	if ne.Reason != natsbus.ReasonNotRenewed || !strings.Contains(ne.Error(), "node a cannot prove it owns kernel k1") ||
		!strings.Contains(ne.Error(), "nothing was run") || ne.Ago < 3*lease/4 {
		t.Fatalf("a.Held after stopping: %v (ago %s)", ne, ne.Ago)
	}
	var lapsed natsbus.Lease
	select {
	case lapsed = <-b.Lapsed():
	case <-time.After(3 * lease):
		t.Fatal("b never saw k1 lapse")
	}
	if since := time.Since(stopped); since < lease-lease/3 {
		t.Fatalf("k1 lapsed %s after its owner stopped: before a whole lease since its last renewal", since)
	}
	if lapsed.Kernel != "k1" || lapsed.Node != "a" {
		t.Fatalf("lapsed: %+v", lapsed)
	}
	taken, err := b.Take(ctx, lapsed)
	if err != nil {
		t.Fatal(err)
	}
	if taken.Node != "b" || taken.Revision <= lapsed.Revision {
		t.Fatalf("taken: %+v", taken)
	}
	if err := b.Held("k1"); err != nil {
		t.Fatalf("b.Held after taking: %v", err)
	}
}

func TestOwnersTakeRefused(t *testing.T) {
	js := singleJS(t)
	const lease = time.Second
	a := startOwners(t, js, "a", lease, 1)
	b := startOwners(t, js, "b", lease, 1)
	c := startOwners(t, js, "c", lease, 1)
	ctx := ctxT(t, 30*time.Second)
	l, err := a.Claim(ctx, "k2")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b sees k2", func() bool { _, ok := b.Owner("k2"); return ok })
	// A live lease is not taken.
	if _, err := b.Take(ctx, l); !errors.Is(err, natsbus.ErrLeaseLive) {
		t.Fatalf("take of a live lease: %v", err)
	}
	eventually(t, 2*lease, "a renews k2", func() bool { o, _ := b.Owner("k2"); return o.Revision > l.Revision })
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var lapsed natsbus.Lease
	select {
	case lapsed = <-b.Lapsed():
	case <-time.After(3 * lease):
		t.Fatal("b never saw k2 lapse")
	}
	// A stale revision (an earlier renewal's) is refused by the bucket.
	stale := lapsed
	stale.Revision = l.Revision
	if _, err := b.Take(ctx, stale); !errors.Is(err, natsbus.ErrTakenByOther) {
		t.Fatalf("take with a stale revision: %v", err)
	}
	if _, err := b.Take(ctx, lapsed); err != nil {
		t.Fatal(err)
	}
	// c, offered the same lapsed revision, loses: b took it.
	if _, err := c.Take(ctx, lapsed); !errors.Is(err, natsbus.ErrTakenByOther) {
		t.Fatalf("c's take after b's: %v", err)
	}
	if err := c.Held("k2"); err == nil {
		t.Fatal("c holds k2 after losing the take")
	}
}

func TestOwnersReleaseAndResume(t *testing.T) {
	js := singleJS(t)
	const lease = time.Second
	a := startOwners(t, js, "a", lease, 1)
	b := startOwners(t, js, "b", lease, 1)
	ctx := ctxT(t, 30*time.Second)
	for _, k := range []string{"k3", "k4"} {
		if _, err := a.Claim(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Release(ctx, "k3"); err != nil {
		t.Fatal(err)
	}
	if ne := notOwner(t, a.Held("k3")); ne.Reason == natsbus.ReasonNotRenewed {
		t.Fatalf("a released k3 but Held says %v", ne)
	}
	eventually(t, 5*time.Second, "b sees k3 released and k4 owned", func() bool {
		_, k3 := b.Owner("k3")
		k4, _ := b.Owner("k4")
		return !k3 && k4.Node == "a"
	})
	// A released kernel never lapses; a new claim of its id works.
	if _, err := b.Claim(ctx, "k3"); err != nil {
		t.Fatalf("claim of a released kernel: %v", err)
	}
	// a restarts within the lease: it resumes k4 (nobody took it).
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a2 := startOwners(t, js, "a", lease, 1)
	if err := a2.Held("k4"); err != nil {
		t.Fatalf("a restarted within the lease does not hold k4: %v", err)
	}
	select {
	case x := <-b.Lapsed():
		if x.Kernel == "k4" {
			// NB: a lapse seen while a was down is fine only if the take fails now.
			if _, err := b.Take(ctx, x); !errors.Is(err, natsbus.ErrTakenByOther) && !errors.Is(err, natsbus.ErrLeaseLive) {
				t.Fatalf("b took k4 from a resumed a: %v", err)
			}
		}
	case <-time.After(2 * lease):
	}
}

func TestOwnersPlace(t *testing.T) {
	js := singleJS(t)
	const lease = 2 * time.Second
	a := startOwners(t, js, "a", lease, 1)
	b := startOwners(t, js, "b", lease, 1)
	a.Announce(natsbus.NodeInfo{MemAvailable: 8 << 30, Specs: []string{"python3"}})
	b.Announce(natsbus.NodeInfo{MemAvailable: 4 << 30, Specs: []string{"python3", "ir"}})
	ctx := ctxT(t, 30*time.Second)
	// Heartbeats go out every lease/3.
	eventually(t, 3*lease, "a sees b's announced memory", func() bool {
		for _, n := range a.Nodes() {
			if n.Name == "b" && n.MemAvailable == 4<<30 {
				return true
			}
		}
		return false
	})
	if got := a.Place("python3"); got != "a" {
		t.Fatalf("equal kernels: the node with more memory should win, got %s", got)
	}
	if got := a.Place("ir"); got != "b" {
		t.Fatalf("only b has the ir spec, got %s", got)
	}
	for _, k := range []string{"p1", "p2"} {
		if _, err := a.Claim(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Place("python3"); got != "b" {
		t.Fatalf("a runs 2 kernels, b none: want b, got %s", got)
	}
	eventually(t, 5*time.Second, "b sees a's claims", func() bool { return b.Place("python3") == "b" })
}

// TestOwnersClusterRaceTake: on a 3-node cluster (R3 buckets), nodes b and
// c race to take each lapsed lease of a stopped node a: exactly one wins
// each kernel.
func TestOwnersClusterRaceTake(t *testing.T) {
	cl := startJSCluster(t, 3)
	const lease = 2 * time.Second
	a := startOwners(t, cl.js(t, 0), "a", lease, 3)
	b := startOwners(t, cl.js(t, 1), "b", lease, 3)
	c := startOwners(t, cl.js(t, 2), "c", lease, 3)
	ctx := ctxT(t, 60*time.Second)
	const n = 6
	for i := range n {
		if _, err := a.Claim(ctx, fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Both see every lease lapse before either takes any; then, kernel by
	// kernel, both take at the same instant.
	offers := map[*natsbus.Owners]map[string]natsbus.Lease{b: {}, c: {}}
	for o, got := range offers {
		for len(got) < n {
			select {
			case l := <-o.Lapsed():
				got[l.Kernel] = l
			case <-time.After(4 * lease):
				t.Fatalf("%s saw %d of %d leases lapse", o.Node(), len(got), n)
			}
		}
	}
	type result struct {
		node, kernel string
		err          error
	}
	results := make(chan result, 2*n)
	for i := range n {
		k := fmt.Sprintf("r%d", i)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for _, o := range []*natsbus.Owners{b, c} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				_, err := o.Take(ctx, offers[o][k])
				results <- result{o.Node(), k, err}
			}()
		}
		close(gate)
		wg.Wait()
	}
	close(results)
	won := map[string]string{}
	tries := map[string]int{}
	for r := range results {
		tries[r.kernel]++
		switch {
		case r.err == nil:
			if w, dup := won[r.kernel]; dup {
				t.Fatalf("%s taken twice: by %s and %s", r.kernel, w, r.node)
			}
			won[r.kernel] = r.node
		case !errors.Is(r.err, natsbus.ErrTakenByOther):
			t.Fatalf("%s's take of %s: %v", r.node, r.kernel, r.err)
		}
	}
	for i := range n {
		k := fmt.Sprintf("r%d", i)
		if tries[k] != 2 {
			t.Fatalf("%s: %d takes tried, want both b and c to try", k, tries[k])
		}
		w, ok := won[k]
		if !ok {
			t.Fatalf("%s taken by nobody", k)
		}
		holder := map[string]*natsbus.Owners{"b": b, "c": c}[w]
		if err := holder.Held(k); err != nil {
			t.Fatalf("%s won %s but does not hold it: %v", w, k, err)
		}
	}
}

// TestOwnersClusterCutOff: node a of a 3-node cluster is cut off (its
// routes closed and refused, its server and client still up): it loses
// Held within the lease and says why; b and c see the lease lapse and one
// of them takes the kernel; once the routes heal, a sees the new owner.
func TestOwnersClusterCutOff(t *testing.T) {
	cl := startJSCluster(t, 3)
	const lease = 2 * time.Second
	a := startOwners(t, cl.js(t, 0), "a", lease, 3)
	b := startOwners(t, cl.js(t, 1), "b", lease, 3)
	c := startOwners(t, cl.js(t, 2), "c", lease, 3)
	ctx := ctxT(t, 90*time.Second)
	if _, err := a.Claim(ctx, "cut"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b and c see a's lease", func() bool {
		lb, okb := b.Owner("cut")
		lc, okc := c.Owner("cut")
		return okb && okc && lb.Node == "a" && lc.Node == "a"
	})
	if err := a.Held("cut"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	cl.cutOff(t, 0)
	eventually(t, lease, "a stops holding its kernel within the lease once cut off", func() bool { return a.Held("cut") != nil })
	lost := time.Since(cut)
	ne := notOwner(t, a.Held("cut"))
	if ne.Reason != natsbus.ReasonNotRenewed || !strings.Contains(ne.Error(), "cannot prove it owns kernel cut") {
		t.Fatalf("a.Held once cut off: %v", ne)
	}
	t.Logf("cut-off node lost Held %s after the cut (lease %s)", lost.Round(time.Millisecond), lease)

	// b and c (a majority) see the lease lapse; one takes it. A take may
	// fail while they elect new stream leaders: retried on the next offer.
	type took struct {
		node string
		at   time.Duration
	}
	winner := make(chan took, 2)
	var wg sync.WaitGroup
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, o := range []*natsbus.Owners{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-tctx.Done():
					return
				case l := <-o.Lapsed():
					if l.Kernel != "cut" {
						continue
					}
					_, err := o.Take(tctx, l)
					if err == nil {
						winner <- took{o.Node(), time.Since(cut)}
						return
					}
					if errors.Is(err, natsbus.ErrTakenByOther) {
						return
					}
					t.Logf("%s: take: %v (retried)", o.Node(), err)
				}
			}
		}()
	}
	var w took
	select {
	case w = <-winner:
	case <-time.After(30 * time.Second):
		t.Fatal("nobody took the cut-off node's kernel")
	}
	t.Logf("%s took the kernel %s after the cut", w.node, w.at.Round(time.Millisecond))
	if w.at < lease {
		t.Fatalf("taken %s after the cut: before a whole lease", w.at)
	}
	if lost >= w.at {
		t.Fatalf("a still held the kernel (%s) when %s took it (%s)", lost, w.node, w.at)
	}
	stop()
	wg.Wait()
	select {
	case x := <-winner:
		t.Fatalf("two nodes took the kernel: %s and %s", w.node, x.node)
	default:
	}
	// a's own attempts to act fail the same way while cut off; after the
	// routes heal, a learns the new owner.
	cl.heal(0)
	eventually(t, 45*time.Second, "a sees the new owner once healed", func() bool {
		l, ok := a.Owner("cut")
		return ok && l.Node == w.node
	})
	if ne := notOwner(t, a.Held("cut")); ne.Reason != natsbus.ReasonOwnedElsewhere || ne.Owner != w.node {
		t.Fatalf("a.Held after healing: %v", ne)
	}
}

func BenchmarkOwnersHeld(b *testing.B) {
	js := singleJS(b)
	o := startOwners(b, js, "a", 10*time.Second, 1)
	ctx := ctxT(b, 30*time.Second)
	for i := range 100 {
		if _, err := o.Claim(ctx, fmt.Sprintf("k%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := o.Held("k42"); err != nil {
			b.Fatal(err)
		}
	}
}
