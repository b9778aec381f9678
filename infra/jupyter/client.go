package jupyter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// ErrClosed is returned by a Client or Kernel used after Close.
var ErrClosed = errors.New("jupyter: closed")

// Channel names a kernel socket.
type Channel int

const (
	Shell Channel = iota
	Control
	Stdin
	IOPub
)

func (c Channel) String() string {
	switch c {
	case Shell:
		return "shell"
	case Control:
		return "control"
	case Stdin:
		return "stdin"
	case IOPub:
		return "iopub"
	}
	return fmt.Sprintf("channel(%d)", int(c))
}

// ClientOptions tunes a Client. The zero value gives the defaults.
type ClientOptions struct {
	// Logger receives one line per kind of dropped message and socket loss.
	// Default: discard.
	Logger *slog.Logger
	// Session is the session id put in every header and used as the ZeroMQ
	// identity of the shell and stdin sockets (the kernel routes
	// input_request by it). Default: a fresh UUID.
	Session string
	// Username for headers. Default "mcp-jupyter".
	Username string
	// MaxQueueBytes and MaxQueueMessages bound the receive queue. Beyond
	// them the IOPub reader waits for the consumer (back-pressure: the
	// kernel's PUB socket queues meanwhile); nothing is dropped until
	// Close. Defaults: 4 MiB and 200,000 messages.
	MaxQueueBytes    int64
	MaxQueueMessages int
	// HeartbeatInterval between pings (default 1 s), HeartbeatTimeout for
	// each reply (default 1 s) and HeartbeatMisses, the consecutive misses
	// that declare the kernel lost (default 2).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	HeartbeatMisses   int
	// SendTimeout bounds a single send on a socket whose peer stopped
	// reading (default 30 s).
	SendTimeout time.Duration
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Session == "" {
		o.Session = NewID()
	}
	if o.Username == "" {
		o.Username = "mcp-jupyter"
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = 4 << 20
	}
	if o.MaxQueueMessages <= 0 {
		o.MaxQueueMessages = 200_000
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = time.Second
	}
	if o.HeartbeatMisses <= 0 {
		o.HeartbeatMisses = 2
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	return o
}

// Stats counts what a Client received and discarded.
type Stats struct {
	Received uint64 // messages read from the sockets (some may then be dropped below)
	Dropped  uint64 // IOPub messages dropped because the client closed while they waited
	Waited   uint64 // IOPub messages that waited for room in the queue (back-pressure)
	// QueuePeakBytes and QueuePeakMessages are the most the receive queue
	// held (MaxQueueBytes may be passed by one message larger than it).
	QueuePeakBytes    int64
	QueuePeakMessages int
	BadSignature      uint64 // messages dropped because their HMAC did not match
	Malformed         uint64 // messages dropped because they could not be decoded
}

// Client is a connection to one kernel: shell, control and stdin DEALER
// sockets, an IOPub SUB socket and a heartbeat DEALER socket.
//
// Each socket has one reader goroutine owned by the Client (zmq4's Recv
// cannot time out or be cancelled). Readers never block on the consumer:
// they append to an in-memory queue and a pump goroutine feeds Messages.
// Close stops and waits for all of them.
//
// Send and Stats are safe for concurrent use. Messages should have a single
// consumer.
type Client struct {
	info    ConnectionInfo
	opts    ClientOptions
	log     *slog.Logger
	sockets [4]zmq4.Socket // indexed by Channel
	hb      zmq4.Socket
	cancels []context.CancelFunc // socket contexts, cancelled after Close
	sendMu  [3]sync.Mutex        // guards signers[ch] and sends on sockets[ch]
	signers [3]*Signer
	// readSigner verifies received messages; only the pump uses it.
	readSigner *Signer

	queue  *recvQueue
	out    chan Received
	hbRecv chan []byte
	hbLost chan struct{}
	lost   sync.Once

	stats struct {
		received, badSignature, malformed atomic.Uint64
	}
	logged sync.Map // kinds of drops already logged

	closing   atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Dial connects to the kernel described by info. It retries until every
// socket is connected or ctx ends (a kernel can take seconds to bind its
// ports). It does not wait for the kernel to answer: call WaitReady.
func Dial(ctx context.Context, info ConnectionInfo, opts ClientOptions) (*Client, error) {
	opts = opts.withDefaults()
	c := &Client{
		info:   info,
		opts:   opts,
		log:    opts.Logger.With("kernel_ports", info.ShellPort),
		queue:  newRecvQueue(opts.MaxQueueBytes, opts.MaxQueueMessages),
		out:    make(chan Received),
		hbRecv: make(chan []byte, 16),
		hbLost: make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.readSigner = NewSigner(info.Key)
	for i := range c.signers {
		c.signers[i] = NewSigner(info.Key)
	}
	id := zmq4.SocketIdentity(opts.Session)
	specs := []struct {
		ch   Channel
		port int
		new  func(context.Context, ...zmq4.Option) zmq4.Socket
		id   bool
	}{
		{Shell, info.ShellPort, zmq4.NewDealer, true},
		{Control, info.ControlPort, zmq4.NewDealer, false},
		{Stdin, info.StdinPort, zmq4.NewDealer, true},
		{IOPub, info.IOPubPort, zmq4.NewSub, false},
	}
	for _, s := range specs {
		zopts := []zmq4.Option{zmq4.WithDialerMaxRetries(-1), zmq4.WithTimeout(opts.SendTimeout)}
		if s.id {
			zopts = append(zopts, zmq4.WithID(id))
		}
		sock, cancel, err := dialSocket(ctx, s.new, info.endpoint(s.port), s.ch == IOPub, zopts...)
		if err != nil {
			c.closeSockets()
			return nil, fmt.Errorf("dial %s: %w", s.ch, err)
		}
		c.sockets[s.ch] = sock
		c.cancels = append(c.cancels, cancel)
	}
	hb, cancel, err := dialSocket(ctx, zmq4.NewDealer, info.endpoint(info.HBPort), false,
		zmq4.WithDialerMaxRetries(-1), zmq4.WithTimeout(opts.SendTimeout))
	if err != nil {
		c.closeSockets()
		return nil, fmt.Errorf("dial heartbeat: %w", err)
	}
	c.hb = hb
	c.cancels = append(c.cancels, cancel)

	for _, s := range specs {
		c.wg.Add(1)
		go c.read(s.ch, c.sockets[s.ch])
	}
	c.wg.Add(3)
	go c.readHeartbeat()
	go c.heartbeat()
	go c.pump()
	return c, nil
}

// dialSocket creates a socket and dials addr with unlimited retries bounded
// by ctx. zmq4 derives the dial's lifetime from the socket's context, so ctx
// cancels that context while the dial runs.
func dialSocket(ctx context.Context, newSock func(context.Context, ...zmq4.Option) zmq4.Socket,
	addr string, subscribe bool, opts ...zmq4.Option) (zmq4.Socket, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(context.Background())
	sock := newSock(sctx, opts...)
	if subscribe {
		// NB: zmq4 requires a string here, not []byte.
		if err := sock.SetOption(zmq4.OptionSubscribe, ""); err != nil {
			cancel()
			_ = sock.Close()
			return nil, nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, cancel)
	err := sock.Dial(addr)
	stop()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		_ = sock.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("connect %s: %w", addr, ctx.Err())
		}
		return nil, nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	return sock, cancel, nil
}

// Session returns the session id used in headers.
func (c *Client) Session() string { return c.opts.Session }

// Info returns the connection info the client dialled.
func (c *Client) Info() ConnectionInfo { return c.info }

// Messages delivers every decoded, correctly signed message from the shell,
// control, stdin and IOPub sockets, in arrival order per socket, and gap
// markers for IOPub messages dropped over the queue limits. It is closed
// when Close returns.
func (c *Client) Messages() <-chan Received { return c.out }

// HeartbeatLost is closed when the kernel is considered dead: the heartbeat
// missed HeartbeatMisses consecutive replies, or the kernel closed the
// heartbeat connection (its process exited).
func (c *Client) HeartbeatLost() <-chan struct{} { return c.hbLost }

// Stats returns counters of received and discarded messages.
func (c *Client) Stats() Stats {
	c.queue.mu.Lock()
	dropped, waited, peakBytes, peakMsgs := c.queue.dropped, c.queue.waited, c.queue.peakBytes, c.queue.peakMsgs
	c.queue.mu.Unlock()
	return Stats{
		Received:          c.stats.received.Load(),
		Dropped:           dropped,
		Waited:            waited,
		QueuePeakBytes:    peakBytes,
		QueuePeakMessages: peakMsgs,
		BadSignature:      c.stats.badSignature.Load(),
		Malformed:         c.stats.malformed.Load(),
	}
}

// SendOption adjusts one message built by Send.
type SendOption func(*Message)

// WithParent sets the parent header (e.g. input_reply answers input_request).
func WithParent(h Header) SendOption { return func(m *Message) { m.Parent = h } }

// WithMetadata sets the metadata object.
func WithMetadata(md json.RawMessage) SendOption { return func(m *Message) { m.Metadata = md } }

// WithBuffers attaches binary buffers.
func WithBuffers(b ...[]byte) SendOption { return func(m *Message) { m.Buffers = b } }

// Send signs and sends a message of msgType on ch (Shell, Control or Stdin)
// and returns its header; match replies and IOPub output on
// Parent.MsgID == returned MsgID. content may be any JSON-marshalable value,
// json.RawMessage or nil ({}).
//
// A nil error means the message was queued, not that the kernel got it:
// zmq4 drops messages to a dead peer silently.
func (c *Client) Send(ch Channel, msgType string, content any, opts ...SendOption) (Header, error) {
	if ch < Shell || ch > Stdin {
		return Header{}, fmt.Errorf("send %s: cannot send on %s", msgType, ch)
	}
	if c.closing.Load() {
		return Header{}, ErrClosed
	}
	var raw json.RawMessage
	switch v := content.(type) {
	case nil:
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return Header{}, fmt.Errorf("encode %s content: %w", msgType, err)
		}
		raw = b
	}
	m := Message{Header: NewHeader(c.opts.Session, c.opts.Username, msgType), Content: raw}
	for _, o := range opts {
		o(&m)
	}
	c.sendMu[ch].Lock()
	defer c.sendMu[ch].Unlock()
	frames, err := c.signers[ch].Encode(m)
	if err != nil {
		return Header{}, fmt.Errorf("encode %s: %w", msgType, err)
	}
	if err := c.sockets[ch].Send(zmq4.NewMsgFrom(frames...)); err != nil {
		if c.closing.Load() {
			return Header{}, ErrClosed
		}
		return Header{}, fmt.Errorf("send %s on %s: %w", msgType, ch, err)
	}
	return m.Header, nil
}

// read is the reader goroutine of one socket. It keeps calling Recv until
// Recv fails: a zmq4 socket closed with unread messages leaks a goroutine.
func (c *Client) read(ch Channel, sock zmq4.Socket) {
	defer c.wg.Done()
	for {
		zm, err := sock.Recv()
		if err != nil {
			if !c.closing.Load() {
				// zmq4 does not reconnect: this socket is finished.
				c.logOnce("recv-"+ch.String(), "kernel socket closed", "channel", ch.String(), "err", err)
			}
			return
		}
		// NB: only queue here. Verifying and decoding happen in the pump, so
		// that this reader keeps up with a kernel flooding IOPub even when
		// CPU is scarce. When the queue is full the IOPub reader waits
		// (back-pressure, bounded memory); the kernel's PUB socket queues
		// meanwhile, and what it drops past its high-water mark shows as
		// holes in its message counters (actors/kernel).
		c.stats.received.Add(1)
		c.queue.push(Received{Channel: ch, frames: zm.Frames}, c.done)
	}
}

// decode verifies and decodes a queued message; false means it was dropped
// (counted and logged once).
func (c *Client) decode(r *Received) bool {
	if r.frames == nil {
		return true // a gap marker
	}
	m, err := c.readSigner.Decode(r.frames)
	r.frames = nil
	if err != nil {
		kind := "malformed"
		if errors.Is(err, ErrBadSignature) {
			kind = "bad-signature"
			c.stats.badSignature.Add(1)
		} else {
			c.stats.malformed.Add(1)
		}
		c.logOnce(kind+"-"+r.Channel.String(), "dropped undecodable message", "channel", r.Channel.String(), "err", err)
		return false
	}
	r.Msg = m
	return true
}

func (c *Client) logOnce(kind, msg string, args ...any) {
	if _, seen := c.logged.LoadOrStore(kind, true); !seen {
		c.log.Warn(msg, args...)
	}
}

// pump moves items from the queue to Messages until Close.
func (c *Client) pump() {
	defer c.wg.Done()
	defer close(c.out)
	for {
		r, ok := c.queue.pop()
		if !ok {
			select {
			case <-c.queue.notify:
				continue
			case <-c.done:
				return
			}
		}
		if !c.decode(&r) {
			continue
		}
		select {
		case c.out <- r:
		case <-c.done:
			return
		}
	}
}

// Close closes the sockets and waits for every goroutine of the client. It
// does not stop the kernel. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		close(c.done)
		c.closeErr = c.closeSockets()
		c.wg.Wait()
	})
	return c.closeErr
}

func (c *Client) closeSockets() error {
	var first error
	for _, s := range append(c.sockets[:], c.hb) {
		if s == nil {
			continue
		}
		if err := s.Close(); err != nil && first == nil && !errors.Is(err, net.ErrClosed) {
			first = fmt.Errorf("close socket: %w", err)
		}
	}
	for _, cancel := range c.cancels {
		cancel()
	}
	return first
}
