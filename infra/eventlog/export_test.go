package eventlog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// WALEventSeqs returns the sequences of the event records in dir's
// write-ahead logs, in the order the WAL holds them (oldest file first).
// The log must be closed. Tests use it to check that sequence order is
// WAL order.
func WALEventSeqs(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range entries {
		if n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".log"), 10, 64); err == nil && strings.HasSuffix(e.Name(), ".log") {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	var seqs []uint64
	for _, num := range nums {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%06d.log", num)))
		if err != nil {
			return nil, err
		}
		r := newWALReader(bytes.NewReader(data), num)
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("WAL %06d.log: %w", num, err)
			}
			repr, err := io.ReadAll(rec)
			if err != nil {
				// A torn or zeroed tail ends the file.
				break
			}
			var b pebble.Batch
			if err := b.SetRepr(repr); err != nil {
				return nil, err
			}
			br := b.Reader()
			for {
				_, key, _, ok, err := br.Next()
				if err != nil {
					return nil, err
				}
				if !ok {
					break
				}
				if len(key) == 9 && key[0] == prefixEvent {
					seqs = append(seqs, seqFromEventKey(key))
				}
			}
		}
	}
	return seqs, nil
}

// RoomWaits counts the times an append waited for room under the bound on
// what is written but not durable.
func (l *Log) RoomWaits() int64 { return l.w.roomWaits.Load() }

// QueuedAppends is how many appends wait for the write lock.
func (l *Log) QueuedAppends() int {
	l.w.qmu.Lock()
	defer l.w.qmu.Unlock()
	return len(l.w.queue)
}
