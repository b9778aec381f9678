package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus/natsbustest"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// histNode is one node of a test cluster: its NATS server, its own Pebble
// log, and the history publisher and importer over them.
type histNode struct {
	name string
	bus  *natsbus.Server
	dir  string
	log  *eventlog.Log
	pub  *natsbus.HistoryPublisher
	imp  *natsbus.Importer
}

// start opens the node's log and starts its publisher and importer.
func (n *histNode) start(t testing.TB) {
	t.Helper()
	l, err := eventlog.Open(n.dir, eventlog.Options{Node: n.name})
	if err != nil {
		t.Fatal(err)
	}
	n.log = l
	n.pub = natsbus.NewHistoryPublisher(l, n.bus, natsbus.HistoryOptions{Node: n.name, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	n.imp = natsbus.NewImporter(l, n.bus, natsbus.ImporterOptions{Node: n.name, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err := n.pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.imp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stop closes the importer, the publisher and the log, in that order.
func (n *histNode) stop(t testing.TB) {
	t.Helper()
	if n.log == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.imp.Close(ctx); err != nil {
		t.Errorf("close importer of %s: %v", n.name, err)
	}
	if err := n.pub.Close(ctx); err != nil {
		t.Errorf("close history publisher of %s: %v", n.name, err)
	}
	if err := n.log.Close(); err != nil {
		t.Errorf("close log of %s: %v", n.name, err)
	}
	n.log = nil
}

// histCluster starts the nodes over buses (one per node, or one shared),
// with the history stream created.
func histCluster(t testing.TB, buses []*natsbus.Server, names ...string) []*histNode {
	t.Helper()
	js, err := jetstream.New(buses[0].Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := natsbus.EnsureHistoryStream(ctx, js, min(len(buses), 3), 0); err != nil {
		t.Fatal(err)
	}
	var nodes []*histNode
	for i, name := range names {
		n := &histNode{name: name, bus: buses[i%len(buses)], dir: testkit.TempDataDir(t)}
		n.start(t)
		t.Cleanup(func() { n.stop(t) })
		nodes = append(nodes, n)
	}
	return nodes
}

// clusterBuses is a real cluster: three embedded NATS servers routed to
// each other on loopback ports, JetStream on each, the history stream R3;
// node i of histCluster uses server i.
func clusterBuses(t testing.TB) []*natsbus.Server { return natsbustest.Cluster(t, 3, nil) }

// sharedBus is one JetStream server all nodes use.
func sharedBus(t testing.TB) []*natsbus.Server {
	return []*natsbus.Server{openBus(t, natsbus.Options{JetStream: true, StoreDir: t.TempDir()})}
}

// settled waits until every node's own records are in the stream and
// every node imported the others', then returns.
func settled(t testing.TB, nodes ...*histNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range nodes {
		for n.pub.Confirmed() < n.log.Last() {
			if ctx.Err() != nil {
				t.Fatalf("node %s: history confirmed up to %d of %d: %v", n.name, n.pub.Confirmed(), n.log.Last(), n.pub.Healthy())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				if err := n.imp.CaughtUp(ctx, o.name); err != nil {
					t.Fatalf("node %s catching up with %s: %v (%v)", n.name, o.name, err, n.imp.Healthy())
				}
			}
		}
	}
}

// own returns the records of l written by node, of the imported kinds.
func own(t *testing.T, l *eventlog.Log, node string) []events.Event {
	t.Helper()
	var out []events.Event
	err := l.Read(context.Background(), 0, 0, func(e events.Event) error {
		if e.Node == node && slices.Contains(natsbus.ImportedKinds, events.StreamKind(e.Stream)) {
			e.Raw = append([]byte(nil), e.Raw...)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRecords fails unless got are want's records (envelope and payload,
// not the local sequence), once each, in order.
func sameRecords(t *testing.T, where string, got, want []events.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", where, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Stream != w.Stream || g.Kernel != w.Kernel || g.Node != w.Node || g.Type != w.Type ||
			g.Principal != w.Principal || string(g.Raw) != string(w.Raw) {
			t.Fatalf("%s: record %d = %s %s %s, want %s %s %s", where, i, g.Node, g.Stream, g.Raw, w.Node, w.Stream, w.Raw)
		}
	}
}

// appendOn appends n executions on kernel k of node, with a record of a
// kind not imported (an asset) between.
func appendOn(t *testing.T, n *histNode, k string, count int) {
	t.Helper()
	ds := kernelDrafts(k, count)
	ds = append(ds, events.Draft{Stream: events.AssetStream("sha-" + k), Payload: events.KernelLost{KernelID: k, Reason: "not imported"}})
	if _, err := n.log.Append(context.Background(), ds...); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryImportsOtherNodesOnceInOrder: three nodes append at once;
// each ends up holding the others' kernel, execution and server records
// once, in their order, and none of another kind; each node's history
// subject holds only its own records.
func TestHistoryImportsOtherNodesOnceInOrder(t *testing.T) {
	nodes := histCluster(t, clusterBuses(t), "a", "b", "c")
	for round := range 5 {
		for _, n := range nodes {
			appendOn(t, n, fmt.Sprintf("%s-k%d", n.name, round), 20)
		}
	}
	settled(t, nodes...)
	for _, n := range nodes {
		for _, o := range nodes {
			if o == n {
				continue
			}
			sameRecords(t, fmt.Sprintf("%s's records on %s", o.name, n.name), own(t, n.log, o.name), own(t, o.log, o.name))
		}
		// Nothing but the imported kinds came in.
		err := n.log.Read(context.Background(), 0, 0, func(e events.Event) error {
			if e.Node != n.name && !slices.Contains(natsbus.ImportedKinds, events.StreamKind(e.Stream)) {
				return fmt.Errorf("node %s imported %s of %s", n.name, e.Stream, e.Node)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A foreign record is never republished: each subject holds exactly
	// its node's records (every kind), by Mcp-Node and by the record.
	js, err := jetstream.New(nodes[0].bus.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		var mine int
		_ = n.log.Read(context.Background(), 0, 0, func(e events.Event) error {
			if e.Node == n.name {
				mine++
			}
			return nil
		})
		got := streamRecords(t, js, n.name)
		if len(got) != mine {
			t.Fatalf("subject of %s holds %d records, its log wrote %d", n.name, len(got), mine)
		}
		for _, e := range got {
			if e.Node != n.name {
				t.Fatalf("subject of %s holds a record of %s (seq %d): republished", n.name, e.Node, e.Seq)
			}
		}
	}
}

// streamRecords reads every record on node's history subject.
func streamRecords(t *testing.T, js jetstream.JetStream, node string) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natsbus.HistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{natsbus.HistorySubject(node)}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for left := info.NumPending; left > 0; {
		b, err := cons.Fetch(int(min(left, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			var seq uint64
			fmt.Sscan(m.Headers().Get(natsbus.SeqHeader), &seq)
			e, err := events.DecodeEnvelope(seq, m.Data())
			if err != nil {
				t.Fatalf("record on %s: %v", m.Subject(), err)
			}
			if m.Headers().Get(natsbus.NodeHeader) != node || m.Headers().Get("Nats-Msg-Id") != fmt.Sprintf("%s:%d", node, seq) {
				t.Fatalf("record %d on %s has headers %v", seq, m.Subject(), m.Headers())
			}
			out = append(out, e)
			left--
		}
		if b.Error() != nil {
			t.Fatal(b.Error())
		}
	}
	return out
}

// TestImporterRestartMissesNothingRepeatsNothing: B stops while A goes on
// writing, and starts again (its cursor of skipped records included):
// B then holds every record of A once.
func TestImporterRestartMissesNothingRepeatsNothing(t *testing.T) {
	nodes := histCluster(t, clusterBuses(t), "a", "b")
	a, b := nodes[0], nodes[1]
	appendOn(t, a, "k1", 30)
	appendOn(t, b, "kb", 3)
	settled(t, a, b)
	b.stop(t)
	appendOn(t, a, "k2", 30)
	settled(t, a)
	b.start(t)
	appendOn(t, a, "k3", 5)
	settled(t, a, b)
	sameRecords(t, "a's records on b after b's restart", own(t, b.log, "a"), own(t, a.log, "a"))
	if st := b.imp.Stats(); st.Lost != 0 || st.Corrupt != 0 {
		t.Fatalf("importer stats %+v", st)
	}
	// Restarted again with nothing new: nothing is imported twice.
	last := b.log.Last()
	b.stop(t)
	b.start(t)
	settled(t, a, b)
	if b.log.Last() != last || b.imp.Stats().Imported != 0 {
		t.Fatalf("a restart with nothing new imported %d records (last %d, was %d)", b.imp.Stats().Imported, b.log.Last(), last)
	}
}

// TestHistoryPublisherStartsAfterWhatTheStreamHolds: a cursor that lags
// (lost in a crash) does not make the publisher send its records again:
// it starts after the newest record the stream holds for its node.
func TestHistoryPublisherStartsAfterWhatTheStreamHolds(t *testing.T) {
	nodes := histCluster(t, sharedBus(t), "a")
	a := nodes[0]
	appendOn(t, a, "k1", 50)
	settled(t, a)
	a.stop(t)
	l, err := eventlog.Open(a.dir, eventlog.Options{Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot("nats-history", 1, nil); err != nil { // NB: as if saved long before the crash
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	a.start(t)
	appendOn(t, a, "k2", 2)
	settled(t, a)
	if got := a.pub.Published(); got != 4 {
		t.Fatalf("after a lagging cursor the publisher sent %d records, want the 4 new ones", got)
	}
}

// TestCaughtUpWaitsForTheImport: CaughtUp returns only once the records
// the stream held at the call are in the log, and at once for a node that
// never published.
func TestCaughtUpWaitsForTheImport(t *testing.T) {
	nodes := histCluster(t, clusterBuses(t), "a", "b")
	a, b := nodes[0], nodes[1]
	b.stop(t)
	appendOn(t, a, "k1", 200)
	settled(t, a)
	want := own(t, a.log, "a")
	b.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.imp.CaughtUp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "a's records on b right after CaughtUp", own(t, b.log, "a"), want)
	if err := b.imp.CaughtUp(ctx, "nobody"); err != nil {
		t.Fatalf("CaughtUp with a node that never published: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	b.stop(t)
	if err := b.imp.CaughtUp(short, "a"); err == nil {
		t.Fatal("CaughtUp of a closed importer returned nil")
	}
}

// TestReadModelsFoldImportedRecords: B's executions and kernels read
// models, fed by B's log, answer for A's kernel and execution.
func TestReadModelsFoldImportedRecords(t *testing.T) {
	nodes := histCluster(t, clusterBuses(t), "a", "b")
	a, b := nodes[0], nodes[1]
	xm, km := executions.New(executions.Options{}, b.log), kernels.New()
	r := projections.NewRunner(b.log, projections.Options{}, xm, km)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	x := "ka-x0"
	if _, err := a.log.Append(ctx, kernelDrafts("ka", 1)...); err != nil {
		t.Fatal(err)
	}
	if _, err := a.log.Append(ctx, events.Draft{Stream: events.ExecutionStream(x), Kernel: "ka", Payload: events.ExecutionStarted{ExecutionID: x, KernelID: "ka"}}); err != nil {
		t.Fatal(err)
	}
	settled(t, a, b)
	if err := r.WaitFor(ctx, b.log.Last()); err != nil {
		t.Fatal(err)
	}
	got, ok := xm.Get(x)
	if !ok || got.KernelID != "ka" {
		t.Fatalf("b's executions model: %+v %v, want a's execution %s on kernel ka", got, ok, x)
	}
	if k, ok := km.Get("ka"); !ok {
		t.Fatalf("b's kernels model does not know a's kernel ka: %+v", k)
	}
}

// TestPublicPublisherSkipsImportedRecords: in a cluster, a node's public
// publisher (mcpjupyter.ev.…) sends only the records it wrote: a
// subscriber of the whole cluster sees each event once, from its writer;
// the publisher still confirms past the imported records.
func TestPublicPublisherSkipsImportedRecords(t *testing.T) {
	nodes := histCluster(t, sharedBus(t), "a", "b")
	a, b := nodes[0], nodes[1]
	sub := subscribe(t, b.bus, "mcpjupyter.ev.>")
	pub := startPublisher(t, b.log, b.bus, natsbus.PublisherOptions{Node: "b"})
	appendOn(t, a, "ka", 10)
	settled(t, a, b)
	evs, err := b.log.Append(context.Background(), kernelDrafts("kb", 2)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range evs {
		got := next(t, sub)
		if got.Node != "b" || got.Seq != want.Seq {
			t.Fatalf("b's public publisher sent seq %d of node %s, want b's own %d", got.Seq, got.Node, want.Seq)
		}
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("an extra event went out: %s %s", m.Subject, m.Header)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pub.Confirmed() < b.log.Last() {
		if time.Now().After(deadline) {
			t.Fatalf("public publisher confirmed %d of %d", pub.Confirmed(), b.log.Last())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestImporterSaysWhatTheStreamDropped: a node away while the stream's
// byte limit dropped records it had not imported counts them lost (and
// logs it) and imports the rest; nothing is imported twice.
func TestImporterSaysWhatTheStreamDropped(t *testing.T) {
	buses := sharedBus(t)
	js, err := jetstream.New(buses[0].Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := natsbus.EnsureHistoryStream(ctx, js, 1, 64<<10); err != nil {
		t.Fatal(err)
	}
	a := &histNode{name: "a", bus: buses[0], dir: testkit.TempDataDir(t)}
	b := &histNode{name: "b", bus: buses[0], dir: testkit.TempDataDir(t)}
	for _, n := range []*histNode{a, b} {
		n.start(t)
		t.Cleanup(func() { n.stop(t) })
	}
	appendOn(t, a, "k1", 5)
	settled(t, a, b)
	b.stop(t)
	for i := range 20 {
		appendOn(t, a, fmt.Sprintf("k2-%d", i), 50) // far more than 64 KiB
	}
	settled(t, a)
	st, err := js.Stream(ctx, natsbus.HistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	first := st.CachedInfo().State.FirstSeq
	b.start(t)
	settled(t, a, b)
	stats := b.imp.Stats()
	if stats.Lost == 0 {
		t.Fatalf("the stream starts at %d, after what b imported, yet b counts nothing lost: %+v", first, stats)
	}
	// What b holds of a: the first round whole, then only what the stream
	// still held, once each.
	got := own(t, b.log, "a")
	seen := map[string]bool{}
	for _, e := range got {
		key := e.Stream + string(e.Raw)
		if seen[key] {
			t.Fatalf("b imported %s twice", e.Stream)
		}
		seen[key] = true
	}
	if want := own(t, a.log, "a"); len(got) >= len(want) {
		t.Fatalf("b holds %d of a's %d records although the stream dropped some", len(got), len(want))
	}
}

// TestImporterPassesOverRecordsItCannotReplay: a record of a type, or a
// version, this binary does not know (a newer node's, or injected) is
// passed over and counted; the records after it are still imported (it
// used to fail every batch holding it, for good).
func TestImporterPassesOverRecordsItCannotReplay(t *testing.T) {
	buses := sharedBus(t)
	nodes := histCluster(t, buses, "a", "b")
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(buses[0].Conn())
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []struct {
		typ     string
		version uint16
	}{{"EvilType", 1}, {events.TypeKernelLost, 99}} {
		data, err := events.Encode(events.Event{Seq: uint64(i + 1), Time: time.Now(), Stream: events.KernelStream("kx"), Kernel: "kx", Node: "x",
			Type: body.typ, Version: body.version, Raw: []byte(`{"kernel_id":"kx","reason":"injected"}`)})
		if err != nil {
			t.Fatal(err)
		}
		seq := strconv.Itoa(i + 1)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: natsbus.HistorySubject("x"), Data: data,
			Header: nats.Header{natsbus.SeqHeader: {seq}, natsbus.NodeHeader: {"x"}, nats.MsgIdHdr: {"x:" + seq}}}); err != nil {
			t.Fatal(err)
		}
	}
	appendOn(t, a, "k1", 3)
	settled(t, a, b)
	sameRecords(t, "a's records on b after two it cannot replay", own(t, b.log, "a"), own(t, a.log, "a"))
	if st := b.imp.Stats(); st.Unknown != 2 || st.Imported == 0 {
		t.Fatalf("importer stats %+v, want 2 unknown records passed over", st)
	}
	if err := b.imp.Healthy(); err != nil {
		t.Fatalf("importer unhealthy: %v", err)
	}
}
