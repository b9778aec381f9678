package lease_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/lease"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestLeaseEventsCarryTheCaller: storing an asset records the principal
// whose request stored it, a read the reader, and the GC's expiry and
// collection nobody; read back from the log.
func TestLeaseEventsCarryTheCaller(t *testing.T) {
	c := newClock()
	e := openEnv(t, testkit.TempDataDir(t), c, nil)
	ctx := context.Background()
	sum, err := e.a.Put(events.WithPrincipal(ctx, "alice"), []byte("png bytes"), "image/png", lease.Origin{KernelID: "k1", ExecutionID: "x1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.a.Get(events.WithPrincipal(ctx, "bob"), sum); err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Hour)
	if _, err := e.a.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = e.log.ReadStream(ctx, events.AssetStream(sum), 0, func(ev events.Event) error {
		holder := ""
		if p, ok := ev.Payload.(events.LeaseGranted); ok {
			holder = "(" + p.Holder + ")"
		}
		got = append(got, ev.Type+holder+"@"+ev.Principal)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "AssetStored@alice LeaseGranted(execution/x1)@alice LeaseGranted(read)@bob LeaseExpired@ LeaseExpired@ AssetCollected@"
	if strings.Join(got, " ") != want {
		t.Fatalf("asset events:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
