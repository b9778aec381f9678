package jupyter

import (
	"bytes"
	"strconv"
	"time"

	"github.com/go-zeromq/zmq4"
)

// The heartbeat uses a DEALER socket, not the REQ socket jupyter_client uses.
// ipykernel's heartbeat is a ROUTER echoing every frame back to its sender,
// so a DEALER works unchanged, and it has no send/receive lockstep: after a
// missed reply a REQ socket refuses to send again and must be rebuilt, while
// a DEALER just sends the next ping. Each ping carries a sequence number so
// a late echo is never mistaken for a fresh one.

// readHeartbeat is the reader goroutine of the heartbeat socket.
func (c *Client) readHeartbeat() {
	defer c.wg.Done()
	for {
		zm, err := c.hb.Recv()
		if err != nil {
			if !c.closing.Load() {
				// The kernel closed the connection: its process is gone
				// (zmq4 does not reconnect).
				c.logOnce("recv-heartbeat", "kernel heartbeat connection closed", "err", err)
				c.markLost()
			}
			return
		}
		if len(zm.Frames) == 0 {
			continue
		}
		select {
		case c.hbRecv <- zm.Frames[len(zm.Frames)-1]:
		default: // the heartbeat loop is behind; it only needs the latest echo
		}
	}
}

func (c *Client) markLost() {
	c.lost.Do(func() { close(c.hbLost) })
}

// heartbeat pings every HeartbeatInterval and declares the kernel lost after
// HeartbeatMisses consecutive pings without an echo within HeartbeatTimeout.
// After a miss the next ping goes out at once, so death is reported within
// about HeartbeatInterval + HeartbeatMisses*HeartbeatTimeout.
func (c *Client) heartbeat() {
	defer c.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	misses := 0
	for seq := uint64(1); ; seq++ {
		ping := []byte("ping " + strconv.FormatUint(seq, 10))
		if err := c.hb.Send(zmq4.NewMsg(ping)); err != nil && c.closing.Load() {
			return
		}
		timer.Reset(c.opts.HeartbeatTimeout)
		answered := false
	wait:
		for {
			select {
			case echo := <-c.hbRecv:
				if bytes.Equal(echo, ping) {
					answered = true
					break wait
				}
			case <-timer.C:
				break wait
			case <-c.done:
				return
			case <-c.hbLost:
				return
			}
		}
		if !answered {
			misses++
			if misses >= c.opts.HeartbeatMisses {
				c.logOnce("heartbeat-lost", "kernel heartbeat lost", "misses", misses)
				c.markLost()
				return
			}
			continue
		}
		misses = 0
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(c.opts.HeartbeatInterval)
		select {
		case <-timer.C:
		case <-c.done:
			return
		case <-c.hbLost:
			return
		}
	}
}
