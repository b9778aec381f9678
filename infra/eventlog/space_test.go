package eventlog_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// bigOutput is an output event of about n bytes that does not compress.
func bigOutput(n int) events.Draft {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	content, _ := json.Marshal(map[string]string{"name": "stdout", "text": base64.StdEncoding.EncodeToString(b)})
	return events.Draft{Stream: events.ExecutionStream("x1"), Kernel: "k1",
		Payload: events.IOPubMessageReceived{KernelID: "k1", ExecutionID: "x1", MsgID: "m", MsgType: "stream", Content: content}}
}

// TestDiskFullIsAState fills a real (tmpfs) file system under the log with
// a burst of concurrent large appends. The log must refuse before Pebble
// runs out of space: new work first (CheckSpace), then output (OutputRoom),
// then every append with a *DiskFullError, while the log stays healthy,
// readable, and appends again as soon as space is freed. Before the
// watermark, the burst ran the WAL into ENOSPC: a failed (inoperable) log or
// a crash in Pebble's WAL rotation.
func TestDiskFullIsAState(t *testing.T) {
	fs := testkit.SmallFS(t, 96<<20)
	const minFree = 32 << 20
	filler := filepath.Join(fs, "filler")
	testkit.FillFS(t, filler, 40<<20) // leave 40 MiB: 8 above the reserve
	l := testkit.OpenLogWith(t, filepath.Join(fs, "events"), eventlog.Options{Node: "n", MinFree: minFree,
		MinFreeSetting: "--min-free-disk", SpaceInterval: 20 * time.Millisecond})
	if err := l.CheckSpace(); err != nil {
		t.Fatalf("CheckSpace with room to spare: %v", err)
	}
	var (
		acked        atomic.Int64
		refused      atomic.Int64
		sawLow       atomic.Bool
		sawFloor     atomic.Bool
		unexpected   error
		unexpectedMu sync.Mutex
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			d := bigOutput(256 << 10)
			for refused.Load() < 32 {
				if l.CheckSpace() != nil {
					sawLow.Store(true)
				}
				if l.OutputRoom(0) != nil {
					sawFloor.Store(true)
				}
				_, err := l.Append(ctx, d)
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, events.ErrDiskFull):
					refused.Add(1)
				default:
					unexpectedMu.Lock()
					unexpected = err
					unexpectedMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if unexpected != nil {
		t.Fatalf("append while filling the disk: %v (want only *DiskFullError refusals)", unexpected)
	}
	if !sawLow.Load() || !sawFloor.Load() {
		t.Fatalf("CheckSpace refused %v, OutputRoom refused %v before appends were refused; want both", sawLow.Load(), sawFloor.Load())
	}
	// NB: Pebble's own flushes and compactions may still dip into the
	// reserve (and the ballast) after the last refusal; what must hold is
	// that nothing failed: only refusals above, and a healthy log below.
	// NB: Pebble gives space back by itself (a flush, a recycled WAL):
	// hold the file system below the reserve for the checks that follow.
	hold := filepath.Join(fs, "hold")
	testkit.FillFS(t, hold, minFree/8)
	_, err := l.Append(ctx, bigOutput(1024))
	var dfe *eventlog.DiskFullError
	if !errors.As(err, &dfe) || dfe.Level != eventlog.SpaceReserve || dfe.Min != minFree {
		t.Fatalf("append below the reserve: %v, want *DiskFullError at the reserve level", err)
	}
	for _, want := range []string{"disk full", "free on the file system of", "--min-free-disk", "Free space"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	if err := l.Healthy(); err != nil {
		t.Fatalf("a log refusing for space must stay healthy (usable again later): %v", err)
	}
	if got := readAll(t, l); int64(len(got)) != acked.Load() {
		t.Fatalf("read %d events while full, %d were acknowledged", len(got), acked.Load())
	}
	t.Logf("%d appends acknowledged, %d refused; %d bytes free", acked.Load(), refused.Load(), testkit.FreeBytes(t, fs))

	// Space returns: the next append and CheckSpace succeed without waiting
	// for the monitor.
	for _, f := range []string{filler, hold} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.CheckSpace(); err != nil {
		t.Fatalf("CheckSpace after freeing space: %v", err)
	}
	evs, err := l.Append(ctx, bigOutput(1024))
	if err != nil || evs[0].Seq != uint64(acked.Load())+1 {
		t.Fatalf("append after freeing space: %v, %v (want sequence %d)", evs, err, acked.Load()+1)
	}
}
