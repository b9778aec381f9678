package ws

import (
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Route offers e, encoded as data, as the follow loop does after encoding
// it once: a benchmark times the routing alone (the encoding costs the same
// whoever reads; the log's append is its own figure).
func (h *Hub) Route(e events.Event, data []byte) { h.route(e, frame{seq: e.Seq, data: data}) }

// JoinQueue adds a client reading as p (no kernel filter) whose queue no
// connection drains, and returns what was offered to it: the routing cost
// without the writes, which belong to the connections. Bounds as Options.
func (h *Hub) JoinQueue(p auth.Principal) (taken func() [][]byte, err error) {
	c := &client{view: viewerOf(p, h.opts.Access != nil), q: newQueue(h.opts.QueueMessages, h.opts.QueueBytes), revoked: make(chan struct{})}
	if _, err := h.join(c); err != nil {
		return nil, err
	}
	return func() [][]byte {
		fs, _ := c.q.take(nil)
		out := make([][]byte, len(fs))
		for i, f := range fs {
			out[i] = f.data
		}
		return out
	}, nil
}
