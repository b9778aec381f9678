package jupyter

import (
	"sync"
	"testing"
	"time"
)

// TestRecvQueueBoundsIOPubBytes: a producer pushing IOPub faster than the
// consumer pops waits instead of dropping, and the queued bytes never pass
// the bound — except by one message larger than the bound, alone in the
// queue. Shell replies never wait.
func TestRecvQueueBoundsIOPubBytes(t *testing.T) {
	const maxBytes = 64 << 10
	q := newRecvQueue(maxBytes, 1000)
	done := make(chan struct{})
	sizes := []int{1000, 30_000, 200_000, 10, 50_000, 64 << 10}
	const n = 600
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			f := make([]byte, sizes[i%len(sizes)])
			if q.push(Received{Channel: IOPub, frames: [][]byte{f}}, done) {
				t.Errorf("message %d dropped", i)
				return
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for got := 0; got < n; {
		q.mu.Lock()
		over := q.bytes > maxBytes && q.len() > 1
		q.mu.Unlock()
		if over {
			t.Fatalf("the queue holds more than %d bytes in several messages", maxBytes)
		}
		if _, ok := q.pop(); ok {
			got++
			continue
		}
		select {
		case <-q.notify:
		case <-deadline:
			t.Fatalf("stalled after %d messages", got)
		}
	}
	wg.Wait()
	if q.peakBytes > 200_000+64+24 {
		t.Fatalf("peak %d bytes: more than the bound or the largest message", q.peakBytes)
	}
	if q.waited == 0 {
		t.Fatal("the producer never waited: the test did not fill the queue")
	}
	// Full of IOPub, a shell reply still goes in at once.
	q.push(Received{Channel: IOPub, frames: [][]byte{make([]byte, maxBytes)}}, done)
	q.push(Received{Channel: Shell, frames: [][]byte{make([]byte, 100)}}, done)
	if q.len() != 2 {
		t.Fatalf("queue holds %d, want the IOPub message and the shell reply", q.len())
	}
	// Closing releases a waiting producer; the message it held becomes a gap marker.
	released := make(chan bool)
	go func() { released <- q.push(Received{Channel: IOPub, frames: [][]byte{make([]byte, 100)}}, done) }()
	close(done)
	if !<-released {
		t.Fatal("a push released by close was not reported dropped")
	}
}
