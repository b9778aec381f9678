package kernel

import (
	"errors"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// outputRoom is what a log that watches its disk offers (infra/eventlog's
// OutputRoom): an error (errors.Is events.ErrDiskFull) while output should
// not be appended.
type outputRoom interface {
	OutputRoom(bytes int) error
}

// shedOutput replaces, once the log has no room for the batch's output so
// far (asked with its running size), every further output message of a
// batch by gap markers (Dropped, in order, one per run of
// messages of the same parent), so that Step records what was lost as an
// IOPubGapRecorded instead of appending it. Status messages and everything
// off IOPub stay: they are small, and they are how executions end.
func shedOutput(log any, batch []Incoming) []Incoming {
	room, ok := log.(outputRoom)
	if !ok || len(batch) == 0 {
		return batch
	}
	// NB: one question for the whole batch while there is room (nearly
	// always); message by message only once it is refused.
	total := 0
	for _, m := range batch {
		if m.Dropped == 0 && m.Channel == events.ChannelIOPub && m.MsgType != "status" {
			total += len(m.Content)
		}
	}
	if room.OutputRoom(total) == nil {
		return batch
	}
	var out []Incoming
	size, full := 0, false
	for i, m := range batch {
		if m.Dropped > 0 || m.Channel != events.ChannelIOPub || m.MsgType == "status" {
			if full {
				out = append(out, m)
			}
			continue
		}
		if !full {
			size += len(m.Content)
			if room.OutputRoom(size) == nil {
				continue
			}
			full = true
			out = append(make([]Incoming, 0, len(batch)), batch[:i]...)
		}
		if n := len(out); n > 0 && out[n-1].Dropped > 0 && out[n-1].ParentMsgID == m.ParentMsgID && out[n-1].MsgType == diskFullMarker {
			out[n-1].Dropped++
			continue
		}
		out = append(out, Incoming{Channel: events.ChannelIOPub, ParentMsgID: m.ParentMsgID, MsgType: diskFullMarker, Dropped: 1})
	}
	if !full {
		return batch
	}
	return out
}

// diskFullMarker is the MsgType of a gap marker shedOutput made: Step
// gives such a gap its reason.
const diskFullMarker = "disk-full"

// diskFullReason is the IOPubGapRecorded reason of output shed for space.
const diskFullReason = "the disk is full (--min-free-disk): output was not written to the log"

// appendBackoff retries an append the log refused for space, waiting longer
// each time (never a busy loop), until the space returns or ctx's deadline.
func appendBackoff(deadline <-chan struct{}, try func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := try()
		if err == nil || !errors.Is(err, events.ErrDiskFull) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-deadline:
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
	}
}
