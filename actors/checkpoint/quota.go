package checkpoint

import (
	"errors"
	"fmt"
	"sync"
)

// ErrQuota: the save would take its owner's checkpoint files past
// --max-checkpoint-bytes.
var ErrQuota = errors.New("checkpoint quota reached")

// quota keeps each principal's checkpoint bytes under a bound, exactly,
// while saves run in parallel: a save reserves its size once it is known
// (the file is sealed but not committed) against what the log recorded and
// what other saves reserved; a refused save commits nothing. The work
// goroutines reserve, the mailbox releases and updates: hence the mutex.
type quota struct {
	max int64 // 0: no bound

	mu        sync.Mutex
	committed map[string]int64 // stored name → file size, as the actor's state says
	reserved  map[string]int64 // stored name → size of a save being committed
}

func newQuota(max int64) *quota {
	return &quota{max: max, committed: map[string]int64{}, reserved: map[string]int64{}}
}

// set takes the sizes the state records (after every change of it).
func (q *quota) set(st State) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.committed)
	for stored, e := range st.Checkpoints {
		q.committed[stored] = e.Size
	}
}

// used is what stored's owner holds in files other than stored (committed
// and reserved), and in how many.
func (q *quota) used(stored string) (int64, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.usedLocked(stored)
}

func (q *quota) usedLocked(stored string) (used int64, files int) {
	owner, _ := Owned(stored)
	for _, m := range []map[string]int64{q.committed, q.reserved} {
		for s, n := range m {
			if o, _ := Owned(s); o == owner && s != stored {
				used += n
				files++
			}
		}
	}
	return used, files
}

// reserve admits a save of size bytes under stored, or refuses it naming
// the bound and what holds it. The file it replaces (same stored name) is
// not counted.
func (q *quota) reserve(stored string, size int64) error {
	if q.max <= 0 {
		return nil
	}
	owner, _ := Owned(stored)
	q.mu.Lock()
	defer q.mu.Unlock()
	used, files := q.usedLocked(stored)
	if used+size > q.max {
		return fmt.Errorf("%w: principal %q has %d bytes in %d checkpoints of %d allowed (--max-checkpoint-bytes %d) and this save needs %d more: "+
			"delete_checkpoint some of them (list_checkpoints shows them), save fewer variables, or ask an admin to raise the limit; nothing was saved",
			ErrQuota, owner, used, files, q.max, q.max, size)
	}
	q.reserved[stored] = size
	return nil
}

// left is what stored's owner may still use for a save of stored (the
// file it replaces not counted), the bound of the save's staging file; 0:
// no bound. A quota already used up gives 1: the save fails at its first
// chunk instead of writing it.
func (q *quota) left(stored string) int64 {
	if q.max <= 0 {
		return 0
	}
	used, _ := q.used(stored)
	return max(q.max-used, 1)
}

func (q *quota) release(stored string) {
	q.mu.Lock()
	delete(q.reserved, stored)
	q.mu.Unlock()
}

// sealedBytes bounds the size of a checkpoint file from what is known when
// it is sealed: its payload, its metadata and key id, and the format's
// fixed parts (infra/checkpointfile format 2: a header of 29 bytes and the
// key id; a 20-byte entry — epoch and tag — per 1 MiB chunk in the tag
// list; a footer of 48; an encrypted chunk is as long as its plaintext).
// NB: an upper bound, so the quota is never overshot; TestSealedBytes
// holds it to real files.
func sealedBytes(keyID string, payload int64, meta int) int64 {
	const (
		header    = 29
		chunk     = 1 << 20
		listEntry = 4 + 16
		footer    = 48
	)
	chunks := (payload + chunk - 1) / chunk
	return header + int64(len(keyID)) + payload + chunks*listEntry + int64(meta) + footer
}
