package kernel

import "context"

// pumpBatch carries what the pump read from a connection to the kernel
// actor. The actor closes ack once it has decided the batch (before the
// append), so the pump may gather the next batch while the log writes this
// one; at most one batch waits in the mailbox.
type pumpBatch struct {
	conn Conn
	msgs []Incoming
	ack  chan struct{}
}

// pumpDied tells the actor that the connection's kernel died (or was
// stopped), with the messages it had sent that were not yet forwarded.
type pumpDied struct {
	conn  Conn
	rest  []Incoming
	death Death
}

// pump reads one connection's messages and forwards them, in batches, to
// the kernel actor. It never appends and decides nothing: what a message
// means is Step's business, and the actor is the only writer of the
// streams. It is owned by the kernel actor: started with the connection,
// stopped by ctx (the actor cancels it before closing the connection), and
// done closes when it has returned.
//
// NB: the connection's reader queues in memory, bounded in bytes, and makes
// the kernel wait when it is full (infra/jupyter); the pump waits for the
// actor's ack of each batch, so the memory between the socket and the log
// stays bounded by that queue plus two batches of maxPumpBatchBytes (1 MiB).
type pump struct {
	conn Conn
	send func(any) // delivers pumpBatch / pumpDied to the actor
	done chan struct{}
	// left is what the pump had read and not forwarded when ctx ended;
	// read it after done closes.
	left []Incoming
}

func startPump(ctx context.Context, conn Conn, send func(any)) *pump {
	p := &pump{conn: conn, send: send, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

func (p *pump) run(ctx context.Context) {
	defer close(p.done)
	msgs := p.conn.Messages()
	dead := p.conn.Dead()
	var carry []Incoming // a message read that did not fit the last batch
	for {
		// NB: a fresh slice per batch: the actor's drafts may keep
		// references into it until they are appended.
		batch := append(make([]Incoming, 0, 16), carry...)
		carry = nil
		if len(batch) == 0 {
			select {
			case m, ok := <-msgs:
				if !ok {
					return // connection closed by the actor
				}
				batch = append(batch, m)
			case <-dead:
				p.send(pumpDied{conn: p.conn, rest: drain(msgs), death: p.conn.Death()})
				return
			case <-ctx.Done():
				return
			}
		}
		size := len(batch[0].Content)
	gather:
		for len(batch) < maxPumpBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break gather
				}
				if size+len(m.Content) > maxPumpBatchBytes {
					carry = append(carry, m) // NB: the next batch starts with it
					break gather
				}
				batch = append(batch, m)
				size += len(m.Content)
			default:
				break gather
			}
		}
		ack := make(chan struct{})
		p.send(pumpBatch{conn: p.conn, msgs: batch, ack: ack})
		select {
		case <-ack:
		case <-ctx.Done():
			p.left = carry // NB: the batch is the actor's; the carried message is not
			return
		}
	}
}

// drain returns what is already queued on msgs, without waiting.
func drain(msgs <-chan Incoming) []Incoming {
	var rest []Incoming
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return rest
			}
			rest = append(rest, m)
		default:
			return rest
		}
	}
}
