package natsbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/net/nettest"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// routedPair starts two embedded servers routed to each other on loopback
// ports (a NATS cluster without JetStream: routing needs none), and waits
// until each sees the other.
func routedPair(t testing.TB) (a, b *Server) {
	t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	var servers []*Server
	for i, name := range []string{"a", "b"} {
		other, _ := url.Parse("nats://127.0.0.1:" + strconv.Itoa(ports[1-i]))
		so := &server.Options{ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "routing-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  []*url.URL{other}}
		servers = append(servers, startEmbedded(t, so))
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range servers {
		for s.ns.NumRoutes() < 1 {
			if time.Now().After(deadline) {
				t.Fatal("the two servers did not route to each other in 20s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return servers[0], servers[1]
}

func startEmbedded(t testing.TB, so *server.Options) *Server {
	t.Helper()
	a, err := newAuthenticator("", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	so.CustomClientAuthentication = a
	ns, err := server.NewServer(so)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start() // owned: the cleanup shuts it down
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	s := &Server{ns: ns, auth: a}
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	s.nc = nc
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func openRouter(t testing.TB, s *Server, node string) *Router {
	t.Helper()
	r, err := NewRouter(s, node, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close router %s: %v", node, err)
		}
	})
	return r
}

// waitInterest waits until subject has a subscriber as seen from s (the
// route propagated it).
func waitInterest(t testing.TB, s *Server, subject string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.nc.Request(subject, nil, time.Second)
		if err == nil || !errors.Is(err, nats.ErrNoResponders) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interest in %s after 10s", subject)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The principal crosses nodes whole; the owner's answer comes back as it
// was encoded; the owner's refusal is the caller's error.
func TestRoutedToolCallCarriesThePrincipal(t *testing.T) {
	sa, sb := routedPair(t)
	ra, rb := openRouter(t, sa, "a"), openRouter(t, sb, "b")
	var got ToolCall
	var mu sync.Mutex
	if err := ra.ServeTools(func(ctx context.Context, call ToolCall) (ToolReply, error) {
		mu.Lock()
		got = call
		mu.Unlock()
		if call.Tool == "refused" {
			return ToolReply{}, errors.New("kernel k1 is not yours")
		}
		if _, ok := ctx.Deadline(); !ok {
			return ToolReply{}, errors.New("the routed call has no deadline")
		}
		return ToolReply{Result: json.RawMessage(`{"content":[{"type":"text","text":"ran on a"}]}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitInterest(t, sb, ToolSubject("a"))
	p := auth.Principal{Name: "alice", Scopes: auth.ScopeRead | auth.ScopeExecute, MaxKernels: 3,
		Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	args := json.RawMessage(`{"name":"execute","arguments":{"kernel_id":"k1","code":"1+1"}}`)
	rep, err := rb.CallTool(context.Background(), "a", ToolCall{Principal: p, Tool: "execute", Args: args, Client: json.RawMessage(`{"can_ask":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(rep.Result) != `{"content":[{"type":"text","text":"ran on a"}]}` {
		t.Fatalf("reply %s", rep.Result)
	}
	mu.Lock()
	if got.Principal.Name != p.Name || got.Principal.Scopes != p.Scopes || got.Principal.MaxKernels != 3 || !got.Principal.Expires.Equal(p.Expires) {
		t.Errorf("principal arrived as %+v, sent %+v", got.Principal, p)
	}
	if got.Tool != "execute" || string(got.Args) != string(args) || string(got.Client) != `{"can_ask":true}` {
		t.Errorf("call arrived as %s %s %s", got.Tool, got.Args, got.Client)
	}
	mu.Unlock()

	_, err = rb.CallTool(context.Background(), "a", ToolCall{Principal: p, Tool: "refused"})
	var re *RemoteError
	if !errors.As(err, &re) || re.Node != "a" || !strings.Contains(re.Msg, "kernel k1 is not yours") {
		t.Fatalf("refusal: %v", err)
	}
}

func TestCallToolToAMissingNodeFailsAtOnce(t *testing.T) {
	sa, _ := routedPair(t)
	ra := openRouter(t, sa, "a")
	start := time.Now()
	_, err := ra.CallTool(context.Background(), "gone", ToolCall{Principal: auth.Admin(), Tool: "execute"})
	var ue *NodeUnreachableError
	if !errors.As(err, &ue) || ue.Node != "gone" {
		t.Fatalf("got %v, want a NodeUnreachableError for gone", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s: no responders must answer at once", d)
	}
	// A call without a principal is refused by the serving node.
	if err := ra.ServeTools(func(context.Context, ToolCall) (ToolReply, error) { return ToolReply{Result: []byte("{}")}, nil }); err != nil {
		t.Fatal(err)
	}
	rep, err := sa.nc.Request(ToolSubject("a"), []byte(`{}`), 5*time.Second)
	if err != nil || !strings.Contains(rep.Header.Get(hdrError), "no principal") {
		t.Fatalf("call without a principal: %v %v", err, rep)
	}
}

// An outside NATS client (the --nats-token holder) can neither call a tool
// on a node, nor read the routed calls, replies or tunnels.
func TestOutsideClientCannotCallOrReadRoutes(t *testing.T) {
	s, err := Open(Options{Listen: "127.0.0.1:0", Token: "outside-token"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	r := openRouter(t, s, "a")
	var calls sync.WaitGroup
	ran := make(chan ToolCall, 4)
	if err := r.ServeTools(func(_ context.Context, c ToolCall) (ToolReply, error) {
		ran <- c
		return ToolReply{Result: []byte(`{"content":[]}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	l, err := r.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	perm := make(chan error, 16)
	out, err := nats.Connect(s.ClientURL(), nats.Token("outside-token"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perm <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Everything it can see, it subscribes to.
	spy, err := out.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{hdrTool: {"execute"}, hdrPrincipal: {`{"Name":"admin","Scopes":255}`}}
	_, err = out.RequestMsg(&nats.Msg{Subject: ToolSubject("a"), Header: hdr, Data: []byte(`{}`)}, time.Second)
	if err == nil {
		t.Fatal("an outside client's tool call was answered")
	}
	select {
	case c := <-ran:
		t.Fatalf("an outside client's call ran: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := out.Request(DialSubject("a"), []byte(newTunnelID()+" x"), time.Second); err == nil {
		t.Fatal("an outside client opened a tunnel")
	}
	// The server's own routed call and tunnel traffic are not delivered to it.
	calls.Add(1)
	go func() {
		defer calls.Done()
		_, _ = r.CallTool(context.Background(), "a", ToolCall{Principal: auth.Admin(), Tool: "list_kernels", Args: []byte(`{"secret":1}`)})
		<-ran
	}()
	c, err := r.DialNode(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("Authorization: Bearer secret")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := sc.Read(buf); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_ = sc.Close()
	calls.Wait()
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := spy.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if strings.HasPrefix(m.Subject, "mcpjupyter.node.") || strings.HasPrefix(m.Subject, "mcpjupyter.tunnel.") || strings.HasPrefix(m.Subject, routeInbox) {
			t.Fatalf("an outside subscriber read %s: %q", m.Subject, m.Data)
		}
	}
	// Asking for them by name is refused outright.
	if _, err := out.SubscribeSync("mcpjupyter.tunnel.>"); err != nil {
		t.Fatal(err)
	}
	_ = out.Flush()
	select {
	case err := <-perm:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Fatalf("got %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscribing to the tunnels was not refused")
	}
}

// tunnelPipe makes a dialled and an accepted end over routers ra (dialler)
// and rb (listener).
func tunnelPipe(ra *Router, l net.Listener, node string) nettest.MakePipe {
	return func() (net.Conn, net.Conn, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err := ra.DialNode(ctx, node)
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err := l.Accept()
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { _ = c1.Close(); _ = c2.Close() }, nil
	}
}

func TestTunnelIsANetConn(t *testing.T) {
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ra, rb := openRouter(t, s, "a"), openRouter(t, s, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nettest.TestConn(t, tunnelPipe(ra, l, "b"))
}

func TestTunnelAcrossTheClusterIsANetConn(t *testing.T) {
	sa, sb := routedPair(t)
	ra, rb := openRouter(t, sa, "a"), openRouter(t, sb, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitInterest(t, sa, DialSubject("b"))
	nettest.TestConn(t, tunnelPipe(ra, l, "b"))
}

// 64 MiB each way at once, across the cluster: every byte arrives in order
// (sha256), while the window keeps at most TunnelWindow bytes in flight.
func TestTunnelLargeTransfer(t *testing.T) {
	sa, sb := routedPair(t)
	ra, rb := openRouter(t, sa, "a"), openRouter(t, sb, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitInterest(t, sa, DialSubject("b"))
	c1, c2, stop, err := tunnelPipe(ra, l, "b")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const size = 64 << 20
	send := func(c net.Conn, seed byte) [32]byte {
		h := sha256.New()
		block := make([]byte, 100_003) // not a multiple of the frame size
		for i := range block {
			block[i] = byte(i) ^ seed
		}
		for n := 0; n < size; n += len(block) {
			b := block[:min(len(block), size-n)]
			h.Write(b)
			if _, err := c.Write(b); err != nil {
				t.Errorf("write at %d: %v", n, err)
				break
			}
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum
	}
	recv := func(c net.Conn) ([32]byte, int64) {
		h := sha256.New()
		n, err := io.CopyN(h, c, size)
		if err != nil {
			t.Errorf("read after %d: %v", n, err)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum, n
	}
	var wg sync.WaitGroup
	var sent1, sent2, got1, got2 [32]byte
	wg.Go(func() { sent1 = send(c1, 1) })
	wg.Go(func() { sent2 = send(c2, 2) })
	wg.Go(func() { got2, _ = recv(c2) })
	wg.Go(func() { got1, _ = recv(c1) })
	wg.Wait()
	if sent1 != got2 || sent2 != got1 {
		t.Fatal("the bytes that arrived differ from those sent")
	}
	tc := c1.(*tunnelConn)
	tc.mu.Lock()
	inFlight := tc.sent - tc.peerAcked
	tc.mu.Unlock()
	if inFlight > TunnelWindow {
		t.Fatalf("%d bytes in flight, window %d", inFlight, TunnelWindow)
	}
}

// A missing frame closes the stream with ErrTunnelGap instead of passing
// on what follows it.
func TestTunnelGapClosesTheStream(t *testing.T) {
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ra, rb := openRouter(t, s, "a"), openRouter(t, s, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c1, c2, stop, err := tunnelPipe(ra, l, "b")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := c1.Write([]byte("frame 0")); err != nil {
		t.Fatal(err)
	}
	// Frame 1 never arrives: frame 2 is published in its place (on the
	// dialler's connection: after frame 0).
	id := c1.(*tunnelConn).local.id
	if err := ra.nc.Publish(tunnelSubject(id, "up"), append([]byte{frameData, 0, 0, 0, 0, 0, 0, 0, 2}, "frame 2"...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c2.Read(buf)
	if err != nil || string(buf[:n]) != "frame 0" {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(buf); !errors.Is(err, ErrTunnelGap) {
		t.Fatalf("read after the gap: %v, want ErrTunnelGap", err)
	}
}

// A tunnel whose other end goes silent (its node died) fails within the
// idle time instead of hanging.
func TestTunnelToADeadNodeFails(t *testing.T) {
	keepaliveEvery, idleAfter = 200*time.Millisecond, 600*time.Millisecond
	t.Cleanup(func() { keepaliveEvery, idleAfter = TunnelKeepalive, TunnelIdle })
	sa, sb := routedPair(t)
	ra, rb := openRouter(t, sa, "a"), openRouter(t, sb, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	waitInterest(t, sa, DialSubject("b"))
	c1, _, _, err := tunnelPipe(ra, l, "b")()
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	sb.ns.Shutdown() // node b dies: no FIN, no ping
	start := time.Now()
	_, err = c1.Read(make([]byte, 8))
	if err == nil || !strings.Contains(err.Error(), "nothing heard") {
		t.Fatalf("read from a dead node: %v", err)
	}
	if d := time.Since(start); d > idleAfter+2*keepaliveEvery+time.Second {
		t.Fatalf("took %s to notice", d)
	}
	if _, err := ra.DialNode(context.Background(), "b"); err == nil {
		t.Fatal("dialled a dead node")
	}
}

// HTTP through the tunnel as cmd/mcp-jupyter uses it: a reverse proxy
// whose transport dials the owner; keep-alive reuses one tunnel, and a
// WebSocket upgrade passes through.
func TestReverseProxyOverTunnelWithWebSocket(t *testing.T) {
	sa, sb := routedPair(t)
	ra, rb := openRouter(t, sa, "a"), openRouter(t, sb, "b")
	l, err := rb.ListenTunnels()
	if err != nil {
		t.Fatal(err)
	}
	var remotes sync.Map
	owner := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotes.Store(r.RemoteAddr, true)
		if r.URL.Path == "/ws" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			for {
				typ, b, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, append([]byte("echo "), b...)); err != nil {
					return
				}
			}
		}
		fmt.Fprintf(w, "owner b: %s %s", r.Method, r.URL.Path)
	})}
	go func() { _ = owner.Serve(l) }() // owned: Shutdown below
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = owner.Shutdown(ctx)
	}()
	waitInterest(t, sa, DialSubject("b"))
	target, _ := url.Parse("http://owner.invalid")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return ra.DialNode(ctx, "b") },
		},
	}
	entry := httptest.NewServer(proxy)
	defer entry.Close()
	for i := range 3 {
		resp, err := http.Get(entry.URL + "/api/kernels/k" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "owner b: GET /api/kernels/k" + strconv.Itoa(i); string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	n := 0
	remotes.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d tunnels for 3 sequential requests: keep-alive must reuse one", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(entry.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	big := bytes.Repeat([]byte("x"), 300_000)
	for _, msg := range [][]byte{[]byte("hello"), big} {
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("echo "), msg...)) {
			t.Fatalf("websocket echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
}
