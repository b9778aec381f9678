package mcpserver

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// updates collects the notifications/resources/updated a client receives.
type updates struct {
	mu   sync.Mutex
	uris []string
	at   []time.Time
	// tags: each update's _meta subscriptionId (nil: untagged).
	tags []any
}

func (u *updates) of(uri string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, x := range u.uris {
		if x == uri {
			n++
		}
	}
	return n
}

// subsClient connects an in-process client on protocol version (legacy:
// through initialize; 2026-07-28: through server/discover) that records
// resource updates.
func subsClient(t testing.TB, s *Server, version string) (*client.Client, *updates) {
	t.Helper()
	c, err := client.NewInProcessClientWithOptions(s.MCP(), client.WithProtocolVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	u := &updates{}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != string(mcp.MethodNotificationResourceUpdated) {
			return
		}
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		u.mu.Lock()
		u.uris = append(u.uris, uri)
		u.at = append(u.at, time.Now())
		u.tags = append(u.tags, n.Params.Meta[mcp.MetaKeySubscriptionID])
		u.mu.Unlock()
	})
	initialize(t, c)
	if got := c.ProtocolVersion(); got != version {
		t.Fatalf("negotiated %q, want %q", got, version)
	}
	return c, u
}

func subscribe(c *client.Client, uri string) error {
	var req mcp.SubscribeRequest
	req.Params.URI = uri
	return c.Subscribe(asAdmin(context.Background()), req)
}

// runningExecutions submits n executions the fake leaves running.
func runningExecutions(t testing.TB, b *fakeBackend, n int) []string {
	t.Helper()
	b.onSubmit = func(*fakeBackend, string, string) {}
	ids := make([]string, n)
	for i := range ids {
		x, err := b.Submit(context.Background(), SubmitRequest{KernelID: "k1", Code: "pass"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = x.ID
	}
	return ids
}

func TestSubscriptionBoundPerSession(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptionsPerSession: 3, MaxSubscriptions: 100})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	ids := runningExecutions(t, b, 4)
	for _, id := range ids[:3] {
		if err := subscribe(c, ExecutionResourceURI(id)); err != nil {
			t.Fatalf("subscribe %s: %v", id, err)
		}
	}
	// The same URI again is no new subscription.
	if err := subscribe(c, ExecutionResourceURI(ids[0])); err != nil {
		t.Fatalf("subscribe again: %v", err)
	}
	err := subscribe(c, ExecutionResourceURI(ids[3]))
	if err == nil || !strings.Contains(err.Error(), "this session already follows the most executions") {
		t.Fatalf("a 4th subscription past the bound of 3: %v", err)
	}
	var un mcp.UnsubscribeRequest
	un.Params.URI = ExecutionResourceURI(ids[0])
	if err := c.Unsubscribe(asAdmin(context.Background()), un); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(c, ExecutionResourceURI(ids[3])); err != nil {
		t.Fatalf("after an unsubscribe the slot is free: %v", err)
	}
	if w, _, _ := s.subs.stats(); w != 3 {
		t.Fatalf("watchers %d, want 3", w)
	}
}

func TestSubscriptionBoundPerServer(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptionsPerSession: 3, MaxSubscriptions: 4})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c1, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	c2, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	ids := runningExecutions(t, b, 5)
	for _, id := range ids[:3] {
		if err := subscribe(c1, ExecutionResourceURI(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := subscribe(c2, ExecutionResourceURI(ids[3])); err != nil {
		t.Fatal(err)
	}
	err := subscribe(c2, ExecutionResourceURI(ids[4]))
	if err == nil || !strings.Contains(err.Error(), "the server already follows the most executions") {
		t.Fatalf("a 5th subscription past the server's bound of 4: %v", err)
	}
	// A listen stream counts against the same server bound.
	m, _ := subsClient(t, s, mcp.ProtocolVersion20260728)
	err = m.Listen(asAdmin(context.Background()), mcp.SubscriptionFilter{ResourceSubscriptions: []string{ExecutionResourceURI(ids[4])}})
	if err == nil || !strings.Contains(err.Error(), "the server already follows the most executions") {
		t.Fatalf("a listen past the server's bound: %v", err)
	}
}

func TestListenBoundPerStream(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptionsPerSession: 2})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c, _ := subsClient(t, s, mcp.ProtocolVersion20260728)
	ids := runningExecutions(t, b, 3)
	var uris []string
	for _, id := range ids {
		uris = append(uris, ExecutionResourceURI(id))
	}
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 30*time.Second)
	defer cancel()
	err := c.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: uris})
	if err == nil || !strings.Contains(err.Error(), "this session already follows the most executions") {
		t.Fatalf("a listen for 3 URIs past the bound of 2: %v", err)
	}
	if w, n, _ := s.subs.stats(); w != 0 || n != 0 {
		t.Fatalf("a refused listen holds %d watchers of %d subscribers", w, n)
	}
}

func TestSubscribeRefusesOtherURIsAndUnknownExecutions(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	for uri, want := range map[string]string{
		"asset://" + strings.Repeat("a", 64): "only execution://<execution_id> resources",
		"execution://":                       "only execution://<execution_id> resources",
		"execution://nope":                   `no execution "nope"`,
	} {
		if err := subscribe(c, uri); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("subscribe %s: %v, want %q", uri, err, want)
		}
	}
}

// TestUpdatesAreCoalescedAndTheLastOneCounts: a burst of outputs gives at
// most one notification per interval, the end one more, and the watcher
// stops after the execution's last update.
func TestUpdatesAreCoalescedAndTheLastOneCounts(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			c, u := subsClient(t, s, version)
			id := runningExecutions(t, b, 1)[0]
			uri := ExecutionResourceURI(id)
			stop := func() {}
			if version == mcp.ProtocolVersion20251125 {
				if err := subscribe(c, uri); err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				stop, err = c.ListenAsync(asAdmin(context.Background()), mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}},
					func(err error) { t.Errorf("listen: %v", err) })
				if err != nil {
					t.Fatal(err)
				}
				testkit.WaitUntil(t, 10*time.Second, "the listen's watcher started", func() (bool, string) {
					w, _, _ := s.subs.stats()
					return w == 1, fmt.Sprint(w, " watchers")
				})
			}
			defer stop()
			start := time.Now()
			for i := 0; i < 500; i++ {
				b.emit(id, "stream", map[string]any{"name": "stdout", "text": "x\n"})
			}
			b.finish(id, queue.StatusOK)
			burst := time.Since(start)
			testkit.WaitUntil(t, 10*time.Second, "the watcher stopped after the last update", func() (bool, string) {
				w, _, _ := s.subs.stats()
				return w == 0 && u.of(uri) > 0, fmt.Sprint(w, " watchers, ", u.of(uri), " updates")
			})
			n := u.of(uri)
			u.mu.Lock()
			for _, tag := range u.tags {
				// NB: on a listen stream every notification names the
				// listen (its request id); legacy ones are untagged.
				if modern := version == mcp.ProtocolVersion20260728; modern != (tag != nil) {
					t.Errorf("an update tagged %v on %s", tag, version)
				}
			}
			u.mu.Unlock()
			if most := int(burst/updateInterval) + 2; n > most {
				t.Fatalf("%d notifications for a %v burst of 501 changes; coalescing allows at most %d", n, burst, most)
			}
			// The last notification came after the end: a read then shows it.
			res, err := c.ReadResource(asAdmin(context.Background()), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
			if err != nil {
				t.Fatal(err)
			}
			if text := res.Contents[0].(mcp.TextResourceContents).Text; !strings.Contains(text, "status: ok") {
				t.Fatalf("read after the last update: %s", text)
			}
		})
	}
}

// TestNoWatcherOutlivesItsOwner: every way a subscription ends stops its
// goroutine: unsubscribe, the session's end, the listen stream's end, and
// Server.Close.
func TestNoWatcherOutlivesItsOwner(t *testing.T) {
	b := newFakeBackend()
	ids := runningExecutions(t, b, 8)
	base := runtime.NumGoroutine()
	s := New(b, Options{})
	settledGoroutines := func(what string, want int) {
		t.Helper()
		testkit.WaitUntil(t, 10*time.Second, what, func() (bool, string) {
			w, _, _ := s.subs.stats()
			return w == want, fmt.Sprint(w, " watchers")
		})
	}

	// unsubscribe
	c1, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	for _, id := range ids[:2] {
		if err := subscribe(c1, ExecutionResourceURI(id)); err != nil {
			t.Fatal(err)
		}
	}
	settledGoroutines("two legacy watchers", 2)
	for _, id := range ids[:2] {
		var un mcp.UnsubscribeRequest
		un.Params.URI = ExecutionResourceURI(id)
		if err := c1.Unsubscribe(asAdmin(context.Background()), un); err != nil {
			t.Fatal(err)
		}
	}
	settledGoroutines("unsubscribed", 0)

	// the session's end
	c2, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	for _, id := range ids[2:4] {
		if err := subscribe(c2, ExecutionResourceURI(id)); err != nil {
			t.Fatal(err)
		}
	}
	settledGoroutines("two more legacy watchers", 2)
	_ = c2.Close()
	settledGoroutines("session closed", 0)

	// the listen stream's end
	c3, _ := subsClient(t, s, mcp.ProtocolVersion20260728)
	stop, err := c3.ListenAsync(asAdmin(context.Background()), mcp.SubscriptionFilter{ResourceSubscriptions: []string{
		ExecutionResourceURI(ids[4]), ExecutionResourceURI(ids[5])}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	settledGoroutines("a listen's two watchers", 2)
	stop()
	testkit.WaitUntil(t, 10*time.Second, "listen ended", func() (bool, string) {
		w, n, _ := s.subs.stats()
		return w == 0 && n == 0, fmt.Sprint(w, " watchers ", n, " subscribers")
	})

	// Server.Close
	c4, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	for _, id := range ids[6:8] {
		if err := subscribe(c4, ExecutionResourceURI(id)); err != nil {
			t.Fatal(err)
		}
	}
	settledGoroutines("two watchers before Close", 2)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	settledGoroutines("closed", 0)
	if err := subscribe(c4, ExecutionResourceURI(ids[0])); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("subscribe after Close: %v", err)
	}
	_ = c1.Close()
	_ = c3.Close()
	_ = c4.Close()
	testkit.WaitUntil(t, 10*time.Second, "goroutines back to where they were", func() (bool, string) {
		return runtime.NumGoroutine() <= base+2, fmt.Sprint(runtime.NumGoroutine(), " goroutines, ", base, " before") // NB: the runtime's own may come and go
	})
}

// TestRefusedListenGivesItsSlotsBack: a listen that passed the request hook
// but that mcp-go then refused (here: no client capabilities in _meta, a
// protocol error that runs no other hook) holds its reservation only until
// reservationTTL; the next subscription sweeps it.
func TestRefusedListenGivesItsSlotsBack(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptionsPerSession: 2, MaxSubscriptions: 2})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	now := time.Now()
	s.subs.mu.Lock()
	s.subs.now = func() time.Time { return now }
	s.subs.mu.Unlock()
	ids := runningExecutions(t, b, 2)
	session := server.NewInProcessSession("raw", nil)
	ctx := s.MCP().WithContext(asAdmin(context.Background()), session)
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{"_meta":{%q:%q},`+
		`"notifications":{"resourceSubscriptions":[%q,%q]}}}`, mcp.MetaKeyProtocolVersion, mcp.ProtocolVersion20260728,
		ExecutionResourceURI(ids[0]), ExecutionResourceURI(ids[1]))
	resp := s.MCP().HandleMessage(ctx, []byte(msg))
	if _, isErr := resp.(mcp.JSONRPCError); !isErr {
		t.Fatalf("a listen without client capabilities: %#v, want mcp-go's refusal", resp)
	}
	if w, _, _ := s.subs.stats(); w != 2 {
		t.Fatalf("the refused listen reserved %d watchers; this test expects the hook's 2", w)
	}
	c, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	if err := subscribe(c, ExecutionResourceURI(ids[0])); err == nil || !strings.Contains(err.Error(), "server already follows") {
		t.Fatalf("within the TTL the reservation counts: %v", err)
	}
	s.subs.mu.Lock()
	s.subs.now = func() time.Time { return now.Add(reservationTTL + time.Second) }
	s.subs.mu.Unlock()
	if err := subscribe(c, ExecutionResourceURI(ids[0])); err != nil {
		t.Fatalf("after the TTL the refused listen's slots are free: %v", err)
	}
	if w, n, _ := s.subs.stats(); w != 1 || n != 1 {
		t.Fatalf("%d watchers of %d subscribers, want 1 of 1", w, n)
	}
}

// TestSubscribeNeedsTheReadScope: following is reading; a principal
// without the read scope is refused, naming the scope.
func TestSubscribeNeedsTheReadScope(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	id := runningExecutions(t, b, 1)[0]
	var req mcp.SubscribeRequest
	req.Params.URI = ExecutionResourceURI(id)
	writer := auth.WithPrincipal(context.Background(), auth.Principal{Name: "w", Scopes: auth.ScopeExecute})
	if err := c.Subscribe(writer, req); err == nil || !strings.Contains(err.Error(), "needs the read scope") {
		t.Fatalf("subscribe without the read scope: %v", err)
	}
	reader := auth.WithPrincipal(context.Background(), auth.Principal{Name: "r", Scopes: auth.ScopeRead})
	if err := c.Subscribe(reader, req); err != nil {
		t.Fatalf("subscribe with the read scope: %v", err)
	}
}

// gatedBackend holds every Execution read after the first until open is
// closed: the first is the subscribe's own check, the later ones are the
// watcher's. It lets a test change an execution between the
// acknowledgment of a subscription and the watcher's first look at it.
type gatedBackend struct {
	*fakeBackend
	reads atomic.Int32
	open  chan struct{}
}

func (g *gatedBackend) Execution(ctx context.Context, id string, since uint64) (ExecutionView, error) {
	if g.reads.Add(1) > 1 {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ExecutionView{}, ctx.Err()
		}
	}
	return g.fakeBackend.Execution(ctx, id, since)
}

// TestAChangeRightAfterTheSubscribeIsTold: an execution that prints and
// finishes after the subscription was acknowledged, before its watcher
// first read it, is still told (the baseline is read when the subscription
// is accepted, not by the watcher later: it would see the execution
// already finished and tell nothing).
func TestAChangeRightAfterTheSubscribeIsTold(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			b := &gatedBackend{fakeBackend: newFakeBackend(), open: make(chan struct{})}
			s := New(b, Options{})
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			c, u := subsClient(t, s, version)
			id := runningExecutions(t, b.fakeBackend, 1)[0]
			uri := ExecutionResourceURI(id)
			if version == mcp.ProtocolVersion20251125 {
				if err := subscribe(c, uri); err != nil {
					t.Fatal(err)
				}
			} else {
				stop, err := c.ListenAsync(asAdmin(context.Background()), mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}},
					func(err error) { t.Errorf("listen: %v", err) })
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
				testkit.WaitUntil(t, 10*time.Second, "the listen was checked", func() (bool, string) {
					return b.reads.Load() >= 1, fmt.Sprint(b.reads.Load(), " reads")
				})
			}
			b.emit(id, "stream", map[string]any{"name": "stdout", "text": "x\n"})
			b.finish(id, queue.StatusOK)
			close(b.open)
			testkit.WaitUntil(t, 10*time.Second, "the end was told", func() (bool, string) {
				w, _, _ := s.subs.stats()
				return w == 0 && u.of(uri) == 1, fmt.Sprint(w, " watchers, ", u.of(uri), " updates")
			})
		})
	}
}

// TestSubscribingToAFinishedExecutionTakesNoSlot: accepted, nothing sent,
// no watcher and no reservation (a listen included).
func TestSubscribingToAFinishedExecutionTakesNoSlot(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptions: 1})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ids := runningExecutions(t, b, 2)
	b.finish(ids[0], queue.StatusOK)
	c, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	if err := subscribe(c, ExecutionResourceURI(ids[0])); err != nil {
		t.Fatalf("subscribe to a finished execution: %v", err)
	}
	refusedListen(t, s, asAdmin(context.Background()), 1, ids[0])
	if w, n, _ := s.subs.stats(); w != 0 || n != 0 {
		t.Fatalf("%d watchers of %d subscribers for a finished execution, want none", w, n)
	}
	if err := subscribe(c, ExecutionResourceURI(ids[1])); err != nil {
		t.Fatalf("the one slot is still free: %v", err)
	}
}

// refusedListen sends a subscriptions/listen that the request hook checks
// and mcp-go then refuses (no clientCapabilities in _meta): what it
// reserves is only given back by the sweep. It returns mcp-go's or the
// hook's error message.
func refusedListen(t testing.TB, s *Server, ctx context.Context, reqID int, ids ...string) string {
	t.Helper()
	uris := make([]string, len(ids))
	for i, id := range ids {
		uris[i] = fmt.Sprintf("%q", ExecutionResourceURI(id))
	}
	session := server.NewInProcessSession(fmt.Sprint("raw-", reqID), nil)
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"subscriptions/listen","params":{"_meta":{%q:%q},`+
		`"notifications":{"resourceSubscriptions":[%s]}}}`, reqID, mcp.MetaKeyProtocolVersion, mcp.ProtocolVersion20260728,
		strings.Join(uris, ","))
	resp := s.MCP().HandleMessage(s.MCP().WithContext(ctx, session), []byte(msg))
	e, isErr := resp.(mcp.JSONRPCError)
	if !isErr {
		t.Fatalf("a listen without client capabilities: %#v, want a refusal", resp)
	}
	return e.Error.Message
}

// TestOnePrincipalCannotTakeTheServersBound: alice fills her own bound,
// with subscriptions and with listens mcp-go refused after the hook
// (reservations count); bob can still subscribe; alice's next one is
// refused naming her bound and what to do.
func TestOnePrincipalCannotTakeTheServersBound(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{MaxSubscriptionsPerSession: 10, MaxSubscriptions: 6, MaxSubscriptionsPerPrincipal: 4})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ids := runningExecutions(t, b, 6)
	alice := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Scopes: auth.ScopeRead})
	bob := auth.WithPrincipal(context.Background(), auth.Principal{Name: "bob", Scopes: auth.ScopeRead})
	subscribeAs := func(ctx context.Context, c *client.Client, id string) error {
		var req mcp.SubscribeRequest
		req.Params.URI = ExecutionResourceURI(id)
		return c.Subscribe(ctx, req)
	}

	refusedListen(t, s, alice, 1, ids[0], ids[1])
	a1, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	a2, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	if err := subscribeAs(alice, a1, ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := subscribeAs(alice, a2, ids[3]); err != nil {
		t.Fatal(err)
	}
	if w, _, _ := s.subs.stats(); w != 4 {
		t.Fatalf("alice holds %d, want 4 (2 reserved, 2 started)", w)
	}
	err := subscribeAs(alice, a2, ids[4])
	if err == nil || !strings.Contains(err.Error(), "alice holds 4, limit 4 per principal") ||
		!strings.Contains(err.Error(), "unsubscribe from") {
		t.Fatalf("alice past her bound of 4: %v", err)
	}
	if msg := refusedListen(t, s, alice, 2, ids[4]); !strings.Contains(msg, "limit 4 per principal") {
		t.Fatalf("alice's listen past her bound: %s", msg)
	}
	bc, _ := subsClient(t, s, mcp.ProtocolVersion20251125)
	for _, id := range ids[4:6] {
		if err := subscribeAs(bob, bc, id); err != nil {
			t.Fatalf("bob, with alice at her bound: %v", err)
		}
	}
	// alice's unsubscribe frees one of her slots (the server is full now).
	var un mcp.UnsubscribeRequest
	un.Params.URI = ExecutionResourceURI(ids[2])
	if err := a1.Unsubscribe(alice, un); err != nil {
		t.Fatal(err)
	}
	if err := subscribeAs(alice, a1, ids[2]); err != nil {
		t.Fatalf("alice after an unsubscribe: %v", err)
	}
}

// TestPendingListensArePerPrincipalBounded: listens mcp-go refuses after
// the hook cannot pile up: past maxPendingListensPerPrincipal the hook
// refuses them itself; another principal is not affected.
func TestPendingListensArePerPrincipalBounded(t *testing.T) {
	b := newFakeBackend()
	s := New(b, Options{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ids := runningExecutions(t, b, 1)
	alice := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Scopes: auth.ScopeRead})
	bob := auth.WithPrincipal(context.Background(), auth.Principal{Name: "bob", Scopes: auth.ScopeRead})
	for i := 0; i < maxPendingListensPerPrincipal; i++ {
		if msg := refusedListen(t, s, alice, 100+i, ids[0]); strings.Contains(msg, "not started") {
			t.Fatalf("listen %d refused by the hook: %s", i, msg)
		}
	}
	msg := refusedListen(t, s, alice, 200, ids[0])
	if !strings.Contains(msg, fmt.Sprintf("alice has %d pending, limit %d", maxPendingListensPerPrincipal, maxPendingListensPerPrincipal)) {
		t.Fatalf("alice's listen past the pending bound: %s", msg)
	}
	if w, _, _ := s.subs.stats(); w != maxPendingListensPerPrincipal {
		t.Fatalf("%d reserved, want %d", w, maxPendingListensPerPrincipal)
	}
	if msg := refusedListen(t, s, bob, 300, ids[0]); strings.Contains(msg, "not started") {
		t.Fatalf("bob's listen refused for alice's pending ones: %s", msg)
	}
}
