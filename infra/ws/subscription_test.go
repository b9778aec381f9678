package ws_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// subSeqs reads s until it delivered until, checking each event is k's
// and decodes.
func subSeqs(t testing.TB, s *ws.Subscription, kernel string, until uint64) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var seqs []uint64
	for len(seqs) == 0 || seqs[len(seqs)-1] < until {
		evs, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next after %v: %v", tail(seqs), err)
		}
		for _, e := range evs {
			if e.Kernel != kernel {
				t.Fatalf("event %d of kernel %q on a subscription to %q", e.Seq, e.Kernel, kernel)
			}
			if _, err := events.As[events.IOPubMessageReceived](&e); err != nil {
				t.Fatalf("event %d: %v", e.Seq, err)
			}
			seqs = append(seqs, e.Seq)
		}
	}
	return seqs
}

// TestSubscribeCatchUpThenLive: a subscription after a seq gets the
// kernel's recorded events (from the backlog, the log for what the backlog
// no longer holds), then the live ones: in order, no gap, no duplicate.
func TestSubscribeCatchUpThenLive(t *testing.T) {
	for _, ring := range []int{1000, 30} { // all in the backlog; the older part only in the log
		t.Run(fmt.Sprint("ring", ring), func(t *testing.T) {
			l := testkit.OpenLog(t, testkit.TempDataDir(t))
			mixed(t, l, 200)
			_, hub, _ := startWithBacklog(t, l, ring)
			sub, err := hub.Subscribe("k1", ws.SubscribeOptions{After: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			mixed(t, l, 20)
			want := kernelSeqs(t, l, "k1", 3)
			if got := subSeqs(t, sub, "k1", want[len(want)-1]); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if ring == 1000 && hub.LogReads() != 0 {
				t.Fatalf("the log was read %d times: the backlog held everything", hub.LogReads())
			}
		})
	}
}

// TestSubscribeLive: a live subscription gets only what is appended after
// it began.
func TestSubscribeLive(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	mixed(t, l, 50)
	_, hub, _ := startWithBacklog(t, l, 1000)
	sub, err := hub.Subscribe("k2", ws.SubscribeOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	before := l.Last()
	mixed(t, l, 10)
	want := kernelSeqs(t, l, "k2", before)
	if got := subSeqs(t, sub, "k2", want[len(want)-1]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestSubscriptionSlowEndsAlone: a subscription whose queue overflows ends
// with a SlowError naming where to resume, without slowing the hub or a
// /ws client; subscribing again after that seq loses nothing.
func TestSubscriptionSlowEndsAlone(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	_, hub, url := startWithBacklog(t, l, 100000)
	slow, err := hub.Subscribe("k1", ws.SubscribeOptions{Live: true, QueueMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := hub.Subscribe("k1", ws.SubscribeOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	wsClient := dial(t, url+"?kernel=k1")
	appendN(t, l, "k1", 100, "x\n")
	last := l.Last()
	if got := subSeqs(t, fast, "k1", last); len(got) != 100 {
		t.Fatalf("the other subscription got %d of 100", len(got))
	}
	if got := readSeqs(t, wsClient, last); len(got) != 100 {
		t.Fatalf("the /ws client got %d of 100", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []uint64
	var slowErr *ws.SlowError
	for {
		evs, err := slow.Next(ctx)
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if err != nil {
			if !errors.As(err, &slowErr) || !errors.Is(err, ws.ErrSlowSubscriber) {
				t.Fatalf("slow subscription ended with %v, want a SlowError", err)
			}
			break
		}
	}
	if slowErr.After != lastOr(got, 0) || len(got) > 10 {
		t.Fatalf("slow error after %d, delivered %v", slowErr.After, got)
	}
	again, err := hub.Subscribe("k1", ws.SubscribeOptions{After: slowErr.After})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	rest := subSeqs(t, again, "k1", last)
	if all := append(got, rest...); fmt.Sprint(all) != fmt.Sprint(kernelSeqs(t, l, "k1", 0)) {
		t.Fatalf("resumed: %v", all)
	}
}

// TestSubscribeRefusals: a cursor past the log's end, no kernel, a closed
// hub.
func TestSubscribeRefusals(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	mixed(t, l, 5)
	_, hub, _ := startWithBacklog(t, l, 100)
	if _, err := hub.Subscribe("k1", ws.SubscribeOptions{After: l.Last() + 1}); err == nil {
		t.Fatal("a cursor past the end was accepted")
	}
	if _, err := hub.Subscribe("", ws.SubscribeOptions{}); err == nil {
		t.Fatal("no kernel accepted")
	}
	sub, err := hub.Subscribe("k1", ws.SubscribeOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ws.ErrClosed) {
		t.Fatalf("next on a closed hub: %v", err)
	}
	if _, err := hub.Subscribe("k1", ws.SubscribeOptions{Live: true}); !errors.Is(err, ws.ErrClosed) {
		t.Fatalf("subscribe on a closed hub: %v", err)
	}
}
