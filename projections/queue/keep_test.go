package queue

import (
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestKeepUnfinishedExecutionStreams: retention keeps the stream of an
// execution until it finishes, and nothing of other streams.
func TestKeepUnfinishedExecutionStreams(t *testing.T) {
	f := &feeder{m: NewModel()}
	f.add(events.ExecutionQueued{ExecutionID: "a", KernelID: "k", Code: "1"}, "a")
	f.add(events.ExecutionQueued{ExecutionID: "b", KernelID: "k", Code: "2"}, "b")
	f.add(events.ExecutionStarted{ExecutionID: "a", KernelID: "k", MsgID: "m"}, "a")
	keep := func(stream string) bool { return f.m.Keep(events.Event{Stream: stream}) }
	if !keep(events.ExecutionStream("a")) || !keep(events.ExecutionStream("b")) {
		t.Fatal("a running and a queued execution's streams are not kept")
	}
	if keep(events.KernelStream("a")) || keep(events.ExecutionStream("unknown")) {
		t.Fatal("a kernel stream or an unknown execution's stream is kept")
	}
	f.add(events.ExecutionFinished{ExecutionID: "a", Status: "ok"}, "a")
	if keep(events.ExecutionStream("a")) {
		t.Fatal("a finished execution's stream is still kept")
	}
	if !keep(events.ExecutionStream("b")) {
		t.Fatal("the queued execution's stream is no longer kept")
	}
}
