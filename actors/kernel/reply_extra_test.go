package kernel

import (
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// finishedOf runs one execution's reply and idle through Step and returns
// its ExecutionFinished.
func finishedOf(t *testing.T, reply string) events.ExecutionFinished {
	t.Helper()
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	_, drafts, _ := Step(s, []Incoming{shell("m1", "execute_reply", reply), iopub("m1", "status", idle)})
	for _, d := range drafts {
		if f, ok := d.Payload.(events.ExecutionFinished); ok {
			return f
		}
	}
	t.Fatalf("no ExecutionFinished in %v", drafts)
	return events.ExecutionFinished{}
}

// TestReplyPayloadRecorded: the execute_reply's payload and
// user_expressions are recorded on ExecutionFinished (compact JSON text),
// empty ones are not.
func TestReplyPayloadRecorded(t *testing.T) {
	f := finishedOf(t, `{"status":"ok","execution_count":3,"payload":[ {"source":"set_next_input","text":"x","replace":false} ],
		"user_expressions":{"n":{"status":"ok","data":{"text/plain":"3"},"metadata":{}}}}`)
	if f.ReplyPayload != `[{"source":"set_next_input","text":"x","replace":false}]` ||
		f.UserExpressions != `{"n":{"status":"ok","data":{"text/plain":"3"},"metadata":{}}}` || f.ReplyDropped != "" {
		t.Fatalf("recorded %+v", f)
	}
	f = finishedOf(t, `{"status":"ok","execution_count":3,"payload":[],"user_expressions":{}}`)
	if f.ReplyPayload != "" || f.UserExpressions != "" || f.ReplyDropped != "" {
		t.Fatalf("empty payload recorded: %+v", f)
	}
}

// TestReplyPayloadBounded: a payload over events.MaxReplyExtra (a %load of
// a huge file) is not recorded; ReplyDropped says so, and the small
// user_expressions beside it still are.
func TestReplyPayloadBounded(t *testing.T) {
	big := strings.Repeat("a", events.MaxReplyExtra)
	f := finishedOf(t, `{"status":"ok","execution_count":3,"payload":[{"source":"set_next_input","text":"`+big+`"}],"user_expressions":{"n":{"status":"ok"}}}`)
	if f.ReplyPayload != "" || !strings.Contains(f.ReplyDropped, "payload") || f.UserExpressions != `{"n":{"status":"ok"}}` {
		t.Fatalf("oversized payload: payload %d bytes, dropped %q, user_expressions %q", len(f.ReplyPayload), f.ReplyDropped, f.UserExpressions)
	}
}
