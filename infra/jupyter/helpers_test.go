package jupyter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

// cell is what one execution produced.
type cell struct {
	Reply   map[string]any
	Outputs []jupyter.Message // IOPub messages for the request, status excluded
	Gaps    int               // IOPub messages dropped (gap markers)
}

// execute runs code and returns once BOTH its execute_reply and its idle
// status have arrived (their order is not fixed).
func execute(t testing.TB, c *jupyter.Client, code string, timeout time.Duration) cell {
	t.Helper()
	h, err := c.Send(jupyter.Shell, "execute_request", jupyter.NewExecuteRequest(code))
	if err != nil {
		t.Fatalf("send execute_request: %v", err)
	}
	return collect(t, c, h.MsgID, timeout, nil)
}

// collect reads Messages until the reply and idle for msgID arrived. each,
// if set, is called for every IOPub output of the request as it arrives.
func collect(t testing.TB, c *jupyter.Client, msgID string, timeout time.Duration, each func(jupyter.Message)) cell {
	t.Helper()
	var out cell
	var gotReply, gotIdle bool
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !gotReply || !gotIdle {
		select {
		case r, ok := <-c.Messages():
			if !ok {
				t.Fatalf("messages closed")
			}
			if r.Dropped > 0 {
				out.Gaps += r.Dropped
				continue
			}
			if r.Msg.Parent.MsgID != msgID {
				continue
			}
			switch {
			case r.Channel == jupyter.Shell && r.Msg.Header.MsgType == "execute_reply":
				if err := json.Unmarshal(r.Msg.Content, &out.Reply); err != nil {
					t.Fatalf("decode execute_reply: %v", err)
				}
				gotReply = true
			case r.Channel == jupyter.IOPub && r.Msg.Header.MsgType == "status":
				var st struct {
					ExecutionState string `json:"execution_state"`
				}
				_ = json.Unmarshal(r.Msg.Content, &st)
				if st.ExecutionState == "idle" {
					gotIdle = true
				}
			case r.Channel == jupyter.IOPub:
				if each != nil {
					each(r.Msg)
				}
				out.Outputs = append(out.Outputs, r.Msg)
			}
		case <-deadline.C:
			t.Fatalf("execution %q not complete after %v (reply=%t idle=%t, %d outputs)", msgID, timeout, gotReply, gotIdle, len(out.Outputs))
		}
	}
	return out
}

func content(t testing.TB, m jupyter.Message) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Content, &v); err != nil {
		t.Fatalf("decode %s content: %v", m.Header.MsgType, err)
	}
	return v
}
