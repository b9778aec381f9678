package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/record"
)

// walTail is what a scan of the write-ahead logs found at their ends.
type walTail struct {
	File    string // the WAL whose end is damaged ("" when none is)
	Offset  int64  // where the readable records end
	Bytes   int64  // bytes after Offset that are not a clean end
	Reason  string // what was found there
	Damaged bool
}

// walChunk* are Pebble's WAL chunk encodings and sizes (record/record.go):
// a chunk header is checksum(4) length(2) encoding(1), then, for the
// recyclable (5-8) and WAL-sync (9-12) encodings, the log number (4).
const (
	walBlockSize        = 32 << 10
	walRecyclableHeader = 11
)

// newWALReader calls record.NewReader, whose log-number parameter has a type
// from one of Pebble's internal packages: the value is converted by
// reflection to whatever that type is.
func newWALReader(r io.Reader, num uint64) *record.Reader {
	fn := reflect.ValueOf(record.NewReader)
	out := fn.Call([]reflect.Value{reflect.ValueOf(&r).Elem(), reflect.ValueOf(num).Convert(fn.Type().In(1))})
	return out[0].Interface().(*record.Reader)
}

// scanWALTails reads every write-ahead log in dir to its end, the way
// Pebble's recovery does, and reports the first one that does not end
// cleanly. Pebble treats a damaged last record as the end of the log and
// drops it silently; this scan is how the log finds out. A clean end is
// the EOF trailer, the end of the file, zeros, or records of an older log
// number (a recycled file's previous contents).
func scanWALTails(dir string) (walTail, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return walTail{}, nil
		}
		return walTail{}, fmt.Errorf("list write-ahead logs in %s: %w", dir, err)
	}
	type wal struct {
		name string
		num  uint64
	}
	var wals []wal
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".log") {
			continue
		}
		num, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 64)
		if err != nil {
			continue
		}
		wals = append(wals, wal{name, num})
	}
	sort.Slice(wals, func(i, j int) bool { return wals[i].num < wals[j].num })
	for _, w := range wals {
		t, err := scanWAL(filepath.Join(dir, w.name), w.num)
		if err != nil {
			return walTail{}, err
		}
		if t.Damaged {
			t.File = w.name
			return t, nil
		}
	}
	return walTail{}, nil
}

// scanWAL reads one WAL's records to the end and classifies what follows
// the last readable one.
func scanWAL(path string, num uint64) (walTail, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return walTail{}, fmt.Errorf("read write-ahead log: %w", err)
	}
	r := newWALReader(bytes.NewReader(data), num)
	var good int64
	for {
		rec, err := r.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		if err == io.EOF {
			return walTail{}, nil
		}
		if err != nil {
			t := walTail{Offset: good, Bytes: int64(len(data)) - good}
			if cleanEnd(data, good, num) {
				return walTail{}, nil
			}
			t.Damaged = true
			t.Reason = fmt.Sprintf("the write-ahead log holds %d unreadable bytes after offset %d (%v)", t.Bytes, good, err)
			return t, nil
		}
		good = r.Offset()
	}
}

// cleanEnd reports whether what follows offset is no record of this log:
// nothing, zeros, or a chunk of another log number.
func cleanEnd(data []byte, off int64, num uint64) bool {
	for off < int64(len(data)) {
		// The writer zero-pads a block's tail too short for a header.
		if rest := walBlockSize - off%walBlockSize; rest < walRecyclableHeader {
			if !allZero(data[off:min(off+rest, int64(len(data)))]) {
				return false
			}
			off += rest
			continue
		}
		break
	}
	if off >= int64(len(data)) {
		return true
	}
	h := data[off:min(off+walRecyclableHeader, int64(len(data)))]
	if allZero(h) {
		return allZero(data[off:min(off+walBlockSize, int64(len(data)))])
	}
	if len(h) < walRecyclableHeader || h[6] < 5 || h[6] > 12 {
		return false // a legacy or broken header: ours, damaged
	}
	return binary.LittleEndian.Uint32(h[7:11]) != uint32(num)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
