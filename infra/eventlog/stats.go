package eventlog

import (
	"sync"
	"time"
)

// Stats are counters an operator can watch.
type Stats struct {
	Commits       uint64        // settles: advances of Last, each over the appends one fsync made durable (≈ syncs)
	Appends       uint64        // Append calls served
	Events        uint64        // events written
	CommitLatency time.Duration // per settle, from the oldest append's write to its durability, summed
}

type stats struct {
	mu sync.Mutex
	s  Stats
}

func (s *stats) record(appends, events int, d time.Duration) {
	s.mu.Lock()
	s.s.Commits++
	s.s.Appends += uint64(appends)
	s.s.Events += uint64(events)
	s.s.CommitLatency += d
	s.mu.Unlock()
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.appendStats.mu.Lock()
	defer l.appendStats.mu.Unlock()
	return l.appendStats.s
}
