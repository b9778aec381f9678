package jupyter

import "sync"

// Received is one item from Client.Messages.
//
// If Dropped > 0 the item is a gap marker: that many IOPub messages were
// discarded at this position because the receive queue was over its limit;
// Msg is zero. Otherwise Msg arrived on Channel.
type Received struct {
	Channel Channel
	Msg     Message
	Dropped int

	// frames is the message as read from the socket, not yet verified or
	// decoded: the socket readers only queue, so they keep up with the
	// kernel; the pump decodes.
	frames [][]byte
}

// recvQueue is the in-memory queue between the socket readers (producers,
// which must never block) and the single pump goroutine feeding
// Client.Messages. Only IOPub messages are ever dropped: replies on
// shell/control/stdin are bounded by the requests the caller sent.
type recvQueue struct {
	mu       sync.Mutex
	items    []Received
	head     int
	bytes    int64
	maxBytes int64
	maxMsgs  int
	dropped  uint64
	notify   chan struct{} // capacity 1: "something was pushed"
}

func newRecvQueue(maxBytes int64, maxMsgs int) *recvQueue {
	return &recvQueue{maxBytes: maxBytes, maxMsgs: maxMsgs, notify: make(chan struct{}, 1)}
}

func msgSize(r Received) int64 {
	if r.frames != nil {
		n := int64(64)
		for _, f := range r.frames {
			n += int64(len(f)) + 24
		}
		return n
	}
	m := r.Msg
	n := int64(len(m.Metadata) + len(m.Content) + 256) // 256: header strings, slice overhead
	for _, b := range m.Buffers {
		n += int64(len(b))
	}
	return n
}

// push appends r, or for IOPub over the limit records a drop. It reports
// whether r was dropped. It never blocks beyond the mutex.
func (q *recvQueue) push(r Received) (dropped bool) {
	size := msgSize(r)
	q.mu.Lock()
	n := len(q.items) - q.head
	if r.Channel == IOPub && (n >= q.maxMsgs || q.bytes+size > q.maxBytes) {
		q.dropped++
		if n > 0 && q.items[len(q.items)-1].Dropped > 0 {
			q.items[len(q.items)-1].Dropped++
		} else {
			q.items = append(q.items, Received{Channel: IOPub, Dropped: 1})
		}
		dropped = true
	} else {
		q.items = append(q.items, r)
		q.bytes += size
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return dropped
}

// pop removes the oldest item, if any.
func (q *recvQueue) pop() (Received, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return Received{}, false
	}
	r := q.items[q.head]
	q.items[q.head] = Received{} // let the GC have the frames
	q.head++
	if r.Dropped == 0 {
		q.bytes -= msgSize(r)
	}
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > 1024 && q.head > len(q.items)/2:
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return r, true
}
