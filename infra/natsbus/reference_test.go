package natsbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// bigDraft is an event whose JSON form is about size bytes.
func bigDraft(kernel string, size int) events.Draft {
	x := kernel + "-big"
	return events.Draft{Stream: events.ExecutionStream(x), Kernel: kernel, Principal: "alice",
		Payload: events.ExecutionQueued{ExecutionID: x, KernelID: kernel, Code: "print('" + strings.Repeat("x", size) + "')"}}
}

// received is one message as a subscriber sees it: a full event, or a
// reference to one.
type received struct {
	seq  uint64
	ref  *natsbus.Reference
	data []byte
}

func receive(t *testing.T, sub *nats.Subscription) received {
	t.Helper()
	msg, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	seq, err := strconv.ParseUint(msg.Header.Get(natsbus.SeqHeader), 10, 64)
	if err != nil {
		t.Fatalf("header %s = %q", natsbus.SeqHeader, msg.Header.Get(natsbus.SeqHeader))
	}
	r := received{seq: seq, data: msg.Data}
	if path := msg.Header.Get(natsbus.RefHeader); path != "" {
		r.ref = &natsbus.Reference{}
		if err := json.Unmarshal(msg.Data, r.ref); err != nil {
			t.Fatalf("decode reference %s: %v", msg.Data, err)
		}
		if r.ref.Seq != seq || r.ref.Ref != path || path != natsbus.RefPath(seq) {
			t.Fatalf("reference %+v with header %s=%s, %s=%s", r.ref, natsbus.SeqHeader, msg.Header.Get(natsbus.SeqHeader), natsbus.RefHeader, path)
		}
	}
	return r
}

// TestOversizedEventIsAReference: an event over the server's max_payload
// goes out as a reference naming its size and where to fetch it, and the
// events after it keep flowing to a TCP subscriber.
func TestOversizedEventIsAReference(t *testing.T) {
	l := openLog(t, t.TempDir())
	bus := openBus(t, natsbus.Options{Listen: "127.0.0.1:0", Token: "s3cret"})
	nc, _ := outsideClient(t, bus.ClientURL(), nats.Token("s3cret"))
	sub, err := nc.SubscribeSync("mcpjupyter.ev.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := startPublisher(t, l, bus, natsbus.PublisherOptions{})
	drafts := append(kernelDrafts("k1", 1), bigDraft("k1", 2<<20))
	drafts = append(drafts, kernelDrafts("k2", 1)...)
	evs, err := l.Append(context.Background(), drafts...)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range evs {
		got := receive(t, sub)
		if got.seq != want.Seq {
			t.Fatalf("message %d carries event %d, want %d", i, got.seq, want.Seq)
		}
		full, err := want.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if i != 2 {
			if got.ref != nil || string(got.data) != string(full) {
				t.Fatalf("event %d (%d bytes) was not sent whole: ref %+v", want.Seq, len(full), got.ref)
			}
			continue
		}
		if got.ref == nil {
			t.Fatalf("event %d of %d bytes was not sent as a reference", want.Seq, len(full))
		}
		r := got.ref
		if r.Size != len(full) || r.Type != want.Type || r.Stream != want.Stream || r.Kernel != want.Kernel || r.Version != want.Version || r.Principal != "alice" || len(got.data) > 1024 {
			t.Fatalf("reference %+v (%d bytes) to event %d %s on %s of %d bytes", r, len(got.data), want.Seq, want.Type, want.Stream, len(full))
		}
	}
	if pub.References() != 1 {
		t.Fatalf("references = %d, want 1", pub.References())
	}
	if err := pub.Healthy(); err != nil {
		t.Fatalf("healthy after an oversized event: %v", err)
	}
}

// TestStreamMaxMessageSizeIsHonoured: with a JetStream stream whose max
// message size is below max_payload, an event between the two is sent as a
// reference, which the stream keeps (a late consumer sees it).
func TestStreamMaxMessageSizeIsHonoured(t *testing.T) {
	bus := openBus(t, natsbus.Options{JetStream: true, StoreDir: t.TempDir(), StreamMaxMsgSize: 64 << 10})
	if got := bus.MaxMessage(); got != 64<<10 {
		t.Fatalf("MaxMessage = %d, want the stream's 64 KiB", got)
	}
	l := openLog(t, t.TempDir())
	pub := startPublisher(t, l, bus, natsbus.PublisherOptions{})
	evs, err := l.Append(context.Background(), append(kernelDrafts("k1", 0), bigDraft("k1", 100<<10), kernelDrafts("k2", 0)[0])...)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1].Seq
	waitConfirmed(t, pub, last)
	nc, err := bus.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, natsbus.StreamName, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range evs {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("the stream lacks event %d: %v", want.Seq, err)
		}
		seq, _ := strconv.ParseUint(m.Headers().Get(natsbus.SeqHeader), 10, 64)
		isRef := m.Headers().Get(natsbus.RefHeader) != ""
		if seq != want.Seq || isRef != (want.Seq == evs[1].Seq) {
			t.Fatalf("the stream holds event %d (reference %v), want %d (reference only for %d)", seq, isRef, want.Seq, evs[1].Seq)
		}
	}
}

// TestRestartPublishesPastAnOversizedBacklog is the regression for "after a
// restart it stops at the same event": a cursor saved just before an
// oversized event, as the old publisher left it, and a fresh start publishes
// past it.
func TestRestartPublishesPastAnOversizedBacklog(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	drafts := append(kernelDrafts("k1", 2), bigDraft("k1", 3<<20))
	drafts = append(drafts, kernelDrafts("k2", 2)...)
	evs, err := l.Append(context.Background(), drafts...)
	if err != nil {
		t.Fatal(err)
	}
	big := evs[3]
	if err := l.SaveSnapshot("natsbus", big.Seq-1, nil); err != nil { // where the wedged publisher stopped
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir) // the restart
	bus := openBus(t, natsbus.Options{})
	sub := subscribe(t, bus, "mcpjupyter.ev.>")
	pub := startPublisher(t, l, bus, natsbus.PublisherOptions{Cursor: "natsbus", CursorEvery: 1})
	for _, want := range evs[3:] {
		got := receive(t, sub)
		if got.seq != want.Seq || (got.ref != nil) != (want.Seq == big.Seq) {
			t.Fatalf("after the restart got event %d (reference %v), want %d", got.seq, got.ref != nil, want.Seq)
		}
	}
	waitConfirmed(t, pub, evs[len(evs)-1].Seq)
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seq, _, _, _ := l.LoadSnapshot("natsbus"); seq != evs[len(evs)-1].Seq {
		t.Fatalf("cursor saved at %d after the restart, want %d (past the oversized event %d)", seq, evs[len(evs)-1].Seq, big.Seq)
	}
}

func waitConfirmed(t *testing.T, pub *natsbus.Publisher, seq uint64) {
	t.Helper()
	testkit.WaitUntil(t, 30*time.Second, fmt.Sprintf("the server confirms events up to %d", seq), func() (bool, string) {
		return pub.Confirmed() >= seq, fmt.Sprintf("confirmed up to %d, healthy: %v", pub.Confirmed(), pub.Healthy())
	})
}
