package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Resource updates: a client follows an execution as the resource
// execution://<id> and is sent notifications/resources/updated {uri} when
// it prints or changes status.
//
// The two revisions ask differently, and mcp-go v1.2.1 keeps no
// subscription table of its own (no built-in session implements
// SessionWithResourceSubscriptions), so this file keeps it:
//
//   - 2025-11-25: resources/subscribe and resources/unsubscribe, per
//     session. Checked (URI, access, bounds) and recorded by an
//     OnRequestInitialization hook, which can refuse the request; the
//     session's end (OnUnregisterSession) drops its subscriptions.
//     Notifications go through SendNotificationToSpecificClient(session
//     id): over Streamable HTTP they reach the client's GET stream.
//   - 2026-07-28: subscriptions/listen with resourceSubscriptions: checked
//     and reserved by the same hook, started by OnBeforeSubscriptionsListen
//     (whose context is the stream's: it ends when the client cancels or
//     goes away) and dropped when the stream ends (its context, the
//     OnAfterSubscriptionsListen and OnError hooks). Notifications go on
//     the stream's own session, tagged with the subscription id.
//
// One watcher goroutine per (subscriber, execution) waits on the backend's
// Changed channel (never polls), coalesces bursts to at most one
// notification per updateInterval (and always one after the last change),
// and stops after the execution's final update. Its baseline (status and
// Changed channel) is read in the request hook, before the subscription is
// acknowledged, so a change between the acknowledgment and the goroutine's
// start still closes that channel and is told. An execution already
// finished at subscribe time is accepted and followed by nothing (no slot):
// the client's next read is current and nothing will change.

// Defaults for the subscription bounds.
const (
	// DefaultMaxSubscriptionsPerSession bounds what one session (or one
	// subscriptions/listen stream) follows.
	DefaultMaxSubscriptionsPerSession = 64
	// DefaultMaxSubscriptions bounds what the whole server follows.
	DefaultMaxSubscriptions = 4096
	// DefaultMaxSubscriptionsPerPrincipal bounds what one principal
	// follows over all its sessions and listens, so that one token cannot
	// take the whole server's bound from the others.
	DefaultMaxSubscriptionsPerPrincipal = 256
	// maxPendingListensPerPrincipal bounds the listens of one principal
	// that the request hook accepted but whose handler has not started yet
	// (reservations), so refused listens cannot pile up until their TTL.
	maxPendingListensPerPrincipal = 8
	// updateInterval is the least time between two notifications about
	// one URI to one subscriber.
	updateInterval = 100 * time.Millisecond
	// reservationTTL: a listen checked by the request hook whose handler
	// never started (mcp-go refused it after the hook) gives its slots back
	// after this long.
	reservationTTL = 30 * time.Second
)

// Errors a refused subscription names; each says what to do.
var (
	ErrSubscriptionURI = errors.New("only execution://<execution_id> resources can be subscribed to (assets never change): " +
		"use an execution URI from an execute or get_execution reply")
	ErrTooManySessionSubscriptions = errors.New("this session already follows the most executions it may: " +
		"unsubscribe from those you no longer need (finished ones stop by themselves), or follow with get_execution wait_s")
	ErrTooManyPrincipalSubscriptions = errors.New("you already follow the most executions one principal may over all your sessions and listens: " +
		"unsubscribe from (or close the listens of) executions you no longer need (finished ones stop by themselves), or follow with get_execution wait_s")
	ErrTooManyPendingListens = errors.New("you have too many subscriptions/listen requests accepted but not started: " +
		"wait for them to start (or fail), send _meta with clientCapabilities and the protocol version, then listen again")
	ErrTooManySubscriptions = errors.New("the server already follows the most executions it may for all its clients: " +
		"try again later, or follow with get_execution wait_s")
	errSubscriptionsClosed = errors.New("mcpserver: subscriptions closed")
)

// subscriberKey names who receives a notification: a session (legacy
// subscribe: its id) or one subscriptions/listen stream (its session and
// its request id: a modern HTTP request's session is its own).
type subscriberKey struct {
	session string
	stream  server.ClientSession // nil for a legacy session
	listen  string               // the listen request's id; "" for a legacy session
}

type subscriber struct {
	key      subscriberKey
	listenID any // the listen request's id, as sent (the notifications' tag)
	watchers map[string]*watcher
	// reserved: a listen checked but not started yet (its watchers are
	// counted; started when the handler runs).
	reserved time.Time
	// principal: who made the (listen) request; counted for its pending
	// reservations.
	principal string
}

type watcher struct {
	uri, id string
	// principal: who subscribed (counted against its bound).
	principal string
	// baseline: the execution as read when the subscription was accepted,
	// before the client saw the acknowledgment; its Changed channel is
	// closed by any change after that.
	baseline ExecutionView
	// cancel stops a started watcher (nil while reserved).
	cancel context.CancelFunc
}

// subscriptions is the server's table of who follows which execution.
type subscriptions struct {
	srv          *Server
	perSession   int
	perServer    int
	perPrincipal int
	interval     time.Duration
	log          *slog.Logger
	now          func() time.Time // time.Now; tests move it

	mu     sync.Mutex
	closed bool
	count  int // watchers in subs, started or reserved
	subs   map[subscriberKey]*subscriber
	wg     sync.WaitGroup
	// notified counts notifications sent (tests read it through
	// Server.subscriptionStats).
	notified int
}

func newSubscriptions(s *Server, perSession, perServer, perPrincipal int) *subscriptions {
	if perSession <= 0 {
		perSession = DefaultMaxSubscriptionsPerSession
	}
	if perServer <= 0 {
		perServer = DefaultMaxSubscriptions
	}
	if perPrincipal <= 0 {
		perPrincipal = DefaultMaxSubscriptionsPerPrincipal
	}
	return &subscriptions{srv: s, perSession: perSession, perServer: perServer, perPrincipal: perPrincipal, interval: updateInterval,
		log: s.log, now: time.Now, subs: map[subscriberKey]*subscriber{}}
}

// hooks wires the table into mcp-go.
func (t *subscriptions) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddOnRequestInitialization(t.onRequest)
	h.AddBeforeSubscriptionsListen(t.beforeListen)
	h.AddAfterSubscriptionsListen(func(ctx context.Context, id any, _ *mcp.SubscriptionsListenRequest, _ *mcp.SubscriptionsListenResult) {
		t.drop(listenKey(ctx, id))
	})
	h.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, _ any, _ error) {
		if method == mcp.MethodSubscriptionsListen {
			t.drop(listenKey(ctx, id))
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) {
		t.drop(subscriberKey{session: session.SessionID()})
	})
	return h
}

func listenKey(ctx context.Context, id any) subscriberKey {
	session := server.ClientSessionFromContext(ctx)
	k := subscriberKey{stream: session, listen: fmt.Sprint(id)}
	if session != nil {
		k.session = session.SessionID()
	}
	return k
}

// onRequest sees every request before mcp-go handles it; it answers the
// subscription requests' checks, refusing with an error the client sees.
func (t *subscriptions) onRequest(ctx context.Context, id any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok {
		return nil
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			URI           string    `json:"uri"`
			Meta          *mcp.Meta `json:"_meta"`
			Notifications struct {
				ResourceSubscriptions []string `json:"resourceSubscriptions"`
			} `json:"notifications"`
		} `json:"params"`
	}
	switch {
	case !bytes.Contains(raw, []byte("resources/subscribe")) && !bytes.Contains(raw, []byte("resources/unsubscribe")) &&
		!bytes.Contains(raw, []byte("subscriptions/listen")):
		return nil // NB: the common case costs a scan, not a decode
	case json.Unmarshal(raw, &m) != nil:
		return nil // mcp-go answers a malformed request
	}
	session := server.ClientSessionFromContext(ctx)
	if session == nil {
		return nil
	}
	version := m.Params.Meta.ProtocolVersion()
	modern := mcp.IsModernProtocol(version)
	switch {
	case m.Method == string(mcp.MethodResourcesSubscribe) && !modern:
		return t.subscribe(ctx, subscriberKey{session: session.SessionID()}, nil, []string{m.Params.URI}, false)
	case m.Method == string(mcp.MethodResourcesUnsubscribe) && !modern:
		t.unsubscribe(subscriberKey{session: session.SessionID()}, m.Params.URI)
	case m.Method == string(mcp.MethodSubscriptionsListen) && mcp.IsValidProtocolVersion(version) && modern && id != nil:
		// NB: mcp-go may still refuse the listen after this hook without
		// calling any other (a malformed _meta, a header that disagrees):
		// its reservation is then swept after reservationTTL.
		uris := m.Params.Notifications.ResourceSubscriptions
		if len(uris) == 0 {
			return nil
		}
		return t.subscribe(ctx, listenKey(ctx, id), id, uris, true)
	}
	return nil
}

// subscribe checks uris (each an execution the caller may read) and the
// bounds, then records them for k. A listen's watchers are only reserved
// here (reserve): beforeListen starts them with the stream's context.
func (t *subscriptions) subscribe(ctx context.Context, k subscriberKey, listenID any, uris []string, reserve bool) error {
	// NB: following is reading: the read scope, as resources/read
	// (resourceCaller) and get_execution.
	p, err := auth.Caller(ctx)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if !p.Scopes.Has(auth.ScopeRead) {
		return errors.New(missingScope(p, "resources/subscribe", auth.ScopeRead))
	}
	// baselines: the executions to follow, read now, before mcp-go
	// acknowledges the request (see watch). A finished one gets no watcher
	// and takes no slot.
	baselines := map[string]*watcher{}
	for _, uri := range uris {
		id, ok := executionIDFromURI(uri)
		if !ok {
			return fmt.Errorf("subscribe to %q: %w", uri, ErrSubscriptionURI)
		}
		// NB: the caller's own read: an execution of a kernel it may not
		// read is refused as unknown, word for word as get_execution.
		// Cursor MaxUint64: the status and the change channel, never the
		// outputs.
		v, err := t.srv.backend.Execution(ctx, id, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", uri, err)
		}
		if !v.Execution.Status.Done() {
			baselines[uri] = &watcher{uri: uri, id: id, principal: p.Name, baseline: v}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.closed {
		return fmt.Errorf("subscribe: %w", errSubscriptionsClosed)
	}
	t.sweepReservationsLocked(now)
	sub := t.subs[k]
	if sub == nil {
		sub = &subscriber{key: k, listenID: listenID, watchers: map[string]*watcher{}}
	}
	fresh := 0
	for uri := range baselines {
		if sub.watchers[uri] == nil {
			fresh++
		}
	}
	if len(sub.watchers)+fresh > t.perSession {
		return fmt.Errorf("subscribe to %d more (%d held, limit %d per session): %w",
			fresh, len(sub.watchers), t.perSession, ErrTooManySessionSubscriptions)
	}
	held, pending := t.heldByLocked(p.Name)
	if fresh > 0 && held+fresh > t.perPrincipal {
		return fmt.Errorf("subscribe to %d more (%s holds %d, limit %d per principal): %w",
			fresh, p.Name, held, t.perPrincipal, ErrTooManyPrincipalSubscriptions)
	}
	if reserve && fresh > 0 && sub.reserved.IsZero() && pending >= maxPendingListensPerPrincipal {
		return fmt.Errorf("subscriptions/listen (%s has %d pending, limit %d; each is freed after %v): %w",
			p.Name, pending, maxPendingListensPerPrincipal, reservationTTL, ErrTooManyPendingListens)
	}
	if t.count+fresh > t.perServer {
		return fmt.Errorf("subscribe to %d more (server limit %d): %w", fresh, t.perServer, ErrTooManySubscriptions)
	}
	if fresh == 0 {
		// NB: nothing new to follow (finished, or followed already): no
		// reservation either; a listen with nothing to start is left to
		// mcp-go.
		return nil
	}
	t.subs[k] = sub
	if reserve {
		sub.reserved = now
		sub.principal = p.Name
	}
	for uri, w := range baselines {
		if sub.watchers[uri] != nil {
			continue
		}
		sub.watchers[uri] = w
		t.count++
		if !reserve {
			t.startLocked(ctx, sub, w)
		}
	}
	return nil
}

// heldByLocked counts what principal holds: watchers (started or reserved)
// and listens reserved but not started.
func (t *subscriptions) heldByLocked(principal string) (watchers, pendingListens int) {
	for _, sub := range t.subs {
		if !sub.reserved.IsZero() && sub.principal == principal {
			pendingListens++
		}
		for _, w := range sub.watchers {
			if w.principal == principal {
				watchers++
			}
		}
	}
	return watchers, pendingListens
}

// beforeListen starts a checked listen's watchers on the stream's context.
func (t *subscriptions) beforeListen(ctx context.Context, id any, _ *mcp.SubscriptionsListenRequest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sub := t.subs[listenKey(ctx, id)]
	if t.closed || sub == nil || sub.reserved.IsZero() {
		return
	}
	sub.reserved = time.Time{}
	for _, w := range sub.watchers {
		t.startLocked(ctx, sub, w)
	}
}

// sweepReservationsLocked gives back the slots of listens mcp-go refused
// after the request hook had checked them (their handler never ran).
func (t *subscriptions) sweepReservationsLocked(now time.Time) {
	for k, sub := range t.subs {
		if !sub.reserved.IsZero() && now.Sub(sub.reserved) > reservationTTL {
			t.dropLocked(k)
		}
	}
}

// startLocked runs w's goroutine. Its context keeps the caller's values
// (the principal: every read is checked as the subscriber) and ends with
// the stream's context for a listen; stop ends it otherwise.
func (t *subscriptions) startLocked(ctx context.Context, sub *subscriber, w *watcher) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	stopAfter := func() bool { return false }
	if sub.key.listen != "" {
		stopAfter = context.AfterFunc(ctx, cancel) // the stream ended
	}
	send := t.sender(sub)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer stopAfter()
		defer cancel()
		t.watch(wctx, w, w.baseline, send)
		t.finished(sub.key, w)
	}()
}

// sender returns how sub is told that uri changed.
func (t *subscriptions) sender(sub *subscriber) func(uri string) error {
	k := sub.key
	if k.listen == "" {
		return func(uri string) error {
			return t.srv.mcp.SendNotificationToSpecificClient(k.session, string(mcp.MethodNotificationResourceUpdated),
				map[string]any{"uri": uri})
		}
	}
	stream, tag := k.stream, sub.listenID
	return func(uri string) error {
		n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
			Method: string(mcp.MethodNotificationResourceUpdated),
			Params: mcp.NotificationParams{Meta: map[string]any{mcp.MetaKeySubscriptionID: tag},
				AdditionalFields: map[string]any{"uri": uri}},
		}}
		if h, ok := stream.(server.SessionWithStreamableHTTPConfig); ok {
			h.UpgradeToSSEWhenReceiveNotification()
		}
		select {
		case stream.NotificationChannel() <- n:
			return nil
		default:
			return server.ErrNotificationChannelBlocked
		}
	}
}

// watch follows one execution until it finished (after its last update),
// the subscriber is gone, or ctx ends.
// v is the baseline read when the subscription was accepted: reading it
// here instead would miss a change (even the execution's end) made between
// the acknowledgment and this goroutine's start, and tell nothing.
func (t *subscriptions) watch(ctx context.Context, w *watcher, v ExecutionView, send func(uri string) error) {
	if v.Execution.Status.Done() {
		return // nothing will change any more (subscribe starts no such watcher)
	}
	var (
		last time.Time
		err  error
	)
	for {
		select {
		case <-v.Changed:
		case <-ctx.Done():
			return
		}
		// NB: coalesce: changes during the wait are covered by the one
		// notification after it (the read below comes after them all).
		if wait := t.interval - time.Since(last); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
		// NB: read before telling: a change after this read closes the new
		// channel, so no change goes untold.
		v, err = t.srv.backend.Execution(ctx, w.id, math.MaxUint64)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Debug("mcp: stop following execution", "uri", w.uri, "err", err)
			}
			return
		}
		last = time.Now()
		if err := send(w.uri); err != nil {
			if errors.Is(err, server.ErrSessionNotFound) || errors.Is(err, server.ErrSessionNotInitialized) {
				return // the session is gone
			}
			t.log.Debug("mcp: resource update not sent", "uri", w.uri, "err", err)
		} else {
			t.mu.Lock()
			t.notified++
			t.mu.Unlock()
		}
		if v.Execution.Status.Done() {
			return // its last update was sent
		}
	}
}

// finished removes w once its goroutine ended by itself.
func (t *subscriptions) finished(k subscriberKey, w *watcher) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sub := t.subs[k]
	if sub == nil || sub.watchers[w.uri] != w {
		return
	}
	delete(sub.watchers, w.uri)
	t.count--
	if len(sub.watchers) == 0 && sub.key.listen == "" {
		delete(t.subs, k)
	}
}

func (t *subscriptions) unsubscribe(k subscriberKey, uri string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sub := t.subs[k]
	if sub == nil {
		return
	}
	if w := sub.watchers[uri]; w != nil {
		w.halt()
		delete(sub.watchers, uri)
		t.count--
	}
	if len(sub.watchers) == 0 {
		delete(t.subs, k)
	}
}

// drop ends every subscription of k.
func (t *subscriptions) drop(k subscriberKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(k)
}

func (t *subscriptions) dropLocked(k subscriberKey) {
	sub := t.subs[k]
	if sub == nil {
		return
	}
	for _, w := range sub.watchers {
		w.halt()
		t.count--
	}
	delete(t.subs, k)
}

func (w *watcher) halt() {
	if w.cancel != nil {
		w.cancel()
	}
}

// close stops every watcher and waits for them; later subscriptions are
// refused. Idempotent.
func (t *subscriptions) close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	for k := range t.subs {
		t.dropLocked(k)
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop resource subscriptions: %w", ctx.Err())
	}
}

// SubscriptionStats is what the resource subscriptions hold: watchers
// running or reserved, subscribers (sessions and listen streams), and
// notifications sent since the server started.
func (s *Server) SubscriptionStats() (watchers, subscribers, notified int) { return s.subs.stats() }

// stats is what the table holds: watchers counted, subscribers,
// notifications sent.
func (t *subscriptions) stats() (watchers, subscribers, notified int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count, len(t.subs), t.notified
}
