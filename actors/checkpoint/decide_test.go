package checkpoint

import (
	"errors"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestDecideTranscript: given the state, when the command, expect the
// events or the error. No kernel, no disk.
func TestDecideTranscript(t *testing.T) {
	s := Apply(State{}, events.Event{Seq: 3, Payload: events.CheckpointSaved{Name: "fri", KernelID: "k1"}})
	cases := []struct {
		c      Command
		events []string
		err    error
	}{
		{Save{Name: "fri"}, nil, ErrExists},
		{Save{Name: "fri", Overwrite: true}, nil, nil},
		{Save{Name: "new", OnDisk: true}, nil, ErrExists},
		{Save{Name: "../../etc/passwd"}, nil, ErrInvalidName},
		{Save{Name: ""}, nil, ErrInvalidName},
		{Load{Name: "fri"}, nil, ErrNotFound},
		{Load{Name: "fri", OnDisk: true}, nil, nil},
		{Delete{Name: "fri"}, []string{events.TypeCheckpointDeleted}, nil},
		{Delete{Name: "gone"}, nil, ErrNotFound},
		{Record{Kernel: "k1", Payload: events.CheckpointRejected{Name: "fri", Reason: "x"}}, []string{events.TypeCheckpointRejected}, nil},
		{Record{Payload: events.CheckpointDeleted{Name: "fri"}}, nil, errors.New("any")},
	}
	for i, c := range cases {
		drafts, err := Decide(s, c.c)
		if (err == nil) != (c.err == nil) || (c.err != nil && c.err.Error() != "any" && !errors.Is(err, c.err)) {
			t.Errorf("%d %+v: err %v, want %v", i, c.c, err, c.err)
		}
		var types []string
		for _, d := range drafts {
			types = append(types, d.Payload.EventType())
			if d.Stream != events.CheckpointStream("fri") {
				t.Errorf("%d: stream %s", i, d.Stream)
			}
		}
		if len(types) != len(c.events) {
			t.Errorf("%d %+v: events %v, want %v", i, c.c, types, c.events)
		}
	}
	s = Apply(s, events.Event{Seq: 4, Payload: events.CheckpointDeleted{Name: "fri"}})
	if _, ok := s.Checkpoints["fri"]; ok {
		t.Fatal("deleted checkpoint still in state")
	}
}
