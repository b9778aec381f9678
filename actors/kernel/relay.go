package kernel

import (
	"slices"
	"strings"
)

// Relays are the relayed requests of frontends (Relay) waiting for the
// kernel's reply on the current connection: by the server's msg_id, where
// to deliver what the kernel sends with that parent on shell or control.
// At most MaxRelays; a new connection (restart, re-attach) starts with
// none, and a death forgets them all (Lose).
//
// NB: pure data. Holding a channel is not sending on it: the actor
// performs DeliverReply effects (actor.go).
type Relays struct {
	to    map[string]chan<- Reply
	order []string // msg ids, oldest first
}

// Len is how many relayed requests wait for their reply.
func (r Relays) Len() int { return len(r.order) }

// Waiting reports whether msgID is a relayed request waiting for its reply.
func (r Relays) Waiting(msgID string) bool {
	_, ok := r.to[msgID]
	return ok
}

// ExpectRelay registers a relayed request before it is sent, so that the
// kernel's reply to msgID is delivered to replies. Beyond MaxRelays the
// oldest waiting request is forgotten (its reply, if it still comes, is
// dropped); forgotten says how many were. Pure.
func ExpectRelay(s OutputState, msgID string, replies chan<- Reply) (_ OutputState, forgotten int) {
	if s.Relays.to == nil {
		s.Relays.to = map[string]chan<- Reply{}
	}
	for len(s.Relays.order) >= MaxRelays {
		delete(s.Relays.to, s.Relays.order[0])
		s.Relays.order = slices.Delete(s.Relays.order, 0, 1)
		forgotten++
	}
	s.Relays.to[msgID] = replies
	s.Relays.order = append(s.Relays.order, msgID)
	return s, forgotten
}

// ForgetRelay withdraws a relayed request (it could not be sent, or its
// reply came). Pure.
func ForgetRelay(s OutputState, msgID string) OutputState {
	if _, ok := s.Relays.to[msgID]; !ok {
		return s
	}
	delete(s.Relays.to, msgID)
	s.Relays.order = slices.DeleteFunc(s.Relays.order, func(id string) bool { return id == msgID })
	return s
}

// forgetRelays forgets every relayed request (the connection ended).
func forgetRelays(s OutputState) OutputState {
	s.Relays = Relays{}
	return s
}

// DeliverReply is the effect of a kernel's message to a relayed request:
// hand Msg to Replies without blocking (a full channel loses it).
type DeliverReply struct {
	Replies chan<- Reply
	Msg     Reply
}

func (DeliverReply) effect() {}

// relayReply decides a shell or control message whose parent is a relayed
// request: delivered to its asker, and the request forgotten once its
// *_reply came.
func relayReply(s OutputState, m Incoming, effs []Effect) (OutputState, []Effect) {
	to := s.Relays.to[m.ParentMsgID]
	effs = append(effs, DeliverReply{Replies: to, Msg: m})
	if strings.HasSuffix(m.MsgType, "_reply") {
		s = ForgetRelay(s, m.ParentMsgID)
	}
	return s, effs
}
