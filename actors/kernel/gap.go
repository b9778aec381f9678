package kernel

import (
	"math/bits"
	"strconv"
	"strings"
)

// maxTrackedCounters bounds the message counters a connection's gap tracker
// remembers (one bit each: 1 MiB). An execution longer than that is no
// longer checked for gaps and says so ("an unknown number").
const maxTrackedCounters = 8 << 20

// counterTracker finds the messages a kernel sent that never reached us.
//
// jupyter_client's Session (which ipykernel uses for every socket) names
// each message "<session>_<pid>_<n>" with n counting every message it
// builds. The kernel's PUB socket drops silently past its high-water mark,
// and drops everything while no server is subscribed: those messages leave
// holes in n. The tracker remembers which n arrived (any channel) from the
// first one it saw; an execution's gap is the holes between its first and
// last message. Pure data: Step owns it through OutputState.
//
// NB: replies the kernel sends to other clients of its shell or control
// sockets also use n; a foreign client talking to the kernel during an
// execution makes its count too high by its replies. The server is the
// kernel's only client unless an operator connects one by hand.
type counterTracker struct {
	prefix   string   // "<session>_<pid>_" of the kernel's messages; "" until the first
	base     uint64   // the counter of bit 0 (a multiple of 64)
	words    []uint64 // bit i: counter base+i arrived
	overflow bool     // more than maxTrackedCounters: gaps are no longer counted
}

// parseCounter splits a Session msg_id into its prefix and counter.
func parseCounter(msgID string) (string, uint64, bool) {
	i := strings.LastIndexByte(msgID, '_')
	if i <= 0 || i == len(msgID)-1 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(msgID[i+1:], 10, 64)
	if err != nil || strings.Count(msgID[:i], "_") < 1 {
		return "", 0, false
	}
	return msgID[:i+1], n, true
}

// see records that msgID arrived and returns its counter (ok false when
// msgID is not a counted id of this kernel's session).
func (t *counterTracker) see(msgID string) (uint64, bool) {
	prefix, n, ok := parseCounter(msgID)
	if !ok {
		return 0, false
	}
	if t.prefix == "" {
		t.prefix, t.base = prefix, n&^63
	}
	if prefix != t.prefix {
		return n, false
	}
	if n < t.base {
		// NB: messages of different sockets arrive out of counter order:
		// reach back (whole words, within the bound) rather than lose it.
		grow := (t.base - n&^63) / 64
		if (uint64(len(t.words))+grow)*64 > maxTrackedCounters {
			return n, true
		}
		t.words = append(make([]uint64, grow, grow+uint64(len(t.words))), t.words...)
		t.base -= grow * 64
	}
	i := n - t.base
	if i >= maxTrackedCounters {
		t.overflow = true
		return n, true
	}
	for uint64(len(t.words))*64 <= i {
		t.words = append(t.words, 0)
	}
	t.words[i/64] |= 1 << (i % 64)
	return n, true
}

// missing counts the counters in [from, to] that never arrived; known is
// false when the tracker cannot tell (overflowed, or from precedes what it
// remembers: the part before its base is counted as missing whole).
func (t *counterTracker) missing(from, to uint64) (n int, known bool) {
	if t.overflow || to < from {
		return 0, !t.overflow
	}
	if from < t.base {
		n += int(min(to+1, t.base) - from)
		from = t.base
	}
	for c := from; c <= to; {
		i := c - t.base
		w := i / 64
		if w >= uint64(len(t.words)) {
			n += int(to - c + 1)
			break
		}
		// the bits of this word within [c, to]
		lo, hi := i%64, min(63, i%64+(to-c))
		mask := ^uint64(0) >> (63 - hi) &^ (1<<lo - 1)
		n += bits.OnesCount64(mask &^ t.words[w])
		c += hi - lo + 1
	}
	return n, true
}

// has reports whether counter n arrived (false when it is not tracked).
func (t *counterTracker) has(n uint64) bool {
	if n < t.base {
		return false
	}
	i := n - t.base
	return i/64 < uint64(len(t.words)) && t.words[i/64]&(1<<(i%64)) != 0
}

// forget lets go of every counter below from: nothing in flight needs them.
func (t *counterTracker) forget(from uint64) {
	if from <= t.base || t.prefix == "" {
		return
	}
	shift := from - t.base
	if shift/64 >= uint64(len(t.words)) {
		t.words, t.base, t.overflow = t.words[:0], from&^63, false
		return
	}
	drop := shift / 64 // whole words only: the base stays 64-aligned to it
	t.words = append(t.words[:0], t.words[drop:]...)
	t.base += drop * 64
}
