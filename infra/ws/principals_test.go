package ws_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/ws"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// principalTokens is the tokens of the principals tests (the server's
// token store does the same: token -> principal in the request context).
var principalTokens = map[string]auth.Principal{
	"admin-token": auth.Admin(),
	"alice-token": {Name: "alice", Scopes: auth.DefaultScopes},
	"bob-token":   {Name: "bob", Scopes: auth.DefaultScopes},
	"carol-token": {Name: "carol", Scopes: auth.ScopeExecute}, // no read
}

// withPrincipals authenticates ?token= or the bearer header against
// principalTokens and puts the principal in the request context.
func withPrincipals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token") // NB: dial also sends the old single token as a header
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		p, ok := principalTokens[tok]
		if name, as := strings.CutPrefix(tok, "as:"); as {
			p, ok = auth.Principal{Name: name, Scopes: auth.DefaultScopes}, true // many principals (benchmark)
		}
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// startFiltered serves /ws over l with ws.KernelReaders (the server's
// Access) and, when withBacklog, the backlog read model.
func startFiltered(t testing.TB, l *eventlog.Log, withBacklog bool, initial map[string][]string) (*ws.Hub, string) {
	t.Helper()
	opts := ws.Options{Access: ws.KernelReaders(func() map[string][]string { return initial })}
	return startFilteredWith(t, l, withBacklog, opts)
}

func startFilteredWith(t testing.TB, l *eventlog.Log, withBacklog bool, opts ws.Options) (*ws.Hub, string) {
	t.Helper()
	if withBacklog {
		bl := backlog.New(backlog.Options{MaxMessages: 1000})
		r := projections.NewRunner(l, projections.Options{}, bl)
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		opts.Backlog, opts.BacklogWait = bl, r.WaitFor
	}
	hub := ws.New(l, opts)
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", withPrincipals(hub.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func dialAs(t testing.TB, url, token string) *websocket.Conn {
	t.Helper()
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return dial(t, url+sep+"token="+token)
}

// book appends drafts and returns their seqs.
func book(t testing.TB, l *eventlog.Log, ds ...events.Draft) []uint64 {
	t.Helper()
	first := l.Last() + 1
	testkit.AppendAll(t, l, ds)
	return span(first, l.Last())
}

func started(kernel, owner string) events.Draft {
	return events.Draft{Stream: events.KernelStream(kernel), Kernel: kernel, Principal: owner,
		Payload: events.KernelStarted{KernelID: kernel, Spec: "python3", Owner: owner}}
}

func shared(kernel, by, to, access string) events.Draft {
	return events.Draft{Stream: events.KernelStream(kernel), Kernel: kernel, Principal: by,
		Payload: events.KernelShared{KernelID: kernel, Principal: to, Access: access}}
}

func output(kernel, by string, i int) events.Draft {
	d := draft(kernel, i, "out\n")
	d.Principal = by
	return d
}

// serverEvent is an event about no kernel: caused by by ("" for the server).
func serverEvent(by string) events.Draft {
	return events.Draft{Stream: events.ServerStream("n"), Principal: by, Payload: events.ServerStarted{Node: "n"}}
}

// expectSeqs reads c until it has seen the last of want and fails unless
// it saw exactly want, in order.
func expectSeqs(t *testing.T, who string, c *websocket.Conn, want []uint64) {
	t.Helper()
	got := readSeqs(t, c, want[len(want)-1])
	if !slices.Equal(got, want) {
		t.Fatalf("%s got seqs %v, want %v", who, got, want)
	}
}

// TestPrincipalReadsOnlyItsKernels: alice's /ws never carries bob's
// kernel's events (live, filtered by kernel, or resumed from the backlog or
// the log), carries her own and the ones she caused; a share makes exactly
// bob's shared kernel's events appear from the share on, a withdrawal stops
// them; the admin reads everything.
func TestPrincipalReadsOnlyItsKernels(t *testing.T) {
	for _, withBacklog := range []bool{true, false} {
		t.Run(fmt.Sprintf("backlog=%v", withBacklog), func(t *testing.T) {
			l := testkit.OpenLog(t, testkit.TempDataDir(t))
			// A kernel alice started before the hub: its readers come from
			// the read model (Readers), not from an event the hub saw.
			old := book(t, l, started("kold", "alice"), output("kold", "alice", 0))
			hub, url := startFiltered(t, l, withBacklog, map[string][]string{"kold": {"alice"}})
			alice, admin := dialAs(t, url, "alice-token"), dialAs(t, url, "admin-token")
			aliceOnBob := dialAs(t, url+"?kernel=kb", "alice-token")
			waitClients(t, hub, 3) // joined the fan-out

			ka := book(t, l, started("ka", "alice"))
			kb := book(t, l, started("kb", "bob"))
			ka = append(ka, book(t, l, output("ka", "alice", 1), output("ka", "alice", 2))...)
			kb = append(kb, book(t, l, output("kb", "bob", 1), output("kb", "bob", 2))...)
			server := book(t, l, serverEvent(""))
			byAlice := book(t, l, serverEvent("alice"))
			byBob := book(t, l, serverEvent("bob"))
			ka = append(ka, book(t, l, output("kold", "alice", 3))...)

			aliceWants := slices.Concat(ka[:3], byAlice, ka[3:])
			expectSeqs(t, "alice", alice, aliceWants)
			expectSeqs(t, "admin", admin, span(ka[0], ka[len(ka)-1]))
			// NB: expectSeqs is exact: the admin got the server's and bob's
			// events about no kernel, alice neither.
			for _, s := range slices.Concat(server, byBob) {
				if slices.Contains(aliceWants, s) || s < ka[0] || s > ka[len(ka)-1] {
					t.Fatalf("event %d (the server's or bob's) is in alice's want %v or outside the admin's", s, aliceWants)
				}
			}

			// Resume from the start: her old kernel too, still nothing of bob's.
			resumed := dialAs(t, url+"?since=0", "alice-token")
			expectSeqs(t, "alice resumed", resumed, slices.Concat(old, aliceWants))
			resumedOnBob := dialAs(t, url+"?kernel=kb&since=0", "alice-token")
			// NB: joined and caught up (nothing of kb is hers yet) before the
			// share, so what it gets after is exactly the fan-out's.
			waitClients(t, hub, 5)
			testkit.WaitUntil(t, 10*time.Second, "every client caught up", func() (bool, string) {
				f, ok := hub.LogFloor()
				return !ok, fmt.Sprint("floor ", f)
			})

			// bob shares kb with alice: from the share on, kb flows to her.
			share := book(t, l, shared("kb", "bob", "alice", events.AccessRead))
			kbShared := book(t, l, output("kb", "bob", 3), output("kb", "bob", 4))
			withdraw := book(t, l, shared("kb", "bob", "alice", events.AccessNone))
			kbAfter := book(t, l, output("kb", "bob", 5))
			end := book(t, l, output("ka", "alice", 6))
			expectSeqs(t, "alice after the share", alice, slices.Concat(share, kbShared, end))
			// Her client on kb saw nothing before the share; the next event it
			// gets after the withdrawal is the next share.
			reshare := book(t, l, shared("kb", "bob", "alice", events.AccessExecute))
			expectSeqs(t, "alice on kb", aliceOnBob, slices.Concat(share, kbShared, reshare))
			// Resumed while kb was not shared: exactly the share, the
			// shared events and the reshare; never the withdrawal or what
			// kb did while withdrawn.
			expectSeqs(t, "alice resumed on kb", resumedOnBob, slices.Concat(share, kbShared, reshare))
			if slices.Contains(kbShared, kbAfter[0]) || slices.Contains(kbShared, withdraw[0]) {
				t.Fatal("test bug: the withdrawn events are in the wanted ones")
			}
		})
	}
}

// TestRevokedPrincipalIsClosed: ClosePrincipal (the token store's
// revocation callback) closes every open /ws of that principal at once
// with 4001 and a reason naming the revocation; others stay open.
func TestRevokedPrincipalIsClosed(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	hub, url := startFiltered(t, l, false, nil)
	a1, a2 := dialAs(t, url, "alice-token"), dialAs(t, url+"?kernel=ka&since=0", "alice-token")
	bob := dialAs(t, url, "bob-token")
	waitClients(t, hub, 3)
	if n := hub.ClosePrincipal("alice"); n != 2 {
		t.Fatalf("ClosePrincipal closed %d clients, want 2", n)
	}
	for _, c := range []*websocket.Conn{a1, a2} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != ws.CloseTokenRevoked || !strings.Contains(ce.Reason, "revoked") {
			t.Fatalf("alice's client ended with %v, want close %d naming the revocation", err, ws.CloseTokenRevoked)
		}
	}
	kb := book(t, l, started("kb", "bob"))
	expectSeqs(t, "bob", bob, kb)
}

// TestRevokedWhileStreaming: a client busy receiving a flood of its
// kernel's output still gets the 4001 close frame (the revocation does not
// cut a write in progress, which would lose the frame).
func TestRevokedWhileStreaming(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	hub, url := startFiltered(t, l, false, map[string][]string{"ka": {"alice"}})
	alice := dialAs(t, url, "alice-token")
	waitClients(t, hub, 1)
	big := strings.Repeat("x", 16<<10)
	ds := make([]events.Draft, 200)
	for i := range ds {
		ds[i] = draft("ka", i, big)
	}
	testkit.AppendAll(t, l, ds)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := alice.Read(ctx); err != nil { // the flood is being written
		t.Fatal(err)
	}
	testkit.AppendAll(t, l, ds)
	hub.ClosePrincipal("alice")
	for {
		_, _, err := alice.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != ws.CloseTokenRevoked {
			t.Fatalf("alice's busy client ended with %v, want close %d", err, ws.CloseTokenRevoked)
		}
		return
	}
}

// TestWithoutReadScopeRefused: a principal without the read scope gets no
// stream.
func TestWithoutReadScopeRefused(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	_, url := startFiltered(t, l, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+"?token=carol-token", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("carol (no read scope) dialled /ws: err %v, response %v; want 403", err, resp)
	}
}

func waitClients(t testing.TB, hub *ws.Hub, n int) {
	t.Helper()
	testkit.WaitUntil(t, 10*time.Second, "clients joined the fan-out", func() (bool, string) {
		return hub.Clients() == n, fmt.Sprint(hub.Clients(), " clients")
	})
}

// TestNoPrincipalRefused: with Access set, a request that reaches /ws
// without a principal (mounted outside the authentication middleware) is
// refused, not served everything.
func TestNoPrincipalRefused(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	hub := ws.New(l, ws.Options{Access: ws.KernelReaders(func() map[string][]string { return nil })})
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/ws without a principal: err %v, response %v; want 401", err, resp)
	}
}

// TestRevokedBetweenAuthAndJoin: a token revoked after the middleware
// authenticated the request but before the client joined the fan-out
// (ClosePrincipal finds no client to close) is closed with 4001 all the
// same: the hub asks Options.Current once joined.
func TestRevokedBetweenAuthAndJoin(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	var mu sync.Mutex
	valid := map[string]bool{"alice-token": true, "bob-token": true}
	current := func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		return valid[r.URL.Query().Get("token")]
	}
	hub := ws.New(l, ws.Options{Access: ws.KernelReaders(func() map[string][]string { return map[string][]string{"ka": {"alice"}} }),
		Current: current})
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The revocation lands here: authenticated, not yet joined. As the
	// token store does: the directory first, then the watchers.
	revokeAlice := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") == "alice-token" {
			mu.Lock()
			delete(valid, "alice-token")
			mu.Unlock()
			if n := hub.ClosePrincipal("alice"); n != 0 {
				t.Errorf("ClosePrincipal closed %d clients before the join", n)
			}
		}
		hub.Handler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(withPrincipals(revokeAlice))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
		srv.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	alice, bob := dialAs(t, url, "alice-token"), dialAs(t, url, "bob-token")
	book(t, l, started("ka", "alice"), output("ka", "alice", 1))
	kb := book(t, l, started("kb", "bob"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, msg, err := alice.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.CloseTokenRevoked || !strings.Contains(ce.Reason, "revoked") {
		t.Fatalf("alice's /ws revoked before its join: read %q, %v; want close %d naming the revocation", msg, err, ws.CloseTokenRevoked)
	}
	expectSeqs(t, "bob", bob, kb)
}

// TestStartReplaysSharesTheModelLacks: the readers read model lags the log
// at Start (it applied up to bob's kernel start, not the share to alice
// after it): the hub replays the log after the model's seq, so alice's
// stream carries kb's next event.
func TestStartReplaysSharesTheModelLacks(t *testing.T) {
	l := testkit.OpenLog(t, testkit.TempDataDir(t))
	start := book(t, l, started("kb", "bob"))
	book(t, l, shared("kb", "bob", "alice", events.AccessRead))
	lagging := func() (map[string][]string, uint64) { return map[string][]string{"kb": {"bob"}}, start[0] }
	hub, url := startFilteredWith(t, l, false, ws.Options{Access: ws.KernelReadersAt(lagging)})
	alice := dialAs(t, url, "alice-token")
	waitClients(t, hub, 1)
	next := book(t, l, output("kb", "bob", 1))
	expectSeqs(t, "alice", alice, next)
}
