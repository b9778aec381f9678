package projections

// Arena copies small byte slices into shared chunks: one allocation per
// chunk instead of one per copy, which is most of what keeping a raw
// payload costs in a replay. A chunk stays in memory while any copy in it
// is held: give each run of copies that is dropped together (a kernel's
// ring, an execution's outputs) its own Arena, and memory held stays within
// one chunk of what the copies need. The zero value is ready; not safe for
// concurrent use.
type Arena struct {
	buf []byte
}

// arenaChunk is the size of one chunk; a copy larger than a quarter of it
// gets an allocation of its own.
const arenaChunk = 8 << 10

// Copy returns a copy of b that the caller may keep; nil when b is empty.
// NB: the copy's capacity is its length: appending to it never writes into
// a neighbour.
func (a *Arena) Copy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaChunk/4 {
		return append([]byte(nil), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	at := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[at:len(a.buf):len(a.buf)]
}

// Release forgets the current chunk: later copies start a new one (the
// copies already made stay valid).
func (a *Arena) Release() { a.buf = nil }
