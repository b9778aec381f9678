package lease_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/assetstore"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// clock is a test clock that only moves when told.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	dir   string
	log   *eventlog.Log
	files *assetstore.Store
	clock *clock
	a     *lease.Client
}

// newSystem returns an actor system for one test (the server has one per
// process).
func newSystem(t testing.TB) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	return sys
}

// openEnv opens a log, a store and the actor, which recovers from the log.
func openEnv(t testing.TB, dir string, c *clock, files lease.Files) *env {
	t.Helper()
	return openEnvHook(t, dir, c, files, nil)
}

func openEnvHook(t testing.TB, dir string, c *clock, files lease.Files, hook func([]events.Draft)) *env {
	t.Helper()
	l := testkit.OpenLog(t, filepath.Join(dir, "events"))
	st, err := assetstore.Open(filepath.Join(dir, "assets"))
	if err != nil {
		t.Fatal(err)
	}
	if files == nil {
		files = st
	}
	a, err := lease.Open(context.Background(), lease.Config{System: newSystem(t), Log: l, Files: files, TTL: time.Hour, Now: c.Now,
		BeforeAppend: hook, GCBatch: 300, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return &env{dir: dir, log: l, files: st, clock: c, a: a}
}

// asset asks the actor for its view of sum.
func (e *env) asset(t testing.TB, sum string) (lease.Asset, bool) {
	t.Helper()
	a, ok, err := e.a.Asset(context.Background(), sum)
	if err != nil {
		t.Fatal(err)
	}
	return a, ok
}

func (e *env) types(t testing.TB) []string {
	t.Helper()
	var ts []string
	if err := e.log.Read(context.Background(), 0, e.log.Last(), func(ev events.Event) error {
		if events.StreamKind(ev.Stream) == "asset" {
			ts = append(ts, ev.Type)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestPutReadCollect(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), newClock(), nil)
	o := lease.Origin{KernelID: "k1", ExecutionID: "x1", OutputIndex: 2}
	sum, err := e.a.Put(ctx, []byte("<b>hi</b>"), "text/html", o)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := e.asset(t, sum)
	if !ok || a.MIME != "text/html" || a.Size != 9 || a.Origins[0] != o || !a.Leases["execution/x1"].Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("asset after put: %+v", a)
	}
	e.clock.Advance(50 * time.Minute)
	data, mime, err := e.a.Get(ctx, sum) // renews: holder "read" until now+1h
	if err != nil || string(data) != "<b>hi</b>" || mime != "text/html" {
		t.Fatalf("get: %q %q %v", data, mime, err)
	}
	e.clock.Advance(20 * time.Minute) // the producer's lease ran out; the read lease holds
	res, err := e.a.Collect(ctx)
	if err != nil || len(res.Sums) != 0 || res.Expired != 1 {
		t.Fatalf("collect while read-leased: %+v %v", res, err)
	}
	if _, err := e.files.ReadAll(sum); err != nil {
		t.Fatalf("leased asset deleted: %v", err)
	}
	e.clock.Advance(time.Hour)
	res, err = e.a.Collect(ctx)
	if err != nil || len(res.Sums) != 1 || res.Bytes != 9 {
		t.Fatalf("collect expired: %+v %v", res, err)
	}
	if _, err := e.files.ReadAll(sum); !errors.Is(err, assetstore.ErrNotFound) {
		t.Fatalf("collected file still there: %v", err)
	}
	if _, _, err := e.a.Get(ctx, sum); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("get collected: %v, want ErrNotFound", err)
	}
	want := []string{"AssetStored", "LeaseGranted", "LeaseGranted", "LeaseExpired", "LeaseExpired", "AssetCollected"}
	if got := e.types(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// Stored again after collection: a new life.
	if _, err := e.a.Put(ctx, []byte("<b>hi</b>"), "text/html", o); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.asset(t, sum); !a.Stored() {
		t.Fatal("re-stored asset not stored")
	}
	if _, err := e.files.ReadAll(sum); err != nil {
		t.Fatalf("re-stored file: %v", err)
	}
}

func TestRenewCoalesces(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), newClock(), nil)
	sum, _ := e.a.Put(ctx, []byte("x"), "text/plain", lease.Origin{})
	for range 10 {
		if _, _, err := e.a.Get(ctx, sum); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.types(t)); n != 3 { // stored, granted(server), granted(read)
		t.Fatalf("%d asset events after 10 reads, want 3 (reads within TTL/64 append nothing)", n)
	}
	e.clock.Advance(10 * time.Minute)
	exp, err := e.a.Renew(ctx, sum, "checkpoint/c1")
	if err != nil || !exp.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("renew by reference: %v %v", exp, err)
	}
	if _, err := e.a.Renew(ctx, assetstore.Sum([]byte("never")), "checkpoint/c1"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("renew unknown: %v", err)
	}
}

// failDelete fails every Delete: a crash between the durable intent and the
// deletion.
type failDelete struct{ *assetstore.Store }

var errCrash = errors.New("simulated crash")

func (f failDelete) Delete(sums ...string) error {
	if len(sums) == 0 {
		return nil
	}
	return errCrash
}

func TestCrashDuringGC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newClock()
	st, _ := assetstore.Open(filepath.Join(dir, "assets"))
	e := openEnv(t, dir, c, failDelete{st})
	old, _ := e.a.Put(ctx, []byte("old"), "text/plain", lease.Origin{})
	c.Advance(2 * time.Hour)
	kept, _ := e.a.Put(ctx, []byte("kept"), "text/plain", lease.Origin{})
	if _, err := e.a.Collect(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("collect: %v, want the crash", err)
	}
	// A put whose append never happened: the file exists, the log has no record.
	orphan, _, _ := st.Put([]byte("orphan"))
	if err := e.a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.log.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := openEnv(t, dir, c, nil)
	if _, err := st.ReadAll(old); !errors.Is(err, assetstore.ErrNotFound) {
		t.Fatalf("collected file survived recovery: %v", err)
	}
	if _, err := st.ReadAll(kept); err != nil {
		t.Fatalf("leased file missing after recovery: %v", err)
	}
	if a, _ := e2.asset(t, orphan); !a.Stored() {
		t.Fatal("orphan file not adopted")
	}
	assertLogMatchesFiles(t, e2)
}

// assertLogMatchesFiles: every asset the log says exists has its file, and
// every file is an asset the log says exists.
func assertLogMatchesFiles(t testing.TB, e *env) {
	t.Helper()
	st := lease.NewState()
	if err := e.log.ReadStreams(context.Background(), lease.StreamPrefix, 0, func(ev events.Event) error {
		st = lease.Apply(st, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for sum, a := range st.Assets {
		_, err := os.Stat(filepath.Join(e.files.Dir(), sum))
		if a.Stored() && err != nil {
			t.Errorf("log says %s exists: %v", sum, err)
		}
		if !a.Stored() && err == nil {
			t.Errorf("log says %s was collected, its file is still there", sum)
		}
	}
}

// TestGCRacingRenewals is the property: with random interleavings of reads,
// references, puts and GC runs against a moving clock, no asset is collected
// while a renewal that succeeded holds it, every successful read returns
// the right bytes, and no file the log says exists is missing.
func TestGCRacingRenewals(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ctx := context.Background()
			c := newClock()
			e := openEnv(t, t.TempDir(), c, nil)
			const n = 40
			blobs := make([][]byte, n)
			sums := make([]string, n)
			for i := range n {
				blobs[i] = fmt.Appendf(nil, "asset-%d-%d", seed, i)
				sums[i], _ = e.a.Put(ctx, blobs[i], "text/plain", lease.Origin{ExecutionID: fmt.Sprint("x", i)})
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for range 100 {
						i := r.IntN(n)
						switch r.IntN(4) {
						case 0:
							data, _, err := e.a.Get(ctx, sums[i])
							if err == nil && string(data) != string(blobs[i]) {
								t.Errorf("read %d: %q", i, data)
							} else if err != nil && !errors.Is(err, lease.ErrNotFound) {
								t.Error(err)
							}
						case 1:
							if _, err := e.a.Renew(ctx, sums[i], "checkpoint/c"); err != nil && !errors.Is(err, lease.ErrNotFound) {
								t.Error(err)
							}
						case 2:
							if _, err := e.a.Put(ctx, blobs[i], "text/plain", lease.Origin{ExecutionID: fmt.Sprint("x", i)}); err != nil {
								t.Error(err)
							}
						default:
							c.Advance(time.Duration(r.IntN(20)) * time.Minute)
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 60 {
					if _, err := e.a.Collect(ctx); err != nil {
						t.Error(err)
						return
					}
					c.Advance(7 * time.Minute)
				}
			}()
			wg.Wait()
			assertLogMatchesFiles(t, e)
			// Replay: at each AssetCollected, no lease of the asset was
			// live at any GC time >= the lease's grant... checked via the
			// event order: LeaseExpired precedes Collected for every holder.
			replayCheck(t, e)
		})
	}
}

// replayCheck folds the log: at every AssetCollected, every lease granted
// or renewed since the asset was stored (whatever holder) had expired by the
// time the GC decided, and a LeaseExpired came for each holder.
func replayCheck(t testing.TB, e *env) {
	t.Helper()
	exp := map[string]map[string]time.Time{}
	lastExpired := map[string]time.Time{}
	collected := 0
	err := e.log.Read(context.Background(), 0, e.log.Last(), func(ev events.Event) error {
		switch p := ev.Payload.(type) {
		case events.AssetStored:
			if exp[p.SHA256] == nil {
				exp[p.SHA256] = map[string]time.Time{}
			}
		case events.LeaseGranted:
			exp[p.SHA256][p.Holder] = p.ExpiresAt
		case events.LeaseRenewed:
			exp[p.SHA256][p.Holder] = p.ExpiresAt
		case events.LeaseExpired:
			until := exp[p.SHA256][p.Holder]
			if until.IsZero() {
				t.Errorf("seq %d: LeaseExpired for %s without a lease", ev.Seq, p.Holder)
			}
			if until.After(lastExpired[p.SHA256]) {
				lastExpired[p.SHA256] = until
			}
			exp[p.SHA256][p.Holder] = time.Time{}
		case events.AssetCollected:
			if until := lastExpired[p.SHA256]; until.After(p.DecidedAt) {
				t.Errorf("seq %d: %s collected at %v, but a lease ran until %v", ev.Seq, p.SHA256, p.DecidedAt, until)
			}
			collected++
			if p.DecidedAt.IsZero() {
				t.Errorf("seq %d: AssetCollected without decided_at", ev.Seq)
			}
			for h, until := range exp[p.SHA256] {
				if !until.IsZero() {
					t.Errorf("seq %d: %s collected at %v while %s held it until %v", ev.Seq, p.SHA256, p.DecidedAt, h, until)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if collected == 0 {
		t.Error("no asset was collected: the interleaving exercised nothing")
	}
}
