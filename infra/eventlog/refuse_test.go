package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestRefusedAppendWakesAnAppendWaitingForRoom: an append holding all the
// room under the unsynced bound is refused (disk full, on a real tmpfs);
// the append waiting for that room must go on at once — nothing was
// written, so no settle would ever wake it — not sleep until its ctx ends.
func TestRefusedAppendWakesAnAppendWaitingForRoom(t *testing.T) {
	fs := testkit.SmallFS(t, 96<<20)
	const minFree = 32 << 20
	testkit.FillFS(t, filepath.Join(fs, "filler"), 40<<20) // 8 MiB above the reserve
	var armed, in, proceed = make(chan struct{}), make(chan struct{}), make(chan struct{})
	l := testkit.OpenLogWith(t, filepath.Join(fs, "events"), eventlog.Options{Node: "n", MinFree: minFree,
		SpaceInterval: 20 * time.Millisecond, MaxUnsyncedEvents: 4,
		BeforeCommit: func() {
			select {
			case <-armed:
			default:
				return
			}
			select {
			case <-in:
				return // only the holder's batch is held
			default:
			}
			close(in)
			<-proceed
		}})
	drafts := func(n int) []events.Draft {
		var ds []events.Draft
		for range n {
			ds = append(ds, bigOutput(256))
		}
		return ds
	}
	close(armed)
	holder := make(chan error, 1)
	go func() {
		_, err := l.AppendAsync(context.Background(), drafts(4)...) // takes all the room
		holder <- err
	}()
	<-in
	waits := l.RoomWaits()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waiter := make(chan error, 1)
	go func() {
		_, err := l.AppendAsync(ctx, drafts(2)...)
		waiter <- err
	}()
	testkit.WaitUntil(t, 10*time.Second, "the second append waiting for room", func() (bool, string) {
		return l.RoomWaits() > waits, ""
	})
	testkit.FillFS(t, filepath.Join(fs, "hold"), minFree/8)
	testkit.WaitUntil(t, 10*time.Second, "the log seeing its disk full", func() (bool, string) {
		sp := l.Space()
		return sp.Level == eventlog.SpaceReserve, fmt.Sprintf("level %d free %d", sp.Level, sp.Free)
	})
	close(proceed)
	if err := <-holder; !errors.Is(err, events.ErrDiskFull) {
		t.Fatalf("holder: %v, want a disk-full refusal", err)
	}
	start := time.Now()
	err := <-waiter
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the append waiting for room slept until its ctx ended (%v) after the holder was refused: %v", time.Since(start), err)
	}
	if !errors.Is(err, events.ErrDiskFull) {
		t.Fatalf("waiter: %v, want it to go on and be refused for the full disk", err)
	}
}
