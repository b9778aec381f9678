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
	// Consumed: the client itself answered this message (readiness
	// traffic while re-attaching). It is handed on only so that a consumer
	// counting the kernel's messages (actors/kernel, gap.go) sees it.
	Consumed bool

	// frames is the message as read from the socket, not yet verified or
	// decoded: the socket readers only queue, so they keep up with the
	// kernel; the pump decodes.
	frames [][]byte
}

// recvQueue is the in-memory queue between the socket readers (producers)
// and the single pump goroutine feeding Client.Messages.
//
// It is bounded in bytes and messages. Past the bound the IOPub reader
// waits for room (back-pressure): it stops reading its socket, TCP fills,
// and the kernel's PUB socket queues up to its high-water mark (which the
// launcher raises, iopubhwm.go) — nothing is dropped on our side. Shell,
// control and stdin never wait: their replies are bounded by the requests
// the caller sent, and an execute_reply must not queue behind output.
//
// NB: a message larger than the bound is accepted when the queue holds no
// IOPub bytes, so one huge output cannot wedge the reader; the queue then
// holds at most max(maxBytes, one message) of IOPub.
type recvQueue struct {
	mu       sync.Mutex
	items    []Received
	head     int
	bytes    int64
	iopub    int64 // bytes of queued IOPub messages
	maxBytes int64
	maxMsgs  int
	dropped  uint64
	notify   chan struct{} // capacity 1: "something was pushed"
	room     chan struct{} // capacity 1: "something was popped"
	// waited counts pushes that waited for room; peakBytes and peakMsgs
	// are the most the queue held (tests prove the bound with them).
	waited    uint64
	peakBytes int64
	peakMsgs  int
}

func newRecvQueue(maxBytes int64, maxMsgs int) *recvQueue {
	return &recvQueue{maxBytes: maxBytes, maxMsgs: maxMsgs, notify: make(chan struct{}, 1), room: make(chan struct{}, 1)}
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

// full reports whether an IOPub message of size must wait. Caller holds mu.
func (q *recvQueue) full(size int64) bool {
	if q.iopub == 0 {
		return false // NB: always room for one, however large
	}
	return len(q.items)-q.head >= q.maxMsgs || q.bytes+size > q.maxBytes
}

// push appends r. An IOPub message waits while the queue is full, until
// there is room, or until done closes: then it is dropped (a gap marker
// stands in for it) and push reports true. Other channels never wait.
func (q *recvQueue) push(r Received, done <-chan struct{}) (dropped bool) {
	size := msgSize(r)
	q.mu.Lock()
	waited := false
	for r.Channel == IOPub && q.full(size) {
		if !waited {
			q.waited++
			waited = true
		}
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-done:
			q.mu.Lock()
			q.drop()
			q.mu.Unlock()
			return true
		}
		q.mu.Lock()
	}
	q.items = append(q.items, r)
	q.bytes += size
	if r.Channel == IOPub {
		q.iopub += size
	}
	q.peakBytes, q.peakMsgs = max(q.peakBytes, q.bytes), max(q.peakMsgs, len(q.items)-q.head)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return false
}

// drop records one IOPub message lost (the client is closing). Caller
// holds mu.
func (q *recvQueue) drop() {
	q.dropped++
	if n := len(q.items); n > q.head && q.items[n-1].Dropped > 0 {
		q.items[n-1].Dropped++
	} else {
		q.items = append(q.items, Received{Channel: IOPub, Dropped: 1})
	}
}

// len is the number of items queued. Caller holds mu.
func (q *recvQueue) len() int { return len(q.items) - q.head }

// pop removes the oldest item, if any, and wakes a waiting push.
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
		size := msgSize(r)
		q.bytes -= size
		if r.Channel == IOPub {
			q.iopub -= size
		}
	}
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > 1024 && q.head > len(q.items)/2:
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	select {
	case q.room <- struct{}{}:
	default:
	}
	return r, true
}
