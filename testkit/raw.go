package testkit

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

// RawExecute is the baseline every kernel benchmark compares to: it sends
// one execute_request with the raw zmq4 client and returns once BOTH the
// execute_reply and the idle status have arrived (their order is not fixed).
// It returns the reply's content.
func RawExecute(t testing.TB, c *jupyter.Client, code string, timeout time.Duration) map[string]any {
	t.Helper()
	h, err := c.Send(jupyter.Shell, "execute_request", jupyter.NewExecuteRequest(code))
	if err != nil {
		t.Fatalf("send execute_request: %v", err)
	}
	var reply map[string]any
	var gotReply, gotIdle bool
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !gotReply || !gotIdle {
		select {
		case r, ok := <-c.Messages():
			if !ok {
				t.Fatalf("messages closed")
			}
			if r.Dropped > 0 || r.Msg.Parent.MsgID != h.MsgID {
				continue
			}
			switch {
			case r.Channel == jupyter.Shell && r.Msg.Header.MsgType == "execute_reply":
				if err := json.Unmarshal(r.Msg.Content, &reply); err != nil {
					t.Fatalf("decode execute_reply: %v", err)
				}
				gotReply = true
			case r.Channel == jupyter.IOPub && r.Msg.Header.MsgType == "status":
				var st struct {
					ExecutionState string `json:"execution_state"`
				}
				_ = json.Unmarshal(r.Msg.Content, &st)
				gotIdle = gotIdle || st.ExecutionState == "idle"
			}
		case <-deadline.C:
			t.Fatalf("raw execute %q not complete after %v (reply=%t idle=%t)", code, timeout, gotReply, gotIdle)
		}
	}
	return reply
}

// RawRoundTrips runs `1+1` n times on k with RawExecute (after one warm-up)
// and returns each round trip's latency.
func RawRoundTrips(t testing.TB, k *jupyter.Kernel, n int) []time.Duration {
	t.Helper()
	RawExecute(t, k.Client, "1+1", 30*time.Second)
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if r := RawExecute(t, k.Client, "1+1", 30*time.Second); r["status"] != "ok" {
			t.Fatalf("raw reply = %v", r)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// P50 returns the median of lat (0 for none), in microseconds. It sorts lat.
func P50(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3
}
