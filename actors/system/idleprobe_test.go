package system_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestRoundTripsSendNoIdleProbe: ipykernel sends an execution's reply just
// before its idle status, so the reply usually arrives first. The idle
// probe (a kernel_info_request behind the execution) used to go out on
// every such reply: the kernel served it ahead of the next execution and
// its busy/idle statuses were appended to the kernel's stream, on every
// round trip. Now the probe waits actors/kernel.IdleProbeGrace and is
// dropped when the idle arrives. Twenty `1+1` in a row on a real kernel:
// every probe sent would have been served, and its statuses recorded,
// before the last execution ended (shell is FIFO, IOPub is ordered).
func TestRoundTripsSendNoIdleProbe(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	for i := range 20 {
		x := s.WaitExecution(submit(t, s, k, "1+1"), 30*time.Second)
		if x.Status != queue.StatusOK {
			t.Fatalf("execution %d: %+v", i, x)
		}
	}
	var probes []string
	err := s.Log.ReadKernel(context.Background(), k, 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.IOPubMessageReceived); ok && strings.Contains(p.ParentMsgID, "-idle-probe-") {
			probes = append(probes, p.ParentMsgID+" "+p.MsgType)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(probes) > 0 {
		t.Fatalf("%d idle-probe messages recorded on the kernel's stream, e.g. %s", len(probes), probes[0])
	}
}
