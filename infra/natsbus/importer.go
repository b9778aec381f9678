package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ForeignLog is what the importer needs from the event log (infra/eventlog
// implements it): AppendForeign writes other nodes' records with the
// history position of the last one, in one batch, so an import is exactly
// once across crashes.
type ForeignLog interface {
	AppendForeign(ctx context.Context, position uint64, evs []events.Event) error
	ForeignPosition() uint64
	// ForeignOrigins is, per node, the newest origin sequence imported
	// (durable with the imports).
	ForeignOrigins() map[string]uint64
}

// ImportedKinds are the stream kinds a node imports from the others:
// what the cluster's read models answer for (kernels, executions, the
// servers). The other kinds (assets, checkpoints, notebooks, principals,
// policy) stay with the node that wrote them: its actors act on them.
var ImportedKinds = []string{"kernel", "execution", "server"}

// ImporterOptions configure an Importer.
type ImporterOptions struct {
	// Node is this node's name: its own records in the stream are passed
	// over (its log has them).
	Node string
	// MaxBatch and MaxBatchBytes bound one import (defaults 1024 records,
	// 1 MiB; a single larger record goes alone).
	MaxBatch      int
	MaxBatchBytes int
	// SkipEvery: once this many records were passed over (own records,
	// other kinds) since the last import, the position alone is recorded,
	// so a restart does not read them again (default 1024).
	SkipEvery uint64
	// RetryMin and RetryMax bound the wait before a stopped session
	// resumes (defaults 100ms and 30s).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

// Importer follows the history stream and imports the other nodes' records
// of ImportedKinds into the log, in stream order, in batches.
type Importer struct {
	log  ForeignLog
	bus  Bus
	opts ImporterOptions

	position atomic.Uint64 // last stream position handled (imported durably, or passed over)
	imported atomic.Uint64 // records imported
	skipped  atomic.Uint64 // records passed over
	corrupt  atomic.Uint64 // records that do not decode, passed over
	unknown  atomic.Uint64 // records of a type or version this binary cannot replay, passed over
	lost     atomic.Uint64 // positions the stream dropped before they were imported
	batches  atomic.Uint64 // AppendForeign calls
	started  atomic.Bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when position moves
	health  health
	nc      *nats.Conn // CaughtUp's queries
	js      jetstream.JetStream

	// origin is the newest origin sequence imported per node (a repeat is
	// passed over); loop goroutine. Start seeds it from the log, which
	// keeps it with the imports: a record republished past the duplicate
	// window is passed over across restarts too.
	origin   map[string]uint64
	reported map[string]time.Time
	cancel   context.CancelFunc
	done     chan struct{}
	closeMu  sync.Once
	closeErr error
}

// NewImporter returns an importer of the other nodes' history into log.
func NewImporter(log ForeignLog, bus Bus, opts ImporterOptions) *Importer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1 << 20
	}
	if opts.SkipEvery == 0 {
		opts.SkipEvery = 1024
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Importer{log: log, bus: bus, opts: opts, changed: make(chan struct{}), done: make(chan struct{}),
		origin: map[string]uint64{}, reported: map[string]time.Time{}}
}

// Start begins importing after the log's ForeignPosition.
func (im *Importer) Start(ctx context.Context) error {
	if im.opts.Node == "" {
		return errors.New("start history importer: no node name")
	}
	if !im.started.CompareAndSwap(false, true) {
		return errors.New("natsbus: importer already started")
	}
	nc, err := im.bus.Connect(nats.Name("mcp-jupyter history queries " + im.opts.Node))
	if err != nil {
		return fmt.Errorf("start history importer: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("start history importer: %w", err)
	}
	im.nc, im.js = nc, js
	im.position.Store(im.log.ForeignPosition())
	if im.origin = im.log.ForeignOrigins(); im.origin == nil {
		im.origin = map[string]uint64{}
	}
	ctx, im.cancel = context.WithCancel(ctx)
	go im.loop(ctx) // NB: owned: Close cancels it and waits for done
	return nil
}

func (im *Importer) loop(ctx context.Context) {
	defer close(im.done)
	delay := im.opts.RetryMin
	for {
		from := im.position.Load()
		err := im.session(ctx)
		if ctx.Err() != nil {
			im.recordSkips(context.Background())
			return
		}
		if im.position.Load() > from {
			delay = im.opts.RetryMin
		}
		im.stopped(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			im.recordSkips(context.Background())
			return
		case <-t.C:
		}
		delay = min(2*delay, im.opts.RetryMax)
	}
}

// session consumes the stream after position until something fails.
func (im *Importer) session(ctx context.Context) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	nc, err := im.bus.Connect(nats.Name("mcp-jupyter history importer "+im.opts.Node), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { cancel(errors.New("the connection to the embedded NATS server closed")) }))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(sctx, HistoryStream)
	if err != nil {
		return fmt.Errorf("find stream %s: %w", HistoryStream, err)
	}
	start := im.position.Load()
	if last := st.CachedInfo().State.LastSeq; last < start {
		// NB: the stream was deleted and made again (every node's JetStream
		// store lost): its positions start over, below what this log
		// recorded, and nothing new is imported until they pass it.
		im.opts.Logger.Error("history: the stream's last position is below the one this node imported up to: was the stream recreated? records up to that position are not imported",
			"stream_last", last, "imported_up_to", start)
	}
	cons, err := st.OrderedConsumer(sctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{HistorySubjectPrefix + ">"},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start + 1})
	if err != nil {
		return fmt.Errorf("follow stream %s from %d: %w", HistoryStream, start+1, err)
	}
	// NB: the channel bounds what the client holds beside the pull
	// request's own bound; a full channel holds the callback back.
	msgs := make(chan jetstream.Msg, im.opts.MaxBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-sctx.Done():
		}
	}, jetstream.PullMaxMessages(im.opts.MaxBatch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrConnectionClosed) {
				cancel(fmt.Errorf("consume %s: %w", HistoryStream, err))
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", HistoryStream, err)
	}
	defer func() {
		cancel(nil) // NB: first: a callback waiting to hand over a message returns
		cc.Stop()
	}()
	batch := make([]jetstream.Msg, 0, im.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-sctx.Done():
			return context.Cause(sctx)
		}
		size := len(batch[0].Data())
	more:
		for len(batch) < im.opts.MaxBatch && size < im.opts.MaxBatchBytes {
			select {
			case m := <-msgs:
				batch = append(batch, m)
				size += len(m.Data())
			default:
				break more
			}
		}
		if err := im.importBatch(sctx, batch); err != nil {
			return err
		}
	}
}

// importBatch writes the batch's records of other nodes in one
// AppendForeign, with the position of its last message.
func (im *Importer) importBatch(ctx context.Context, batch []jetstream.Msg) error {
	evs := make([]events.Event, 0, len(batch))
	seen := map[string]uint64{} // NB: origin sequences of this batch, kept only once it is durable
	var last, lost uint64
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("history message without metadata: %w", err)
		}
		pos := meta.Sequence.Stream
		if want := max(last, im.position.Load()) + 1; pos > want {
			// NB: the stream dropped them (its byte limit) before this node
			// read them: say so, the read models miss them.
			im.lost.Add(pos - want)
			lost += pos - want
			im.opts.Logger.Error("history: the stream no longer holds records this node had not imported; the cluster's read models on this node miss them",
				"from_position", want, "to_position", pos-1, "stream", HistoryStream)
		}
		last = pos
		e, ok := im.decode(m, pos)
		if !ok {
			continue
		}
		if e.Seq <= max(im.origin[e.Node], seen[e.Node]) {
			continue // NB: published twice (a publisher crash past the duplicate window)
		}
		seen[e.Node] = e.Seq
		evs = append(evs, e)
	}
	skipped := last - im.position.Load() - lost - uint64(len(evs))
	if len(evs) == 0 && last-im.log.ForeignPosition() < im.opts.SkipEvery {
		im.skipped.Add(skipped)
		im.moved(last)
		return nil
	}
	if err := im.log.AppendForeign(ctx, last, evs); err != nil {
		return fmt.Errorf("import %d records up to position %d: %w", len(evs), last, err)
	}
	for node, seq := range seen {
		im.origin[node] = seq
	}
	im.imported.Add(uint64(len(evs)))
	im.batches.Add(1)
	im.skipped.Add(skipped)
	im.moved(last)
	return nil
}

// decode turns a message into the record to import, or passes it over:
// this node's own, a kind not imported, or corrupt.
func (im *Importer) decode(m jetstream.Msg, pos uint64) (events.Event, bool) {
	node, ok := strings.CutPrefix(m.Subject(), HistorySubjectPrefix)
	if !ok || node == im.opts.Node {
		return events.Event{}, false
	}
	seq, err := strconv.ParseUint(m.Headers().Get(SeqHeader), 10, 64)
	if err == nil {
		var e events.Event
		if e, err = events.DecodeEnvelope(seq, m.Data()); err == nil {
			if e.Node != node {
				err = fmt.Errorf("the record says node %q", e.Node)
			} else if uerr := replayable(e); uerr != nil {
				// NB: AppendForeign refuses the whole batch for one such
				// record: kept in it, one record would stall the import
				// for good. Passed over and counted instead.
				im.unknown.Add(1)
				im.opts.Logger.Error("history: a record this binary cannot replay; passed over (upgrade this node to import such records)",
					"position", pos, "subject", m.Subject(), "err", uerr)
				return events.Event{}, false
			} else {
				return e, slices.Contains(ImportedKinds, events.StreamKind(e.Stream))
			}
		}
	}
	im.corrupt.Add(1)
	im.opts.Logger.Error("history: a record does not decode; passed over", "position", pos, "subject", m.Subject(), "err", err)
	return events.Event{}, false
}

// replayable refuses what the log's AppendForeign would refuse (eventlog's
// checkForeign): a type or version this binary does not know, or a stream
// it cannot index.
func replayable(e events.Event) error {
	if e.Stream == "" || strings.IndexByte(e.Stream, 0) >= 0 || strings.IndexByte(e.Kernel, 0) >= 0 {
		return fmt.Errorf("stream %q or kernel %q is empty or contains a NUL byte", e.Stream, e.Kernel)
	}
	v, ok := events.CurrentVersion(e.Type)
	if !ok {
		return fmt.Errorf("%s (written by node %s): %w", e.Type, e.Node, events.ErrUnknownType)
	}
	if e.Version > v {
		return fmt.Errorf("%s v%d (written by node %s): %w: this binary knows up to v%d", e.Type, e.Version, e.Node, events.ErrNewerVersion, v)
	}
	return nil
}

func (im *Importer) moved(pos uint64) {
	im.position.Store(pos)
	im.mu.Lock()
	close(im.changed)
	im.changed = make(chan struct{})
	im.mu.Unlock()
}

// recordSkips records, on the way out, the position of records passed
// over since the last import, so the next start does not read them again.
func (im *Importer) recordSkips(ctx context.Context) {
	if pos := im.position.Load(); pos > im.log.ForeignPosition() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := im.log.AppendForeign(ctx, pos, nil); err != nil {
			im.opts.Logger.Warn("history: record the position passed over", "position", pos, "err", err)
		}
	}
}

// CaughtUp returns once every record the stream holds for node at the time
// of the call has been imported (or passed over), or ctx ends. Takeover
// calls it before acting on a lapsed node's kernels.
func (im *Importer) CaughtUp(ctx context.Context, node string) error {
	if !im.started.Load() {
		return ErrNotStarted
	}
	st, err := im.js.Stream(ctx, HistoryStream)
	if err != nil {
		return fmt.Errorf("catch up with node %s: find stream %s: %w", node, HistoryStream, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, HistorySubject(node))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("catch up with node %s: read its newest record: %w", node, err)
	}
	for {
		im.mu.Lock()
		changed := im.changed
		im.mu.Unlock()
		if im.position.Load() >= m.Sequence {
			return nil
		}
		select {
		case <-changed:
		case <-im.done:
			return fmt.Errorf("catch up with node %s: %w", node, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("catch up with node %s: imported up to position %d of %d: %w", node, im.position.Load(), m.Sequence, ctx.Err())
		}
	}
}

func (im *Importer) stopped(err error, delay time.Duration) {
	now := time.Now()
	im.mu.Lock()
	im.health = im.health.failed(err, now)
	im.health.retryAt = now.Add(delay)
	im.mu.Unlock()
	if recentlyLogged(im.reported, "stopped", now) {
		return
	}
	im.opts.Logger.Error("history importer stopped; retrying", "err", err, "position", im.position.Load(), "retry_in", delay.String())
}

// Healthy returns nil while the importer runs, else what stopped it.
func (im *Importer) Healthy() error {
	if !im.started.Load() {
		return ErrNotStarted
	}
	select {
	case <-im.done:
		return ErrClosed
	default:
	}
	im.mu.Lock()
	h := im.health
	im.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("history importer stopped at position %d for %s (%d retries): %w",
		im.position.Load(), time.Since(h.since).Round(time.Millisecond), h.attempts, h.err)
}

// ImportStats counts what the importer did since Start.
type ImportStats struct {
	Position, Imported, Skipped, Corrupt, Lost, Batches uint64
	// Unknown counts records of a type or version this binary cannot
	// replay (a newer node's, or injected), passed over.
	Unknown uint64
}

// Stats returns the importer's counts.
func (im *Importer) Stats() ImportStats {
	return ImportStats{Position: im.position.Load(), Imported: im.imported.Load(), Skipped: im.skipped.Load(),
		Corrupt: im.corrupt.Load(), Lost: im.lost.Load(), Batches: im.batches.Load(), Unknown: im.unknown.Load()}
}

// Close stops the importer (bounded by ctx), recording the position of
// what it passed over.
func (im *Importer) Close(ctx context.Context) error {
	im.closeMu.Do(func() {
		if !im.started.Load() {
			return
		}
		im.cancel()
		select {
		case <-im.done:
		case <-ctx.Done():
			im.closeErr = fmt.Errorf("close history importer: %w", ctx.Err())
		}
		im.nc.Close()
	})
	return im.closeErr
}
