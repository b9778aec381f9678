package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestImporterPassesOverARepublishAcrossItsRestart: node b imported a's
// records, then restarted; a's records appear in the stream again (as a
// publisher restarted past the duplicate window sends them: new message
// ids). b passes them over: the newest origin sequence it imported of a
// is kept in its log, not only in memory.
func TestImporterPassesOverARepublishAcrossItsRestart(t *testing.T) {
	buses := sharedBus(t)
	js, err := jetstream.New(buses[0].Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := natsbus.EnsureHistoryStream(ctx, js, 1, 0); err != nil {
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
	want := len(own(t, b.log, "a"))
	if want == 0 {
		t.Fatal("b imported nothing of a")
	}
	b.stop(t)

	// a's records again, as a republish past the duplicate window.
	st, err := js.Stream(ctx, natsbus.HistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	var again int
	for seq := uint64(1); seq <= last; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != natsbus.HistorySubject("a") {
			continue
		}
		h := nats.Header{}
		for k, v := range m.Header {
			h[k] = v
		}
		h.Set(nats.MsgIdHdr, h.Get(nats.MsgIdHdr)+"-again")
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}); err != nil {
			t.Fatal(err)
		}
		again++
	}
	if again == 0 {
		t.Fatal("no record of a in the stream")
	}
	b.start(t)
	settled(t, a, b)
	if got := len(own(t, b.log, "a")); got != want {
		t.Fatalf("after its restart b holds %d records of a, want %d: the republished copies were imported again", got, want)
	}
}
