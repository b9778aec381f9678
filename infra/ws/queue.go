package ws

import (
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// frame is one encoded event (or pong) waiting to be sent.
type frame struct {
	seq  uint64
	data []byte
	ev   *events.Event // for subscriptions: the event (data is its Raw)
}

// queue is a client's bounded send queue. push never blocks: past the bound
// it marks the queue overflowed and refuses from then on.
type queue struct {
	mu       sync.Mutex
	frames   []frame
	bytes    int
	maxMsgs  int
	maxBytes int
	over     bool
	ready    chan struct{} // cap 1: something to send, or overflow
}

func newQueue(maxMsgs, maxBytes int) *queue {
	return &queue{maxMsgs: maxMsgs, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push adds f; it reports false (and marks overflow) when f does not fit.
func (q *queue) push(f frame) bool {
	q.mu.Lock()
	if q.over {
		q.mu.Unlock()
		return false
	}
	if len(q.frames) >= q.maxMsgs || q.bytes+len(f.data) > q.maxBytes {
		q.over = true
		q.frames, q.bytes = nil, 0 // NB: the client is closed; free its backlog now
		q.mu.Unlock()
		q.signal()
		return false
	}
	q.frames = append(q.frames, f)
	q.bytes += len(f.data)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns everything queued (and empties the queue), and whether it
// overflowed.
func (q *queue) take(dst []frame) ([]frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst[:0], q.frames...)
	clear(q.frames)
	q.frames, q.bytes = q.frames[:0], 0
	return dst, q.over
}

// size returns the queued messages and bytes.
func (q *queue) size() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames), q.bytes
}
