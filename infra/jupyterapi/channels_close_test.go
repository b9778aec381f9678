package jupyterapi

import (
	"testing"

	"github.com/coder/websocket"
)

// TestRegisterAfterCloseChannelsEnds: a connection that registers after
// CloseChannels took its list (it passed the closed check before) is
// ended at once with 1001, not left open past the drain.
func TestRegisterAfterCloseChannelsEnds(t *testing.T) {
	s := &Server{}
	s.ch.open = map[sessionKey]*conn{}
	s.ch.perKern = map[string]int{}
	s.ch.cursors = map[sessionKey]uint64{}
	if err := s.CloseChannels(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := &conn{s: s, key: sessionKey{"k", "p", "s"}, stop: make(chan struct{}), done: make(chan struct{})}
	c.register()
	defer c.unregister()
	select {
	case <-c.stop:
	default:
		t.Fatal("a connection registered after CloseChannels is still open")
	}
	if c.endWith.code != websocket.StatusGoingAway {
		t.Fatalf("ended with %d %q, want 1001", c.endWith.code, c.endWith.reason)
	}
}
