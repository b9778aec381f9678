package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// resourceUpdates records the notifications/resources/updated a client
// gets and wakes whoever waits for one.
type resourceUpdates struct {
	mu      sync.Mutex
	count   map[string]int
	acks    int // notifications/subscriptions/acknowledged: a listen stream is open
	changed chan struct{}
}

func watchUpdates(c *client.Client) *resourceUpdates {
	u := &resourceUpdates{count: map[string]int{}, changed: make(chan struct{})}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		u.mu.Lock()
		defer u.mu.Unlock()
		switch n.Method {
		case string(mcp.MethodNotificationResourceUpdated):
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			u.count[uri]++
		case string(mcp.MethodNotificationSubscriptionsAcknowledged):
			u.acks++
		default:
			return
		}
		close(u.changed)
		u.changed = make(chan struct{})
	})
	return u
}

// untilAcked waits until more than n listen streams were acknowledged.
func (u *resourceUpdates) untilAcked(t testing.TB, n int) {
	t.Helper()
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	for {
		u.mu.Lock()
		acks, changed := u.acks, u.changed
		u.mu.Unlock()
		if acks > n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for subscriptions/listen's acknowledgement (%d so far)", acks)
		}
	}
}

func (u *resourceUpdates) of(uri string) (int, <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.count[uri], u.changed
}

// untilUpdated waits (woken by each update, never polling) until cond holds
// after an update of uri.
func (u *resourceUpdates) untilUpdated(t testing.TB, uri, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	for {
		n, changed := u.of(uri)
		if n > 0 && cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s (%d updates of %s)", what, n, uri)
		}
	}
}

// versionedClient is an in-process mcp-go client on protocol version,
// asserted negotiated.
func versionedClient(t testing.TB, c *core, version string) (*client.Client, *resourceUpdates) {
	t.Helper()
	inproc, err := client.NewInProcessClientWithOptions(c.mcp.MCP(), client.WithProtocolVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	u := watchUpdates(inproc)
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	if got := cl.ProtocolVersion(); got != version {
		t.Fatalf("negotiated %q, want %q", got, version)
	}
	return cl, u
}

func readExecution(t testing.TB, ctx context.Context, c *client.Client, uri string) (string, error) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := c.ReadResource(rctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, rc := range res.Contents {
		if tc, ok := rc.(mcp.TextResourceContents); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), nil
}

// followLinkOf is the execution:// link of a reply.
func followLinkOf(t testing.TB, c *client.Client, args map[string]any) (string, map[string]any) {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "execute", args
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 2*time.Minute)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("execute: %v %+v", err, res)
	}
	sc, _ := res.StructuredContent.(map[string]any)
	for _, ct := range res.Content {
		if l, ok := ct.(mcp.ResourceLink); ok && strings.HasPrefix(l.URI, mcpserver.ExecutionScheme) {
			if want := mcpserver.ExecutionResourceURI(sc["execution_id"].(string)); l.URI != want {
				t.Fatalf("the reply links %s, want %s", l.URI, want)
			}
			return l.URI, sc
		}
	}
	t.Fatalf("the %v reply has no execution:// link: %+v", sc["status"], res.Content)
	return "", nil
}

const ticking = "import time\nfor i in range(6):\n    print('tick', i, flush=True)\n    time.sleep(0.4)"

// followScenario: cl (on version) follows a real kernel's execution
// printing over ~2.5 s from the link of its "running" reply (2025-11-25:
// resources/subscribe; 2026-07-28: subscriptions/listen): updates arrive
// while it prints, the last one after it finished; an execution no longer
// followed (unsubscribe, the listen closed) gets none while a later one's
// arrive.
func followScenario(t *testing.T, cl *client.Client, u *resourceUpdates, version string) {
	admin := asAdmin(context.Background())
	kernel := startKernelTool(t, cl)
	t.Cleanup(func() { callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": kernel}) })
	follow := func(uris ...string) (stop func()) {
		t.Helper()
		if version == mcp.ProtocolVersion20251125 {
			for _, uri := range uris {
				var req mcp.SubscribeRequest
				req.Params.URI = uri
				if err := cl.Subscribe(admin, req); err != nil {
					t.Fatalf("subscribe %s: %v", uri, err)
				}
			}
			return func() {
				for _, uri := range uris {
					var req mcp.UnsubscribeRequest
					req.Params.URI = uri
					if err := cl.Unsubscribe(admin, req); err != nil {
						t.Fatalf("unsubscribe %s: %v", uri, err)
					}
				}
			}
		}
		u.mu.Lock()
		acked := u.acks
		u.mu.Unlock()
		stop, err := cl.ListenAsync(admin, mcp.SubscriptionFilter{ResourceSubscriptions: uris},
			func(err error) { t.Errorf("listen: %v", err) })
		if err != nil {
			t.Fatal(err)
		}
		u.untilAcked(t, acked)
		return stop
	}

	uri, sc := followLinkOf(t, cl, map[string]any{"kernel": kernel, "code": ticking, "timeout_s": 0.5})
	if sc["status"] != "running" {
		t.Fatalf("the ticking execute replied %v", sc["status"])
	}
	stop := follow(uri)
	var final string
	u.untilUpdated(t, uri, "an update after which the execution reads finished", func() bool {
		text, err := readExecution(t, admin, cl, uri)
		if err != nil {
			t.Fatal(err)
		}
		final = text
		return strings.Contains(text, "status: ok")
	})
	if !strings.Contains(final, "tick 5") {
		t.Fatalf("the resource after the last update: %s", final)
	}
	if n, _ := u.of(uri); n < 2 {
		t.Fatalf("%d updates for an execution printing for 2.4 s: want updates while it prints, not only its end", n)
	}
	stop()

	lateURI, sc := followLinkOf(t, cl, map[string]any{"kernel": kernel, "code": "import time\ntime.sleep(1.5)\nprint('late')", "timeout_s": 0.3})
	if sc["status"] != "running" {
		t.Fatalf("the sleeping execute replied %v", sc["status"])
	}
	stopLate := follow(lateURI)
	stopLate()
	before, _ := u.of(lateURI)
	nextURI, _ := followLinkOf(t, cl, map[string]any{"kernel": kernel, "code": "print('next')", "timeout_s": 0.2})
	stopNext := follow(nextURI)
	u.untilUpdated(t, nextURI, "the later execution's final update", func() bool {
		text, err := readExecution(t, admin, cl, nextURI)
		return err == nil && strings.Contains(text, "status: ok")
	})
	stopNext()
	if after, _ := u.of(lateURI); after != before {
		t.Fatalf("%d updates about an execution no longer followed", after-before)
	}
	if text, err := readExecution(t, admin, cl, lateURI); err != nil || !strings.Contains(text, "late") {
		t.Fatalf("the unfollowed execution: %v %s", err, text)
	}
}

// coreWithPrincipals opens a core on a fresh data dir where names were
// added as principals (the CLI's way) with every scope; their tokens.
func coreWithPrincipals(t testing.TB, names ...string) (*core, map[string]string) {
	t.Helper()
	dataDir := testkit.TempDataDir(t)
	tokens := map[string]string{}
	for _, name := range names {
		out, err := principalCLI(t, dataDir, "add", name, "--scopes", "read,execute,manage")
		if err != nil {
			t.Fatalf("principal add %s: %v\n%s", name, err, out)
		}
		tokens[name] = printedToken(t, out)
	}
	cfg := testConfig(t, dataDir)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	return c, tokens
}

// TestSubscriptionsFollowARealExecution runs followScenario with mcp-go's
// client on each revision, in process and over Streamable HTTP (a real
// listener, a principal's token; legacy with the GET stream its
// notifications come on), then checks that no watcher is left.
func TestSubscriptionsFollowARealExecution(t *testing.T) {
	c, tokens := coreWithPrincipals(t, "alice")
	token := tokens["alice"]
	url := "http://127.0.0.1:" + serveOn(t, c) + pathMCP

	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run("inprocess/"+version, func(t *testing.T) {
			cl, u := versionedClient(t, c, version)
			followScenario(t, cl, u, version)
		})
		t.Run("http/"+version, func(t *testing.T) {
			opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})}
			if version == mcp.ProtocolVersion20251125 {
				// NB: a legacy session's notifications come on its GET stream.
				opts = append(opts, transport.WithContinuousListening())
			}
			tr, err := transport.NewStreamableHTTP(url, opts...)
			if err != nil {
				t.Fatal(err)
			}
			hc := client.NewClient(tr, client.WithProtocolVersion(version))
			u := watchUpdates(hc)
			cl := mcpClient(t, hc)
			t.Cleanup(func() { _ = cl.Close() })
			if got := cl.ProtocolVersion(); got != version {
				t.Fatalf("negotiated %q, want %q", got, version)
			}
			followScenario(t, cl, u, version)
		})
	}
	testkit.WaitUntil(t, 30*time.Second, "no watcher left", func() (bool, string) {
		w, n, sent := c.mcp.SubscriptionStats()
		return w == 0, fmt.Sprintf("%d watchers, %d subscribers, %d sent", w, n, sent)
	})
}

// TestSubscriptionsOverStdio: the real binary over stdio, mcp-go's client
// on each revision.
func TestSubscriptionsOverStdio(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			tr := transport.NewStdio(bin, append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir), "stdio")
			sc := client.NewClient(tr, client.WithProtocolVersion(version))
			u := watchUpdates(sc)
			cl := mcpClient(t, sc)
			t.Cleanup(func() { _ = cl.Close() })
			if got := cl.ProtocolVersion(); got != version {
				t.Fatalf("negotiated %q, want %q", got, version)
			}
			followScenario(t, cl, u, version)
		})
	}
}

// TestSubscriptionRefusedToAnotherPrincipal: bob cannot follow or read
// alice's execution on either revision, word for word as an unknown id;
// once alice shares the kernel for read, he can.
func TestSubscriptionRefusedToAnotherPrincipal(t *testing.T) {
	c, _ := coreWithPrincipals(t, "alice", "bob")
	alice := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Scopes: auth.DefaultScopes})
	bob := auth.WithPrincipal(context.Background(), auth.Principal{Name: "bob", Scopes: auth.DefaultScopes})
	legacy, _ := versionedClient(t, c, mcp.ProtocolVersion20251125)
	modern, _ := versionedClient(t, c, mcp.ProtocolVersion20260728)

	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "start_kernel", map[string]any{"kernelspec": "python3"}
	ctx, cancel := context.WithTimeout(alice, 2*time.Minute)
	defer cancel()
	res, err := legacy.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("start_kernel as alice: %v %+v", err, res)
	}
	kernel := res.StructuredContent.(map[string]any)["kernel_id"].(string)
	req.Params.Name, req.Params.Arguments = "execute", map[string]any{"kernel": kernel, "code": "import time\ntime.sleep(30)", "timeout_s": 0.2}
	res, err = legacy.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("execute as alice: %v %+v", err, res)
	}
	uri := mcpserver.ExecutionResourceURI(res.StructuredContent.(map[string]any)["execution_id"].(string))

	var sub mcp.SubscribeRequest
	sub.Params.URI = uri
	if err := legacy.Subscribe(bob, sub); err == nil || !strings.Contains(err.Error(), "unknown execution") {
		t.Fatalf("bob's resources/subscribe to alice's execution: %v", err)
	}
	lctx, lcancel := context.WithTimeout(bob, 30*time.Second)
	defer lcancel()
	if err := modern.Listen(lctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}}); err == nil || !strings.Contains(err.Error(), "unknown execution") {
		t.Fatalf("bob's subscriptions/listen on alice's execution: %v", err)
	}
	if _, err := readExecution(t, bob, modern, uri); err == nil || !strings.Contains(err.Error(), "unknown execution") {
		t.Fatalf("bob's resources/read of alice's execution: %v", err)
	}
	if w, _, _ := c.mcp.SubscriptionStats(); w != 0 {
		t.Fatalf("refused subscriptions hold %d watchers", w)
	}
	// alice herself may; and bob once she shares the kernel for read.
	if err := legacy.Subscribe(alice, sub); err != nil {
		t.Fatalf("alice's own subscription: %v", err)
	}
	req.Params.Name, req.Params.Arguments = "share_kernel", map[string]any{"kernel": kernel, "principal": "bob", "access": "read"}
	if res, err := legacy.CallTool(ctx, req); err != nil || res.IsError {
		t.Fatalf("share_kernel: %v %+v", err, res)
	}
	bobsClient, _ := versionedClient(t, c, mcp.ProtocolVersion20251125)
	if err := bobsClient.Subscribe(bob, sub); err != nil {
		t.Fatalf("bob's subscription once the kernel is shared for read: %v", err)
	}
	if text, err := readExecution(t, alice, legacy, uri); err != nil || !strings.Contains(text, "status: running") {
		t.Fatalf("alice's read: %v %s", err, text)
	}
	req.Params.Name, req.Params.Arguments = "interrupt_kernel", map[string]any{"kernel": kernel}
	if res, err := legacy.CallTool(ctx, req); err != nil || res.IsError {
		t.Fatalf("interrupt: %v %+v", err, res)
	}
}

// TestSubscriptionsOutsideSDKs: the official TypeScript clients follow a
// real execution over Streamable HTTP (testkit/outside/mcpsdk2/subs.mjs):
// @modelcontextprotocol/sdk 1.32.2 with resources/subscribe on 2025-11-25,
// @modelcontextprotocol/client 2.4.0 with subscriptions/listen on
// 2026-07-28; another principal is refused on both.
func TestSubscriptionsOutsideSDKs(t *testing.T) {
	node := outsideSDKReady(t)
	outsideSDK2Ready(t)
	c, tokens := coreWithPrincipals(t, "alice", "bob")
	url := "http://127.0.0.1:" + serveOn(t, c) + pathMCP

	for _, tc := range []struct{ sdk, version string }{{"1", "2025-11-25"}, {"2", "2026-07-28"}} {
		t.Run("sdk"+tc.sdk, func(t *testing.T) {
			var res struct {
				SDK               string `json:"sdk"`
				ProtocolVersion   string `json:"protocol_version"`
				Updates           int    `json:"updates"`
				UnfollowedUpdates int    `json:"unfollowed_updates"`
				OtherSubscribe    string `json:"other_subscribe"`
			}
			testkit.RunNodeJSON(t, testkit.NodeCheck{Node: node, Dir: outsideSDK2Dir, Script: "subs.mjs",
				Env: append(os.Environ(), "MCPJ_SDK="+tc.sdk, "MCPJ_URL="+url,
					"MCPJ_TOKEN="+tokens["alice"], "MCPJ_OTHER_TOKEN="+tokens["bob"]),
				Timeout: 4 * time.Minute}, &res)
			if res.ProtocolVersion != tc.version {
				t.Fatalf("%s negotiated %q, want %q", res.SDK, res.ProtocolVersion, tc.version)
			}
			t.Logf("%s on %s: %d updates for a 2.4 s execution; another principal: %s", res.SDK, res.ProtocolVersion, res.Updates, res.OtherSubscribe)
		})
	}
	testkit.WaitUntil(t, 30*time.Second, "no watcher left", func() (bool, string) {
		w, _, _ := c.mcp.SubscriptionStats()
		return w == 0, ""
	})
}
