package testkit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// A cluster of real `mcp-jupyter serve` processes on loopback ports, for
// the end-to-end tests of cluster mode (docs/cluster.md). Every route
// between two nodes goes through a TCP proxy the harness owns, one per
// direction of every pair: Cut(i) closes node i's links and refuses new
// ones, which is what a network partition does to it (its process, its
// kernels and its HTTP port stay up). SIGSTOP would not be a partition: a
// stopped node renews nothing and answers nobody, a cut-off one goes on
// and must notice by itself.

// ClusterOptions shape StartCluster's nodes. The zero value is the issue's
// test cluster: a 3 s lease, auto-checkpoints after 1 s of idleness.
type ClusterOptions struct {
	Lease              time.Duration // --cluster-lease (default 3s)
	AutoCheckpointIdle time.Duration // --auto-checkpoint-idle (default 1s)
	// Env and Args are added to every node's environment and command line.
	Env  []string
	Args []string
	// DirectRoutes points the routes straight at the nodes, without the
	// harness's proxies (for benchmarks: no extra hop; Cut then fails).
	DirectRoutes bool
	// ReadyTimeout bounds the wait for every node's /readyz (default 120s:
	// JetStream elects its meta leader once a majority is up).
	ReadyTimeout time.Duration
}

// Cluster is n server processes forming one cluster. Nodes are numbered
// from 1 (node1 … noden), as an operator names them.
type Cluster struct {
	t      testing.TB
	bin    string
	opts   ClusterOptions
	Token  string // MCP_TOKEN of every node (an admin's bearer token)
	Secret string // MCP_CHECKPOINT_SECRET of every node
	nodes  []*ClusterNode
	// links[i][j] carries node i's route to node j (1-based; nil on the
	// diagonal).
	links [][]*routeLink
}

// ClusterNode is one server process of a Cluster.
type ClusterNode struct {
	Name      string // node<i>, its --node-name
	Addr      string // its HTTP host:port (/mcp, /ws, /events, /readyz)
	RouteAddr string // its --cluster-listen (the proxies dial it)
	DataDir   string
	root      string // its --notebook-root

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs strings.Builder
	done chan struct{} // closed once the process was reaped
}

// StartCluster builds the server binary (once per test binary), starts n
// nodes and waits until every one answers /readyz 200. Everything is
// stopped at the test's cleanup: the processes killed, their kernels too.
// n = 1 starts a single server (no cluster flags), to compare with.
func StartCluster(t testing.TB, n int, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Lease == 0 {
		opts.Lease = 3 * time.Second
	}
	if opts.AutoCheckpointIdle == 0 {
		opts.AutoCheckpointIdle = time.Second
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 120 * time.Second
	}
	c := &Cluster{t: t, bin: BuildServer(t), opts: opts,
		Token:  "cluster-test-token-" + strconv.Itoa(os.Getpid()) + "-0123456789abcdef",
		Secret: "cluster-test-checkpoint-secret-0123456789abcdef"}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, &ClusterNode{Name: "node" + strconv.Itoa(i), Addr: FreeAddr(t), RouteAddr: FreeAddr(t),
			DataDir: filepath.Join(t.TempDir(), "data"), root: t.TempDir()})
	}
	c.startLinks()
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i+1, syscall.SIGKILL)
			KillKernels(t, c.nodes[i].DataDir)
		}
	})
	for i := 1; i <= n; i++ {
		c.launch(i)
	}
	for i := 1; i <= n; i++ {
		c.WaitReady(i)
	}
	return c
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.nodes) }

// Node returns node i (1-based).
func (c *Cluster) Node(i int) *ClusterNode {
	if i < 1 || i > len(c.nodes) {
		c.t.Fatalf("cluster has nodes 1..%d, not %d", len(c.nodes), i)
	}
	return c.nodes[i-1]
}

// Lease is the nodes' --cluster-lease.
func (c *Cluster) Lease() time.Duration { return c.opts.Lease }

// startLinks starts the proxy of every route (both directions of every
// pair), before any node runs.
func (c *Cluster) startLinks() {
	n := len(c.nodes)
	c.links = make([][]*routeLink, n+1)
	for i := 1; i <= n; i++ {
		c.links[i] = make([]*routeLink, n+1)
		for j := 1; j <= n; j++ {
			if i != j {
				c.links[i][j] = startRouteLink(c.t, c.nodes[j-1].RouteAddr)
			}
		}
	}
	// advertised[r] maps every address that leads to another node k — its
	// real route port, and every other node's link to it — to the port of
	// r's link to k: what r must be told instead. NB: a node gossips a
	// peer by the URL it dialed it on, which is its own link to that peer;
	// passed on unchanged, r would dial that link and keep a route to k
	// through another node's proxy, which a Cut of r does not close.
	advertised := make([]map[int]int, n+1)
	for r := 1; r <= n; r++ {
		advertised[r] = map[int]int{}
		for k := 1; k <= n; k++ {
			if k == r {
				continue
			}
			advertised[r][portOf(c.nodes[k-1].RouteAddr)] = portOf(c.links[r][k].addr)
			for x := 1; x <= n; x++ {
				if x != k && x != r {
					advertised[r][portOf(c.links[x][k].addr)] = portOf(c.links[r][k].addr)
				}
			}
		}
	}
	for i := 1; i <= n; i++ {
		for j := 1; j <= n; j++ {
			if i != j {
				l := c.links[i][j]
				l.toDialer, l.toTarget = advertised[i], advertised[j]
				l.wg.Add(1)
				go l.serve()
			}
		}
	}
}

func portOf(hostPort string) int {
	_, p, _ := net.SplitHostPort(hostPort)
	n, _ := strconv.Atoi(p)
	return n
}

// Routes is node i's --cluster-routes: the proxies of its links.
func (c *Cluster) routes(i int) string {
	var rs []string
	for j := 1; j <= len(c.nodes); j++ {
		if j != i {
			if c.opts.DirectRoutes {
				rs = append(rs, "nats://"+c.nodes[j-1].RouteAddr)
			} else {
				rs = append(rs, "nats://"+c.links[i][j].addr)
			}
		}
	}
	return strings.Join(rs, ",")
}

func (c *Cluster) launch(i int) {
	c.t.Helper()
	nd := c.Node(i)
	args := []string{"serve", "--addr", nd.Addr, "--log-format", "json", "--auto-checkpoint-idle", c.opts.AutoCheckpointIdle.String()}
	// NB: a cluster of one node is a single server (no cluster flags): a
	// one-node JetStream cluster never starts, and the server refuses
	// --cluster-listen without routes. Benchmarks compare with it.
	if len(c.nodes) > 1 {
		args = append(args, "--node-name", nd.Name, "--cluster-listen", nd.RouteAddr, "--cluster-routes", c.routes(i),
			"--cluster-lease", c.opts.Lease.String())
	}
	args = append(args, c.opts.Args...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "MCP_DATA_DIR="+nd.DataDir, "MCP_TOKEN="+c.Token, "MCP_CHECKPOINT_SECRET="+c.Secret,
		"JUPYTER_PATH="+KernelSpecDir(c.t), "MCP_NOTEBOOK_ROOT="+nd.root)
	if len(c.nodes) > 1 {
		cmd.Env = append(cmd.Env, "MCP_CLUSTER_TOKEN=cluster-route-secret-0123456789")
	}
	cmd.Env = append(cmd.Env, c.opts.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", nd.Name, err)
	}
	done := make(chan struct{})
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	fmt.Fprintf(&nd.logs, "=== %s started, pid %d\n", nd.Name, cmd.Process.Pid)
	nd.mu.Unlock()
	// The reader owns stderr until the process closes it; it reaps the
	// process after (both end when the process dies).
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			nd.mu.Lock()
			if nd.logs.Len() < 32<<20 { // NB: bounded; a test's failure quotes the tail
				nd.logs.WriteString(sc.Text() + "\n")
			}
			nd.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		err := cmd.Wait()
		nd.mu.Lock()
		fmt.Fprintf(&nd.logs, "=== %s exited: %v\n", nd.Name, err)
		nd.mu.Unlock()
		close(done)
	}()
}

// stop signals node i's process and waits (60 s at most) until it was
// reaped; a node not running is left alone.
func (c *Cluster) stop(i int, sig syscall.Signal) {
	nd := c.Node(i)
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		c.t.Errorf("%s did not exit within 60s of %v: killed", nd.Name, sig)
	}
}

// Kill9 loses node i as a machine is lost: the server is killed with
// SIGKILL, and its kernels with it (on a real machine they die together).
func (c *Cluster) Kill9(i int) {
	c.t.Helper()
	c.stop(i, syscall.SIGKILL)
	KillKernels(c.t, c.Node(i).DataDir)
}

// Stop ends node i with SIGTERM (a clean shutdown) and fails the test if it
// did not exit 0.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.stop(i, syscall.SIGTERM)
	nd := c.Node(i)
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil && nd.cmd.ProcessState != nil && !nd.cmd.ProcessState.Success() {
		c.t.Errorf("%s after SIGTERM: %v\n%s", nd.Name, nd.cmd.ProcessState, tail(nd.logs.String(), 8000))
	}
}

// Restart starts node i again (same name, ports and data dir) after Kill9
// or Stop, and waits for its /readyz.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Running(i) {
		c.t.Fatalf("restart %s: it is still running", c.Node(i).Name)
	}
	c.launch(i)
	c.WaitReady(i)
}

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool {
	nd := c.Node(i)
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid is node i's server process id (0 when it does not run).
func (c *Cluster) Pid(i int) int {
	if !c.Running(i) {
		return 0
	}
	nd := c.Node(i)
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd.Process.Pid
}

// Logs is node i's stderr so far (all its runs), to quote in a failure.
func (c *Cluster) Logs(i int) string {
	nd := c.Node(i)
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.logs.String()
}

// LogsTail is the end of every node's logs, for a failure message.
func (c *Cluster) LogsTail(n int) string {
	var b strings.Builder
	for i := 1; i <= len(c.nodes); i++ {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", c.Node(i).Name, c.Node(i).Addr, tail(c.Logs(i), n))
	}
	return b.String()
}

// Readiness is a node's /readyz answer.
type Readiness struct {
	Code   int
	Status string            `json:"status"`
	Reason string            `json:"reason"`
	Checks map[string]string `json:"checks"`
}

// Ready asks node i's /readyz once.
func (c *Cluster) Ready(i int) (Readiness, error) {
	var rd Readiness
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + c.Node(i).Addr + "/readyz")
	if err != nil {
		return rd, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rd, err
	}
	rd.Code = resp.StatusCode
	if err := json.Unmarshal(body, &rd); err != nil {
		return rd, fmt.Errorf("/readyz answered %d %q: %w", resp.StatusCode, body, err)
	}
	return rd, nil
}

// WaitReady waits until node i answers /readyz 200, failing with its last
// answer and logs (or at once if the process exited).
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.ReadyTimeout)
	var last string
	for {
		rd, err := c.Ready(i)
		if err == nil && rd.Code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%+v %v", rd, err)
		if !c.Running(i) {
			c.t.Fatalf("%s exited before it was ready (last /readyz %s):\n%s", c.Node(i).Name, last, c.LogsTail(6000))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready after %s; last /readyz: %s\n%s", c.Node(i).Name, c.opts.ReadyTimeout, last, c.LogsTail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client is a new MCP client of node i over streamable HTTP with the
// cluster's token, initialized; it is closed at cleanup.
func (c *Cluster) Client(i int) *client.Client {
	c.t.Helper()
	hc, err := transport.NewStreamableHTTP("http://"+c.Node(i).Addr+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + c.Token}))
	if err != nil {
		c.t.Fatal(err)
	}
	cl := client.NewClient(hc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Start(ctx); err != nil {
		c.t.Fatalf("MCP client of %s: %v", c.Node(i).Name, err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "testkit-cluster", Version: "1"}
	if _, err := cl.Initialize(ctx, init); err != nil {
		c.t.Fatalf("MCP initialize on %s: %v", c.Node(i).Name, err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Events returns node i's log from seq since on: through its HTTP API
// (GET /events) while it runs, read-only from its data dir when it does
// not.
func (c *Cluster) Events(i int, since uint64) ([]events.Event, error) {
	if !c.Running(i) {
		return c.eventsOffline(i, since)
	}
	hc := http.Client{Timeout: 60 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+c.Node(i).Addr+"/events?since="+strconv.FormatUint(since, 10), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /events of %s: %w", c.Node(i).Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET /events of %s: %d %s", c.Node(i).Name, resp.StatusCode, body)
	}
	var out []events.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("GET /events of %s: line %q: %w", c.Node(i).Name, tail(sc.Text(), 300), err)
		}
		if e.Type == "" {
			return nil, fmt.Errorf("GET /events of %s ended with %s", c.Node(i).Name, sc.Text())
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func (c *Cluster) eventsOffline(i int, since uint64) ([]events.Event, error) {
	l, err := eventlog.Open(filepath.Join(c.Node(i).DataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open the log of %s: %w", c.Node(i).Name, err)
	}
	defer l.Close()
	var out []events.Event
	err = l.Read(context.Background(), since+1, 0, func(e events.Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Cut partitions node i from every other node: the proxies of its links
// (both directions) close their connections and refuse new ones until
// Heal(i). It fails the test when a route between node i and another node
// does not go through the proxies (nats-server gossips the nodes' real
// addresses: such a route would survive the cut and the test would prove
// nothing).
func (c *Cluster) Cut(i int) {
	c.t.Helper()
	if c.opts.DirectRoutes {
		c.t.Fatal("Cut: the cluster was started with DirectRoutes: no proxy to cut")
	}
	for j := 1; j <= len(c.nodes); j++ {
		if j != i {
			c.links[i][j].cut(true)
			c.links[j][i].cut(true)
		}
	}
	if by := c.Bypasses(); len(by) > 0 {
		c.t.Fatalf("cut %s: routes bypass the harness's proxies (so no partition can be made): %s", c.Node(i).Name, strings.Join(by, "; "))
	}
}

// Heal ends Cut(i): its links accept connections again (nats-server
// reconnects its routes by itself).
func (c *Cluster) Heal(i int) {
	for j := 1; j <= len(c.nodes); j++ {
		if j != i {
			c.links[i][j].cut(false)
			c.links[j][i].cut(false)
		}
	}
}

// Bypasses lists established TCP connections to a node's route port that
// come from elsewhere than the harness's proxies (/proc/net/tcp: the peer
// port of every connection accepted on a route port must be one a proxy
// dialed from).
func (c *Cluster) Bypasses() []string {
	ours := map[int]bool{}
	for i := range c.links {
		for _, l := range c.links[i] {
			if l != nil {
				for _, p := range l.localPorts() {
					ours[p] = true
				}
			}
		}
	}
	routePorts := map[int]string{}
	for _, nd := range c.nodes {
		_, p, _ := net.SplitHostPort(nd.RouteAddr)
		port, _ := strconv.Atoi(p)
		routePorts[port] = nd.Name
	}
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "01" { // 01: ESTABLISHED
				continue
			}
			local, remote := hexPort(fs[1]), hexPort(fs[2])
			if name, ok := routePorts[local]; ok && !ours[remote] {
				out = append(out, fmt.Sprintf("%s's route port %d has a connection from port %d", name, local, remote))
			}
		}
	}
	return out
}

// hexPort is the port of a /proc/net/tcp address (hex ip:hex port).
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

// routeLink is one direction of the route between two nodes: a listener
// the dialing node's --cluster-routes names, forwarding every connection
// to the other node's --cluster-listen.
//
// nats-server gossips every node's real route address to the others, which
// then dial it directly: such a route would bypass the proxies and survive
// a cut. So the link speaks just enough of the route protocol to rewrite
// the addresses in the INFO lines it carries into the recipient's own link
// to that node (what cluster.advertise does behind a NAT): nats-server
// then finds the route configured already and dials nothing. Message
// payloads are copied as they are. A stream the link cannot follow (TLS,
// compression) is copied raw from there on, and Cut's check of the
// sockets still catches a bypass.
type routeLink struct {
	addr   string
	target string
	ln     net.Listener
	// toDialer and toTarget map a node's real route port to the port the
	// recipient must be told (set before any connection).
	toDialer, toTarget map[int]int

	mu    sync.Mutex
	isCut bool
	conns map[net.Conn]net.Conn // accepted -> dialed (both closed on a cut)
	wg    sync.WaitGroup
}

// startRouteLink listens; serve starts once the link's maps are set.
func startRouteLink(t testing.TB, target string) *routeLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &routeLink{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]net.Conn{}}
	t.Cleanup(func() {
		_ = ln.Close()
		l.cut(true)
		l.wg.Wait()
	})
	return l
}

func (l *routeLink) serve() {
	defer l.wg.Done()
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return // closed at cleanup
		}
		l.mu.Lock()
		isCut := l.isCut
		l.mu.Unlock()
		if isCut {
			_ = in.Close() // a partition: the peer sees its connection reset
			continue
		}
		out, err := net.DialTimeout("tcp", l.target, 5*time.Second)
		if err != nil {
			_ = in.Close() // the node is down: as a refused connection
			continue
		}
		l.mu.Lock()
		if l.isCut {
			l.mu.Unlock()
			_, _ = in.Close(), out.Close()
			continue
		}
		l.conns[in] = out
		l.mu.Unlock()
		l.wg.Add(2)
		go l.pipe(out, in, l.toTarget)
		go l.pipe(in, out, l.toDialer)
	}
}

// pipe copies one direction, rewriting INFO addresses with advertised;
// when either side ends, both are closed and the pair forgotten.
func (l *routeLink) pipe(dst, src net.Conn, advertised map[int]int) {
	defer l.wg.Done()
	_ = copyRouteProto(dst, src, advertised)
	_, _ = dst.Close(), src.Close()
	l.mu.Lock()
	delete(l.conns, src)
	delete(l.conns, dst)
	l.mu.Unlock()
}

// routeOps are the route protocol's operations; the ones carrying a
// payload give its size (headers included) as their last field.
var routeOps = map[string]bool{"INFO": false, "CONNECT": false, "PING": false, "PONG": false, "+OK": false, "-ERR": false,
	"RS+": false, "RS-": false, "LS+": false, "LS-": false, "SUB": false, "UNSUB": false,
	"RMSG": true, "HMSG": true, "LMSG": true, "MSG": true, "PUB": true, "HPUB": true}

// copyRouteProto copies src to dst op by op (flushing whenever src has
// nothing more buffered, so latency is the copy's), rewriting INFO lines.
func copyRouteProto(dst io.Writer, src io.Reader, advertised map[int]int) error {
	br := bufio.NewReaderSize(src, 1<<20)
	bw := bufio.NewWriterSize(dst, 64<<10)
	raw := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err := io.Copy(dst, br)
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if _, werr := bw.Write(line); werr != nil {
				return werr
			}
			if err == bufio.ErrBufferFull {
				return raw()
			}
			_ = bw.Flush()
			return err
		}
		fields := strings.Fields(string(line))
		payload, known := false, false
		if len(fields) > 0 {
			payload, known = routeOps[strings.ToUpper(fields[0])]
		}
		switch {
		case !known:
			if _, err := bw.Write(line); err != nil {
				return err
			}
			return raw()
		case strings.EqualFold(fields[0], "INFO"):
			if _, err := bw.Write(rewriteInfo(line, advertised)); err != nil {
				return err
			}
		case payload:
			size, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
			if err != nil || size < 0 {
				if _, err := bw.Write(line); err != nil {
					return err
				}
				return raw()
			}
			if _, err := bw.Write(line); err != nil {
				return err
			}
			if _, err := io.CopyN(bw, br, size+2); err != nil { // the payload and its CRLF
				_ = bw.Flush()
				return err
			}
		default:
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// rewriteInfo replaces a node's real route address in an INFO line
// ("port", and "ip": nats-route://host:port/) with the one advertised
// maps it to; other lines come back unchanged.
func rewriteInfo(line []byte, advertised map[int]int) []byte {
	body := strings.TrimSpace(string(line))[len("INFO"):]
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var info map[string]any
	if err := dec.Decode(&info); err != nil {
		return line
	}
	num, ok := info["port"].(json.Number)
	if !ok {
		return line
	}
	port, err := strconv.Atoi(num.String())
	if err != nil {
		return line
	}
	to, ok := advertised[port]
	if !ok {
		return line
	}
	info["port"] = to
	if ip, ok := info["ip"].(string); ok && ip != "" {
		info["ip"] = "nats-route://127.0.0.1:" + strconv.Itoa(to) + "/"
	}
	out, err := json.Marshal(info)
	if err != nil {
		return line
	}
	return append(append([]byte("INFO "), out...), '\r', '\n')
}

func (l *routeLink) cut(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.isCut = on
	if on {
		for in, out := range l.conns {
			_, _ = in.Close(), out.Close()
		}
	}
}

// localPorts are the ports the link's live dialed connections come from.
func (l *routeLink) localPorts() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ps []int
	for _, out := range l.conns {
		if a, ok := out.LocalAddr().(*net.TCPAddr); ok {
			ps = append(ps, a.Port)
		}
	}
	return ps
}

// FreeAddr returns a loopback host:port that was free when asked.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildServer builds cmd/mcp-jupyter once per test binary and returns the
// binary's path. RemoveBuiltServer (from TestMain, after m.Run) deletes it.
func BuildServer(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "mcp-jupyter-testkit-bin-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "mcp-jupyter")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", built.bin, "github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build cmd/mcp-jupyter: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// RemoveBuiltServer deletes what BuildServer built (call it from TestMain
// after m.Run).
func RemoveBuiltServer() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
