package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/nats-io/nats.go"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const testNATSToken = "nats-test-token-0123456789"

// natsCore opens a core whose NATS listens on loopback with a token, with
// its HTTP routes on a test server, and returns an MCP client and the HTTP
// base URL.
func natsCore(t *testing.T) (*core, *client.Client, string) {
	t.Helper()
	cfg := testConfig(t, testkit.TempDataDir(t))
	cfg.NATSListen, cfg.NATSToken = "127.0.0.1:0", testNATSToken
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	cl := mcpClient(t, inproc)
	t.Cleanup(func() { _ = cl.Close() })
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, cl, srv.URL
}

// tcpSubscriber subscribes over TCP, as an outside program does.
func tcpSubscriber(t *testing.T, c *core, subject string) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(c.nats.ClientURL(), nats.Token(testNATSToken), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("connect to NATS over TCP: %v", err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// fetch GETs path from the server's HTTP API with the MCP token.
func fetch(t *testing.T, token, base, path string) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %.200s", path, resp.StatusCode, err, body)
	}
	return body
}

// bigOneMessage is code whose output is one 2 MiB IOPub message (a
// display: the kernel's launch wrapper splits long prints, not displays),
// so one event is over NATS's 1 MiB payload limit.
const bigOneMessage = "from IPython.display import display\ndisplay({'text/plain': 'x' * (2 << 20)}, raw=True)"

// TestOversizedOutputReachesNATSAsAReference is finding 5 as it happened:
// a kernel displays 2 MiB through the real MCP client; a TCP subscriber gets
// a reference for the oversized event, fetches it through /events and gets
// the exact event; the events after it still arrive and /readyz says nats
// ok.
func TestOversizedOutputReachesNATSAsAReference(t *testing.T) {
	c, cl, base := natsCore(t)
	k := startKernelTool(t, cl)
	sub := tcpSubscriber(t, c, "mcpjupyter.ev."+k+".>")
	if sc, text := executeToEnd(t, cl, map[string]any{"kernel": k, "code": bigOneMessage}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %.300s", sc, text)
	}
	refs, finished := 0, false
	for !finished {
		m, err := sub.NextMsg(60 * time.Second)
		if err != nil {
			t.Fatalf("after %d references, no ExecutionFinished over NATS: %v (readiness %+v)", refs, err, c.readiness())
		}
		path := m.Header.Get(natsbus.RefHeader)
		if path == "" {
			var e struct{ Type string }
			if err := json.Unmarshal(m.Data, &e); err != nil {
				t.Fatal(err)
			}
			finished = e.Type == events.TypeExecutionFinished
			continue
		}
		refs++
		var ref natsbus.Reference
		if err := json.Unmarshal(m.Data, &ref); err != nil {
			t.Fatal(err)
		}
		body := fetch(t, c.token, base, ref.Ref)
		e, err := c.log.Get(ref.Seq)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := e.MarshalJSON() // what NATS would have carried, had it fit
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, whole) || len(body) != ref.Size || strconv.FormatUint(ref.Seq, 10) != m.Header.Get(natsbus.SeqHeader) {
			t.Fatalf("GET %s: %d bytes, reference says %d, the log's event is %d bytes (identical: %v)", ref.Ref, len(body), ref.Size, len(whole), bytes.Equal(body, whole))
		}
		if !bytes.Contains(body, bytes.Repeat([]byte("x"), 1<<20)) {
			t.Fatalf("the fetched event %d (%s) does not hold the printed output", ref.Seq, ref.Type)
		}
	}
	if refs == 0 {
		t.Fatal("2 MiB of output produced no reference: was it sent whole over NATS?")
	}
	if rd := c.readiness(); rd.Checks["nats"] != "ok" {
		t.Fatalf("/readyz nats = %q after an oversized event", rd.Checks["nats"])
	}
}

// gatedBus is a fault injector in front of the real embedded server: cut
// closes the publisher's real connection and refuses new ones until open.
type gatedBus struct {
	*natsbus.Server
	refuse atomic.Bool
	conns  chan *nats.Conn
}

func (g *gatedBus) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if g.refuse.Load() {
		return nil, fmt.Errorf("test gate: the NATS server refuses connections")
	}
	nc, err := g.Server.Connect(opts...)
	if err == nil {
		g.conns <- nc
	}
	return nc, err
}

// TestReadyzFailsWhileTheNATSPublisherIsStopped: the publisher's connection
// closes and cannot be reopened: /readyz answers 503 naming nats and why;
// once it can, the publisher resumes where it was, subscribers see every
// event once, and /readyz is ready again.
func TestReadyzFailsWhileTheNATSPublisherIsStopped(t *testing.T) {
	c, _, base := natsCore(t)
	sub := tcpSubscriber(t, c, "mcpjupyter.ev.>")
	g := &gatedBus{Server: c.nats, conns: make(chan *nats.Conn, 16)}
	// Swap in a publisher behind the gate, resuming where the core's stopped.
	if err := c.pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	pub := natsbus.NewPublisher(c.log, g, natsbus.PublisherOptions{After: c.pub.Confirmed(), Cursor: "nats-publisher",
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.pub = pub
	c.mu.Unlock()
	readyz := func() (int, readiness) {
		req, _ := http.NewRequest("GET", base+pathReadyz, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd readiness
		if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, rd
	}
	testkit.WaitUntil(t, 60*time.Second, "/readyz ready", func() (bool, string) {
		code, rd := readyz()
		return code == 200, fmt.Sprintf("%d %+v", code, rd)
	})
	node := c.log.Node()
	var want []uint64
	appendSome := func() {
		for range 3 {
			evs, err := c.log.Append(context.Background(), events.Draft{Stream: events.ServerStream(node), Payload: events.ServerStarted{Node: node}})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, evs[0].Seq)
		}
	}
	appendSome()
	testkit.WaitUntil(t, 30*time.Second, "the events confirmed", func() (bool, string) {
		return pub.Confirmed() >= want[len(want)-1], fmt.Sprint(pub.Confirmed())
	})

	g.refuse.Store(true)
	(<-g.conns).Close()
	testkit.WaitUntil(t, 30*time.Second, "/readyz failing on nats", func() (bool, string) {
		code, rd := readyz()
		return code == 503 && strings.Contains(rd.Checks["nats"], "refuses connections") && strings.HasPrefix(rd.Reason, "nats: publisher stopped"),
			fmt.Sprintf("%d %+v", code, rd)
	})
	appendSome() // while it is down
	g.refuse.Store(false)
	testkit.WaitUntil(t, 30*time.Second, "/readyz ready again", func() (bool, string) {
		code, rd := readyz()
		return code == 200 && rd.Checks["nats"] == "ok", fmt.Sprintf("%d %+v", code, rd)
	})
	appendSome()
	var got []uint64
	for len(got) < len(want) {
		m, err := sub.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		seq, _ := strconv.ParseUint(m.Header.Get(natsbus.SeqHeader), 10, 64)
		if seq >= want[0] {
			got = append(got, seq)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the subscriber saw %v, want each of %v once, in order", got, want)
	}
}

// TestNATSListenerNeedsCredentials: --nats-listen on loopback without a
// token or nkeys refuses to start, saying what to pass; with
// --nats-insecure-loopback (or its variable) it starts.
func TestNATSListenerNeedsCredentials(t *testing.T) {
	cfg := testConfig(t, testkit.TempDataDir(t))
	_, flagErr := parseConfig("serve", []string{"--data-dir", cfg.DataDir, "--nats-listen", "127.0.0.1:4222"})
	cfg.NATSListen = "127.0.0.1:0" // past the flags: the server itself refuses too
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = c.close(context.Background())
		t.Fatal("a NATS listener without credentials started")
	}
	for _, err := range []error{flagErr, err} {
		for _, want := range []string{"--nats-token", "--nats-nkeys", "--nats-insecure-loopback", "MCP_NATS_INSECURE_LOOPBACK"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("the refusal does not name %s: %v", want, err)
			}
		}
	}
	t.Setenv("MCP_NATS_INSECURE_LOOPBACK", "true")
	cfg2, err := parseConfig("serve", []string{"--data-dir", cfg.DataDir, "--nats-listen", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg2.NATSInsecureLoopback {
		t.Fatal("MCP_NATS_INSECURE_LOOPBACK=true was not read")
	}
	c, err = openCore(context.Background(), cfg2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("with --nats-insecure-loopback: %v", err)
	}
	defer c.close(context.Background())
	nc, err := nats.Connect(c.nats.ClientURL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("an anonymous loopback client with --nats-insecure-loopback: %v", err)
	}
	nc.Close()
}

// TestExampleSubscriberFetchesOversizedEvents: the real binary and the
// example subscriber of docs/nats.md, each its own process: a kernel prints
// 2 MiB; the subscriber, given -http and -mcp-token, prints the oversized
// event whole, byte for byte what GET /events/<seq> serves, and goes on to
// the execution's end.
func TestExampleSubscriberFetchesOversizedEvents(t *testing.T) {
	e := newOpsEnv(t)
	subBin := filepath.Join(t.TempDir(), "subscriber")
	if out, err := exec.Command("go", "build", "-o", subBin, "../../docs/examples/subscriber").CombinedOutput(); err != nil {
		t.Fatalf("build the example subscriber: %v\n%s", err, out)
	}
	natsAddr := freeAddr(t)
	s := startServer(t, e.bin, e.env, "--nats-listen", natsAddr, "--nats-token", testNATSToken)
	waitReady(t, s.addr, 90*time.Second)
	token, err := os.ReadFile(filepath.Join(e.dataDir, "mcp-token"))
	if err != nil {
		t.Fatal(err)
	}
	mcpToken := strings.TrimSpace(string(token))
	sub := exec.Command(subBin, "-url", "nats://"+natsAddr, "-token", testNATSToken, "-http", s.addr, "-mcp-token", mcpToken)
	out, _ := sub.StdoutPipe()
	errOut, _ := sub.StderrPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	lines, status := lineReader(t, out), lineReader(t, errOut)
	select {
	case l := <-status:
		if !strings.HasPrefix(l, "subscribed") {
			t.Fatalf("subscriber: %s", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the subscriber did not subscribe")
	}
	cl := httpMCP(t, s.addr, e.dataDir)
	k := startKernelTool(t, cl)
	sc, text := executeToEnd(t, cl, map[string]any{"kernel": k, "code": bigOneMessage})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %v %.300s", sc, text)
	}
	stream := "execution/" + sc["execution_id"].(string)
	whole := 0
	for finished := false; !finished; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the subscriber ended")
			}
			var ev jsonEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("the subscriber printed a line that is not an event: %.300q", l)
			}
			if len(l) > 1<<20 {
				if served := fetch(t, mcpToken, "http://"+s.addr, natsbus.RefPath(ev.Seq)); string(served) != l {
					t.Fatalf("the subscriber printed %d bytes for event %d, /events serves %d", len(l), ev.Seq, len(served))
				}
				whole++
			}
			finished = ev.Stream == stream && ev.Type == events.TypeExecutionFinished
		case l := <-status:
			t.Fatalf("subscriber: %s", l)
		case <-time.After(60 * time.Second):
			t.Fatalf("no ExecutionFinished from the subscriber after 60s (%d whole oversized events)", whole)
		}
	}
	if whole == 0 {
		t.Fatal("the subscriber printed no event over 1 MiB: the 2 MiB output did not reach it whole")
	}
}
