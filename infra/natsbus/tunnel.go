package natsbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// A tunnel is a byte stream between two nodes over NATS, for the HTTP
// requests one node forwards to a kernel's owner (DialNode on the entry
// node, ListenTunnels served by the owner's HTTP server). Each direction
// is one subject, mcpjupyter.tunnel.<id>.up (dialer to listener) and
// .down; every frame carries its sequence number, and a receiver that sees
// one missing (NATS dropped it: a slow consumer, a route that broke)
// closes the tunnel with an error rather than pass on a corrupt stream.
// A credit window bounds the bytes in flight: a writer waits once
// TunnelWindow bytes are unacknowledged, so a reader's buffer never holds
// more. Both ends ping every TunnelKeepalive; one that hears nothing for
// TunnelIdle closes (the other node died or was cut off).
const (
	TunnelWindow    = 1 << 20
	tunnelFrame     = 64 << 10
	TunnelKeepalive = 5 * time.Second
	TunnelIdle      = 3 * TunnelKeepalive
	// MaxTunnels bounds the tunnels one node has open (both ends): each
	// may buffer TunnelWindow bytes, so 256 MiB at most. MaxTunnelsPerNode
	// bounds those with one other node, so that one entry node (an agent
	// opening WebSockets through it) cannot take them all.
	// tunnelBacklog bounds the dialled ones not yet accepted.
	MaxTunnels        = 256
	MaxTunnelsPerNode = MaxTunnels / 2
	tunnelBacklog     = 128
)

// keepaliveEvery and idleAfter are TunnelKeepalive and TunnelIdle (tests
// shorten them).
var keepaliveEvery, idleAfter = TunnelKeepalive, TunnelIdle

// Frame kinds: the first byte of every tunnel message.
const (
	frameData   = 'D' // seq u64, payload
	frameFin    = 'F' // seq u64: no more data after seq-1
	frameCredit = 'A' // total bytes the receiver consumed, u64
	framePing   = 'P'
)

// DialSubject is the subject node accepts tunnels on.
func DialSubject(node string) string { return "mcpjupyter.node." + node + ".dial" }

func tunnelSubject(id, dir string) string { return "mcpjupyter.tunnel." + id + "." + dir }

// ErrTunnelGap: a frame of the stream went missing; the tunnel is closed.
var ErrTunnelGap = errors.New("tunnel: a frame went missing (NATS dropped it); the stream is closed")

// errPeerClosed: the other end closed the tunnel; nothing more can be sent.
var errPeerClosed = errors.New("tunnel: closed by the other end")

// tunnelAddr is a tunnel end's address: its node.
type tunnelAddr struct{ node, id string }

func (a tunnelAddr) Network() string { return "nats-tunnel" }
func (a tunnelAddr) String() string  { return a.node + "/" + a.id }

// tunnels is a router's open tunnels (closed with it) and its bound.
type tunnels struct {
	r      *Router
	mu     sync.Mutex
	open   map[*tunnelConn]struct{}
	byNode map[string]int // open tunnels per remote node
}

func newTunnels(r *Router) *tunnels {
	return &tunnels{r: r, open: map[*tunnelConn]struct{}{}, byNode: map[string]int{}}
}

func (t *tunnels) add(c *tunnelConn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		return errors.New("the router is closed")
	}
	if len(t.open) >= MaxTunnels {
		return fmt.Errorf("node %s has %d tunnels open already (MaxTunnels); retry once some are closed", t.r.node, MaxTunnels)
	}
	if n := t.byNode[c.remote.node]; n >= MaxTunnelsPerNode {
		return fmt.Errorf("node %s has %d tunnels open with node %s already (MaxTunnelsPerNode); retry once some are closed", t.r.node, n, c.remote.node)
	}
	t.open[c] = struct{}{}
	t.byNode[c.remote.node]++
	return nil
}

func (t *tunnels) remove(c *tunnelConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.open[c]; !ok {
		return
	}
	delete(t.open, c)
	if t.byNode[c.remote.node]--; t.byNode[c.remote.node] <= 0 {
		delete(t.byNode, c.remote.node)
	}
}

func (t *tunnels) closeAll() {
	t.mu.Lock()
	open := t.open
	t.open = nil
	t.mu.Unlock()
	for c := range open {
		_ = c.Close()
	}
}

// tunnelConn is one end of a tunnel: a net.Conn.
type tunnelConn struct {
	r             *Router
	out           string
	local, remote tunnelAddr
	sub           *nats.Subscription

	wmu sync.Mutex // one Write at a time: sequence numbers go out in order

	mu        sync.Mutex
	buf       bytes.Buffer // received, not yet read; ≤ TunnelWindow
	rseq      uint64       // next expected frame
	wseq      uint64       // next frame sent
	consumed  uint64       // bytes Read returned
	acked     uint64       // consumed as last told to the peer
	sent      uint64       // bytes written
	peerAcked uint64       // the peer's consumed
	eof       bool         // the peer's FIN arrived
	err       error        // a gap, an overrun, the peer gone
	closed    bool
	lastHeard time.Time
	keep      *time.Timer
	done      chan struct{} // closed at Close
	readable  chan struct{} // cap 1: data, EOF or error arrived
	writable  chan struct{} // cap 1: credit, or the peer closed
	rdl, wdl  deadline
	closeOnce sync.Once
}

func (r *Router) newTunnelConn(id, in, out, remoteNode string) (*tunnelConn, error) {
	c := &tunnelConn{r: r, out: out, local: tunnelAddr{r.node, id}, remote: tunnelAddr{remoteNode, id},
		lastHeard: time.Now(), done: make(chan struct{}),
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1),
		rdl: deadline{cancel: make(chan struct{})}, wdl: deadline{cancel: make(chan struct{})}}
	if err := r.tunnels.add(c); err != nil {
		return nil, err
	}
	sub, err := r.nc.Subscribe(in, c.receive)
	if err != nil {
		r.tunnels.remove(c)
		return nil, fmt.Errorf("open tunnel %s: %w", id, err)
	}
	c.sub = sub
	c.mu.Lock()
	c.keep = time.AfterFunc(keepaliveEvery, c.keepalive)
	c.mu.Unlock()
	return c, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// receive is the subscription's callback (serial per tunnel).
func (c *tunnelConn) receive(m *nats.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.err != nil || len(m.Data) == 0 {
		return
	}
	c.lastHeard = time.Now()
	d := m.Data
	switch d[0] {
	case frameData, frameFin:
		if len(d) < 9 {
			c.failLocked(fmt.Errorf("tunnel %s: a frame of %d bytes is too short", c.local.id, len(d)))
			return
		}
		if seq := binary.BigEndian.Uint64(d[1:9]); seq != c.rseq {
			c.failLocked(fmt.Errorf("%w (expected frame %d, got %d)", ErrTunnelGap, c.rseq, seq))
			return
		}
		c.rseq++
		if d[0] == frameFin {
			c.eof = true
			signal(c.writable)
		} else {
			if c.buf.Len()+len(d)-9 > TunnelWindow {
				c.failLocked(fmt.Errorf("tunnel %s: the other end sent past the %d-byte window", c.local.id, TunnelWindow))
				return
			}
			c.buf.Write(d[9:])
		}
		signal(c.readable)
	case frameCredit:
		if len(d) == 9 {
			if v := binary.BigEndian.Uint64(d[1:9]); v > c.peerAcked {
				c.peerAcked = v
				signal(c.writable)
			}
		}
	case framePing:
	}
}

// failLocked ends the stream with err: readers and writers see it.
func (c *tunnelConn) failLocked(err error) {
	if c.err == nil {
		c.err = err
	}
	signal(c.readable)
	signal(c.writable)
}

// keepalive pings the other end and fails the tunnel when it has been
// silent for TunnelIdle.
func (c *tunnelConn) keepalive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.err != nil || c.eof {
		return
	}
	if silent := time.Since(c.lastHeard); silent > idleAfter {
		c.failLocked(fmt.Errorf("tunnel to node %s: nothing heard for %s (the node is down or cut off)", c.remote.node, silent.Round(time.Second)))
		return
	}
	_ = c.r.nc.Publish(c.out, []byte{framePing})
	c.keep.Reset(keepaliveEvery)
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	for {
		if isClosed(c.rdl.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if c.buf.Len() > 0 {
			n, _ := c.buf.Read(b)
			c.consumed += uint64(n)
			if c.consumed-c.acked >= TunnelWindow/4 || (c.buf.Len() == 0 && c.consumed-c.acked >= tunnelFrame) {
				c.acked = c.consumed
				var f [9]byte
				f[0] = frameCredit
				binary.BigEndian.PutUint64(f[1:], c.acked)
				_ = c.r.nc.Publish(c.out, f[:])
			}
			c.mu.Unlock()
			return n, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		if c.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		c.mu.Unlock()
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-c.readable:
		case <-c.rdl.wait():
		case <-c.done:
		}
	}
}

func (c *tunnelConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for {
		if isClosed(c.wdl.wait()) {
			return total, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return total, net.ErrClosed
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return total, err
		case c.eof:
			c.mu.Unlock()
			return total, errPeerClosed
		}
		if len(b) == 0 {
			c.mu.Unlock()
			return total, nil
		}
		avail := int(TunnelWindow - (c.sent - c.peerAcked))
		if avail <= 0 {
			c.mu.Unlock()
			select {
			case <-c.writable:
			case <-c.wdl.wait():
			case <-c.done:
			}
			continue
		}
		n := min(len(b), tunnelFrame, avail)
		f := make([]byte, 9+n)
		f[0] = frameData
		binary.BigEndian.PutUint64(f[1:9], c.wseq)
		copy(f[9:], b[:n])
		c.wseq++
		c.sent += uint64(n)
		c.mu.Unlock()
		if err := c.r.nc.Publish(c.out, f); err != nil {
			c.mu.Lock()
			c.failLocked(fmt.Errorf("tunnel to node %s: send: %w", c.remote.node, err))
			c.mu.Unlock()
			return total, err
		}
		total += n
		b = b[n:]
	}
}

// Close tells the other end (FIN after the last frame written) and frees
// the tunnel. Reads and writes in progress return net.ErrClosed.
func (c *tunnelConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.closed = true
		c.keep.Stop()
		peerGone := c.err != nil || c.eof
		close(c.done)
		c.mu.Unlock()
		c.wmu.Lock() // after the Write in progress (done woke it)
		if !peerGone {
			var f [9]byte
			f[0] = frameFin
			binary.BigEndian.PutUint64(f[1:], c.wseq)
			_ = c.r.nc.Publish(c.out, f[:])
		}
		c.wmu.Unlock()
		_ = c.sub.Unsubscribe()
		c.r.tunnels.remove(c)
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}

func (c *tunnelConn) LocalAddr() net.Addr  { return c.local }
func (c *tunnelConn) RemoteAddr() net.Addr { return c.remote }

func (c *tunnelConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}
func (c *tunnelConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *tunnelConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// DialNode opens a tunnel to node's HTTP server (its ListenTunnels). No
// node listening is a *NodeUnreachableError at once.
func (r *Router) DialNode(ctx context.Context, node string) (net.Conn, error) {
	id := newTunnelID()
	c, err := r.newTunnelConn(id, tunnelSubject(id, "down"), tunnelSubject(id, "up"), node)
	if err != nil {
		return nil, fmt.Errorf("dial node %s: %w", node, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	rep, err := r.nc.RequestWithContext(ctx, DialSubject(node), []byte(id+" "+r.node))
	if err != nil {
		c.abandon()
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return nil, &NodeUnreachableError{Node: node, Err: err}
		}
		return nil, fmt.Errorf("dial node %s: %w", node, err)
	}
	if msg := rep.Header.Get(hdrError); msg != "" {
		c.abandon()
		return nil, &RemoteError{Node: node, Msg: msg}
	}
	return c, nil
}

// abandon closes a tunnel the other end never opened: no FIN.
func (c *tunnelConn) abandon() {
	c.mu.Lock()
	c.err = errPeerClosed
	c.mu.Unlock()
	_ = c.Close()
}

func newTunnelID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // NB: crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}

func validTunnelID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// tunnelListener accepts the tunnels other nodes dial to this one.
type tunnelListener struct {
	r      *Router
	sub    *nats.Subscription
	accept chan *tunnelConn
	done   chan struct{}
	once   sync.Once
}

// ListenTunnels accepts tunnels dialled to this node: serve an http.Server
// on it. Closing the listener stops accepting; open tunnels stay until
// they close (or the router closes).
func (r *Router) ListenTunnels() (net.Listener, error) {
	l := &tunnelListener{r: r, accept: make(chan *tunnelConn, tunnelBacklog), done: make(chan struct{})}
	sub, err := r.nc.Subscribe(DialSubject(r.node), l.dialled)
	if err != nil {
		return nil, fmt.Errorf("listen for tunnels on %s: %w", DialSubject(r.node), err)
	}
	l.sub = sub
	if err := r.track(sub); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *tunnelListener) dialled(m *nats.Msg) {
	id, from, _ := strings.Cut(string(m.Data), " ")
	if !validTunnelID(id) || from == "" {
		l.r.replyError(m, "a dial request is a tunnel id (32 hex digits), a space and the dialling node")
		return
	}
	select {
	case <-l.done:
		l.r.replyError(m, fmt.Sprintf("node %s no longer accepts tunnels (shutting down)", l.r.node))
		return
	default:
	}
	// NB: subscribed before the reply: the dialler's first frame can only
	// follow the reply, over the same route, so none is lost.
	c, err := l.r.newTunnelConn(id, tunnelSubject(id, "up"), tunnelSubject(id, "down"), from)
	if err != nil {
		l.r.replyError(m, err.Error())
		return
	}
	select {
	case l.accept <- c:
	default:
		c.abandon()
		l.r.replyError(m, fmt.Sprintf("node %s has %d tunnels waiting to be accepted; retry", l.r.node, tunnelBacklog))
		return
	}
	if err := m.Respond(nil); err != nil {
		l.r.log.Warn("tunnel: accept reply not sent", "err", err)
	}
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tunnelListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.sub.Unsubscribe()
		for {
			select {
			case c := <-l.accept:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *tunnelListener) Addr() net.Addr { return tunnelAddr{l.r.node, "listen"} }

// deadline is a settable deadline whose wait channel closes when it
// passes (as net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
