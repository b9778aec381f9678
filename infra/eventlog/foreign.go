package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Foreign records: in a cluster, each node imports the records other nodes
// published on the shared history stream (infra/natsbus Importer) into its
// own log, so that its read models answer for the whole cluster. An
// imported record keeps its origin's envelope (time, stream, kernel, node,
// principal, type, version, payload) and gets a new local sequence.
//
// The import is exactly once across crashes because the position in the
// history stream of the last record of an import is written in the same
// Pebble batch as the records (key "m foreign"): after a crash either both
// are durable or neither is, and the importer resumes after
// ForeignPosition. Each imported record also gets a mark ("f <seq>" ->
// its position), so that `events verify` and the readers of the log can
// tell an imported record from one this node wrote.

// prefixForeign marks imported records: f <seq be64> -> <position be64>.
const prefixForeign = 'f'

var metaForeignKey = []byte("m foreign")

// metaOriginPrefix starts the keys "m forigin <node>" -> <origin seq be64>:
// the newest origin sequence imported of each node, written in the batch
// of the import, so that an importer restarted can still tell a record
// its origin published again (past the stream's duplicate window) from a
// new one.
const metaOriginPrefix = "m forigin "

func foreignKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixForeign)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// ForeignPosition returns the history stream position of the last record
// imported with AppendForeign (0: none yet). It is durable: it was written
// with the records it covers.
func (l *Log) ForeignPosition() uint64 { return l.foreignPos.Load() }

// AppendForeign appends records written by another node as new records of
// this log, in order, and records position (the history stream position of
// the last of them) in the same batch. It goes through the same write path
// as Append: sequenced in WAL order, sharing group commits with concurrent
// appends, and it returns once durable, after the followers were woken.
//
// Each event keeps Time, Stream, Kernel, Node, Principal, Type, Version and
// Raw; Seq is ignored (a new one is assigned) and Payload is not needed.
// position must be above ForeignPosition: a position at or below it was
// imported already and is refused with ErrForeignImported (nothing written),
// which makes a repeated import after a crash harmless; the check is made
// in the write path, so of two concurrent calls with one position exactly
// one writes. evs may be empty: then only the position is recorded (the
// importer skipped records).
func (l *Log) AppendForeign(ctx context.Context, position uint64, evs []events.Event) error {
	if l.opts.ReadOnly {
		return ErrReadOnly
	}
	if position == 0 {
		return errors.New("append foreign records: position 0 is not a history stream position")
	}
	// NB: a quick refusal only; the write path checks again under its lock.
	if have := l.foreignPos.Load(); position <= have {
		return fmt.Errorf("append foreign records up to position %d: %w (the log holds them up to %d)", position, ErrForeignImported, have)
	}
	for i := range evs {
		if err := checkForeign(&evs[i]); err != nil {
			return fmt.Errorf("append foreign record %d of %d (position %d): %w", i+1, len(evs), position, err)
		}
	}
	p, err := l.writeForeign(ctx, position, evs)
	if err != nil {
		return err
	}
	if _, err := p.Wait(context.Background()); err != nil {
		return err
	}
	for {
		have := l.foreignPos.Load()
		if position <= have || l.foreignPos.CompareAndSwap(have, position) {
			return nil
		}
	}
}

// ErrForeignImported: AppendForeign was given a position the log already
// holds.
var ErrForeignImported = errors.New("eventlog: foreign records already imported")

// checkForeign refuses a record this binary could not replay: the read
// models would stop at it.
func checkForeign(e *events.Event) error {
	if e.Stream == "" || e.Raw == nil || e.Node == "" {
		return errors.New("stream, node and payload are required")
	}
	if strings.IndexByte(e.Stream, 0) >= 0 || strings.IndexByte(e.Kernel, 0) >= 0 {
		return fmt.Errorf("stream %q or kernel %q contains a NUL byte", e.Stream, e.Kernel)
	}
	v, ok := events.CurrentVersion(e.Type)
	if !ok {
		return fmt.Errorf("%s (written by node %s): %w: that node runs a newer mcp-jupyter; upgrade this node", e.Type, e.Node, events.ErrUnknownType)
	}
	if e.Version > v {
		return fmt.Errorf("%s v%d (written by node %s): %w: this binary knows up to v%d; upgrade this node", e.Type, e.Version, e.Node, events.ErrNewerVersion, v)
	}
	return nil
}

// writeForeign queues the import in the write path (write.go) like an
// Append: the lock holder writes it with whatever else is queued.
func (l *Log) writeForeign(ctx context.Context, position uint64, evs []events.Event) (*events.Pending, error) {
	var size int64
	for i := range evs {
		size += int64(len(evs[i].Raw)) + recordOverhead
	}
	if err := l.reserve(ctx, int64(len(evs)), size); err != nil {
		return nil, err
	}
	out := make([]events.Event, len(evs))
	req := &writeReq{foreign: evs, position: position, enc: encoded{bytes: size}, evs: out, p: events.NewPending(out)}
	w := &l.w
	w.qmu.Lock()
	w.queue = append(w.queue, req)
	w.qmu.Unlock()
	l.syncFlights(l.combine())
	return req.p, nil
}

// writeForeignReq adds a queued import to the batch (writeBatch, under
// w.mu), from sequence seq+1; it returns the last sequence used.
func (l *Log) writeForeignReq(batch *pebble.Batch, r *writeReq, seq uint64) uint64 {
	w := &l.w
	var key [9]byte
	var pos [8]byte
	for j, f := range r.foreign {
		seq++
		e := events.Event{Seq: seq, Time: f.Time.UTC(), Stream: f.Stream, Kernel: f.Kernel, Node: f.Node, Principal: f.Principal,
			Type: f.Type, Version: f.Version, Payload: f.Payload, Raw: f.Raw}
		w.rec = events.AppendRecord(w.rec[:0], e, f.Raw)
		_ = batch.Set(eventKey(key[:0], seq), w.rec, nil)
		w.idx = appendIndexKey(w.idx[:0], prefixStream, e.Stream, seq)
		_ = batch.Set(w.idx, nil, nil)
		if e.Kernel != "" {
			w.idx = appendIndexKey(w.idx[:0], prefixKernel, e.Kernel, seq)
			_ = batch.Set(w.idx, nil, nil)
		}
		// NB: every record of one import carries the import's position: the
		// history stream's own positions of the records in between are the
		// importer's to know, and verify only needs them not to go back.
		binary.BigEndian.PutUint64(pos[:], r.position)
		_ = batch.Set(foreignKey(key[:0], seq), pos[:], nil)
		r.evs[j] = e
	}
	binary.BigEndian.PutUint64(pos[:], r.position)
	_ = batch.Set(metaForeignKey, pos[:], nil)
	for _, f := range r.foreign {
		if f.Seq > w.origins[f.Node] {
			w.origins[f.Node] = f.Seq
			binary.BigEndian.PutUint64(pos[:], f.Seq)
			_ = batch.Set([]byte(metaOriginPrefix+f.Node), pos[:], nil)
		}
	}
	return seq
}

// ForeignOrigins returns, per node, the newest origin sequence (the Seq an
// AppendForeign was given) imported of it. NB: it includes an import being
// written: an importer reads it at its start, before it imports.
func (l *Log) ForeignOrigins() map[string]uint64 {
	w := &l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.origins)
}

// loadForeign reads the position of the last import and the newest
// origin sequences (Open).
func (l *Log) loadForeign() error {
	l.w.origins = map[string]uint64{}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte(metaOriginPrefix), UpperBound: []byte(metaOriginPrefix[:len(metaOriginPrefix)-1] + "!")})
	if err != nil {
		return fmt.Errorf("read foreign origins: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Value()) != 8 {
			_ = it.Close()
			return fmt.Errorf("read foreign origins: malformed %q", it.Key())
		}
		l.w.origins[string(it.Key()[len(metaOriginPrefix):])] = binary.BigEndian.Uint64(it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return l.readErr(fmt.Errorf("read foreign origins: %w", err))
	}
	v, closer, err := l.db.Get(metaForeignKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return l.readErr(fmt.Errorf("read foreign position: %w", err))
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("read foreign position: %d bytes, want 8", len(v))
	}
	l.foreignPos.Store(binary.BigEndian.Uint64(v))
	return nil
}

// ForeignMark is an imported record: its local sequence and the history
// stream position of the import that wrote it.
type ForeignMark struct {
	Seq, Position uint64
}

// ForeignMarks returns up to limit marks of imported records with sequence
// > after, in sequence order (none: the log holds no imported record
// there). A caller walks the log's records beside them to tell imported
// records from its own.
func (l *Log) ForeignMarks(after uint64, limit int) ([]ForeignMark, error) {
	if err := l.acquire(); err != nil {
		return nil, err
	}
	defer l.release()
	var lo [9]byte
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: foreignKey(lo[:0], after+1), UpperBound: []byte{prefixForeign + 1}})
	if err != nil {
		return nil, fmt.Errorf("read foreign marks: %w", err)
	}
	defer it.Close()
	var out []ForeignMark
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			return nil, fmt.Errorf("read foreign marks: malformed mark %x", k)
		}
		out = append(out, ForeignMark{Seq: binary.BigEndian.Uint64(k[1:]), Position: binary.BigEndian.Uint64(v)})
	}
	if err := it.Error(); err != nil {
		return nil, l.readErr(fmt.Errorf("read foreign marks: %w", err))
	}
	return out, nil
}
