package checkpointfile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Format version 2: a tag per chunk, the list of tags under the file's
// HMAC (see format.go for the layout). Saving computes each chunk's tag as
// the chunk arrives from the kernel (chunkWriter); loading checks the HMAC
// over header, tags and metadata first, then each chunk against its tag as
// it is read, so a load reads the file once and hands out only bytes that
// were checked (streamChunks).

const (
	tagSize = 16
	// entrySize is one chunk's entry in the tag list: the epoch it was
	// sealed in (u32) and its tag.
	entrySize = 4 + tagSize
	// maxChunks bounds the tag list a header may announce (16 TiB).
	maxChunks = 1 << 24
	// writebackEvery: while a save is written, the kernel is asked to start
	// writing back each this many bytes, so the fsync at the end finds
	// little left to do.
	writebackEvery = 8 << 20
)

// chunkCount is how many chunks a payload of n bytes has.
func chunkCount(n uint64) uint64 { return (n + chunkSize - 1) / chunkSize }

// chunkLen is the length of chunk i of a payload of n bytes.
func chunkLen(n, i uint64) int { return int(min(chunkSize, n-i*chunkSize)) }

// chunkSealer tags (and, encrypting, seals) the chunks of one version 2
// file. Its key is derived from the signing key and the file's random id,
// so a chunk of another file never verifies here; the nonce is the
// chunk's epoch and index, so a chunk moved to another place never
// verifies either. The epoch grows each time a save cuts back into chunks
// already sealed, so no nonce is ever used twice under one key.
type chunkSealer struct {
	aead  cipher.AEAD
	enc   bool
	nonce [12]byte
	entry [entrySize]byte
}

// NB: the label must not change.
const chunkKeyLabel = "mcp-jupyter checkpoint chunk aes-256-gcm v2"

func newChunkSealer(k Key, h Header) (*chunkSealer, error) {
	m := hmac.New(sha256.New, derive(k.Secret, chunkKeyLabel))
	m.Write(h.FileID[:])
	if h.Encrypted {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("make chunk cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("make chunk cipher: %w", err)
	}
	return &chunkSealer{aead: aead, enc: h.Encrypted}, nil
}

func (s *chunkSealer) setNonce(epoch uint32, i uint64) []byte {
	binary.BigEndian.PutUint32(s.nonce[:4], epoch)
	binary.BigEndian.PutUint64(s.nonce[4:], i)
	return s.nonce[:]
}

// seal tags chunk i in epoch (encrypting it in place when the file is
// encrypted; chunk must have tagSize spare capacity) and returns its
// entry: epoch u32 | tag.
func (s *chunkSealer) seal(epoch uint32, i uint64, chunk []byte) []byte {
	nonce := s.setNonce(epoch, i)
	binary.BigEndian.PutUint32(s.entry[:4], epoch)
	if s.enc {
		out := s.aead.Seal(chunk[:0], nonce, chunk, nil)
		copy(s.entry[4:], out[len(chunk):])
	} else {
		s.aead.Seal(s.entry[4:4], nonce, nil, chunk)
	}
	return s.entry[:]
}

// open checks chunk i against its entry (decrypting it in place when the
// file is encrypted; chunk must have tagSize spare capacity). Until it
// returns true, chunk holds bytes nobody may use.
func (s *chunkSealer) open(i uint64, chunk, entry []byte) bool {
	nonce := s.setNonce(binary.BigEndian.Uint32(entry[:4]), i)
	tag := entry[4:entrySize]
	if s.enc {
		ct := append(chunk, tag...)
		_, err := s.aead.Open(chunk[:0], nonce, ct, nil)
		return err == nil
	}
	var got [tagSize]byte
	s.aead.Seal(got[:0], nonce, nil, chunk)
	return subtle.ConstantTimeCompare(got[:], tag) == 1
}

// chunkWriter writes a payload as version 2 chunks after a header already
// in f, tagging each chunk as it completes: the hashing happens while the
// kernel is still pickling, not after. Not safe for concurrent use.
type chunkWriter struct {
	f       *os.File
	base    int64 // file offset of chunk 0: the header's length
	s       *chunkSealer
	buf     []byte // the chunk being filled; capacity chunkSize+tagSize
	tags    []byte // entries of the chunks written
	epoch   uint32 // grows with each cut back into written chunks
	done    uint64 // payload bytes in the chunks written
	started int64  // file offset up to which writeback was started
	// limit, when set, bounds the file: a chunk that would end past it
	// is not written (see Stage).
	limit *TooLargeError
}

func newChunkWriter(f *os.File, base int64, s *chunkSealer) *chunkWriter {
	return &chunkWriter{f: f, base: base, s: s, buf: make([]byte, 0, chunkSize+tagSize), started: base}
}

// Write appends p to the payload.
func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):chunkSize], p)
		w.buf, p = w.buf[:len(w.buf)+k], p[k:]
		if len(w.buf) == chunkSize {
			if err := w.writeChunk(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// fill returns the free part of the chunk being filled, for a reader to
// fill in place; commit(k) then appends the k bytes read.
func (w *chunkWriter) fill() []byte { return w.buf[len(w.buf):chunkSize] }

func (w *chunkWriter) commit(k int) error {
	w.buf = w.buf[:len(w.buf)+k]
	if len(w.buf) == chunkSize {
		return w.writeChunk()
	}
	return nil
}

func (w *chunkWriter) writeChunk() error {
	i := w.done / chunkSize
	n := len(w.buf)
	at := w.base + int64(w.done)
	if w.limit != nil && at+int64(n) > w.limit.Limit {
		return w.limit
	}
	w.tags = append(w.tags, w.s.seal(w.epoch, i, w.buf)...)
	if _, err := w.f.WriteAt(w.buf[:n], at); err != nil {
		return fmt.Errorf("write checkpoint chunk %d: %w", i, err)
	}
	w.done += uint64(n)
	w.buf = w.buf[:0]
	if end := at + int64(n); end-w.started >= writebackEvery {
		w.startWriteback(end)
	}
	return nil
}

// startWriteback asks the kernel to start writing what is written so far
// (it does not wait for it): by the final fsync most of it is on disk.
func (w *chunkWriter) startWriteback(end int64) {
	sc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), w.started, end-w.started, unix.SYNC_FILE_RANGE_WRITE)
	})
	w.started = end
}

// Size is the payload's length so far.
func (w *chunkWriter) Size() uint64 { return w.done + uint64(len(w.buf)) }

// Truncate cuts the payload back to off bytes (the kernel does so when a
// variable fails to pickle half way). A chunk already written is read back
// from the server's own file and checked against its tag before its first
// part is kept.
func (w *chunkWriter) Truncate(off uint64) error {
	if off > w.Size() {
		return fmt.Errorf("truncate the checkpoint stream to %d: only %d bytes were written", off, w.Size())
	}
	if off >= w.done {
		w.buf = w.buf[:off-w.done]
		return nil
	}
	i := off / chunkSize
	w.buf = w.buf[:chunkSize]
	if _, err := w.f.ReadAt(w.buf, w.base+int64(i*chunkSize)); err != nil {
		return fmt.Errorf("read back checkpoint chunk %d: %w", i, err)
	}
	if !w.s.open(i, w.buf, w.tags[i*entrySize:(i+1)*entrySize]) {
		return fmt.Errorf("checkpoint chunk %d changed on disk while it was being saved: save again", i)
	}
	if w.epoch == ^uint32(0) {
		return errors.New("the kernel cut its checkpoint stream back too many times")
	}
	// NB: chunk i and those after it will be sealed again, with new
	// content: a new epoch, so their nonces are new.
	w.epoch++
	w.buf = w.buf[:off-i*chunkSize]
	w.tags = w.tags[:i*entrySize]
	w.done = i * chunkSize
	return nil
}

// Finish writes the last, partial chunk and returns the payload's length
// and the tags.
func (w *chunkWriter) Finish() (uint64, []byte, error) {
	if len(w.buf) > 0 {
		if err := w.writeChunk(); err != nil {
			return 0, nil, err
		}
	}
	return w.done, w.tags, nil
}

// The kernel's side of a save writes frames into a pipe (kernel.py
// _Sink), so that the server can tag chunks while the kernel pickles, and
// the kernel can still cut off a variable that failed half way:
//
//	'D' length u32 | bytes   append bytes (length 1..maxFrame)
//	'T' offset u64           cut the payload back to offset bytes
//	'E'                      end: the payload is complete
//
// NB: kernel.py writes these; keep both in step.
const (
	frameData     = 'D'
	frameTruncate = 'T'
	frameEnd      = 'E'
	maxFrame      = 16 << 20
)

// errNoEnd: the stream stopped before its end mark.
var errNoEnd = errors.New("the kernel's checkpoint stream ended without its end mark (the kernel stopped or died during the save): save again")

// ingest reads the kernel's frames from r into w until the end frame. A
// malformed frame is an error; the kernel is untrusted, so nothing it
// sends is taken on faith (lengths are bounded, a cut cannot go forward).
func ingest(r io.Reader, w *chunkWriter) error {
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(r, hdr[:1]); err != nil {
			if errors.Is(err, io.EOF) {
				return errNoEnd
			}
			return fmt.Errorf("read the kernel's checkpoint stream: %w", err)
		}
		switch hdr[0] {
		case frameEnd:
			return nil
		case frameTruncate:
			if _, err := io.ReadFull(r, hdr[1:9]); err != nil {
				return fmt.Errorf("read the kernel's checkpoint stream: %w", noEOF(err))
			}
			if err := w.Truncate(binary.BigEndian.Uint64(hdr[1:9])); err != nil {
				return err
			}
		case frameData:
			if _, err := io.ReadFull(r, hdr[1:5]); err != nil {
				return fmt.Errorf("read the kernel's checkpoint stream: %w", noEOF(err))
			}
			n := int(binary.BigEndian.Uint32(hdr[1:5]))
			if n == 0 || n > maxFrame {
				return fmt.Errorf("the kernel's checkpoint stream is malformed: frame of %d bytes (1..%d)", n, maxFrame)
			}
			for n > 0 {
				free := w.fill()
				k := min(n, len(free))
				if _, err := io.ReadFull(r, free[:k]); err != nil {
					return fmt.Errorf("read the kernel's checkpoint stream: %w", noEOF(err))
				}
				if err := w.commit(k); err != nil {
					return err
				}
				n -= k
			}
		default:
			return fmt.Errorf("the kernel's checkpoint stream is malformed: unknown frame %q", hdr[0])
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errNoEnd
	}
	return err
}

// list is a version 2 file whose header, tags and metadata verified.
type list struct {
	h    Header
	hlen int64
	foot Footer
	tags []byte
	meta []byte
	s    *chunkSealer
}

// verifyList reads the tags and metadata of the version 2 file open in f
// (its header hb and footer already parsed, its layout not yet checked)
// and checks them against the HMAC. Nothing of the chunks is read.
func verifyList(f *os.File, key Key, h Header, hb []byte, foot Footer, size int64) (*list, error) {
	n := chunkCount(foot.PayloadLen)
	want := uint64(len(hb)) + foot.PayloadLen + n*entrySize + uint64(foot.MetaLen) + footerSize
	if foot.PayloadLen > uint64(size) || n > maxChunks || want != uint64(size) {
		return nil, reject("the file was truncated or extended after it was written", "size %d, footer says %d", size, want)
	}
	l := &list{h: h, hlen: int64(len(hb)), foot: foot}
	tail := make([]byte, n*entrySize+uint64(foot.MetaLen))
	if _, err := f.ReadAt(tail, l.hlen+int64(foot.PayloadLen)); err != nil {
		return nil, fmt.Errorf("read checkpoint tags and metadata: %w", err)
	}
	l.tags, l.meta = tail[:n*entrySize], tail[n*entrySize:]
	mac := key.newMAC()
	mac.Write(hb)
	mac.Write(tail)
	mac.Write(foot.encodeFields())
	if !macEqual(mac.Sum(nil), foot.MAC[:]) {
		return nil, reject("the file was altered after it was written, or signed with another secret under the same key id",
			"signature mismatch")
	}
	s, err := newChunkSealer(key, h)
	if err != nil {
		return nil, err
	}
	l.s = s
	return l, nil
}

// stream reads every chunk of the file through f, checks it against its
// tag (decrypting it when encrypted) and only then writes it to w. A chunk
// that fails is a RejectError and none of it is written.
func (l *list) stream(f *os.File, w io.Writer) error {
	n := chunkCount(l.foot.PayloadLen)
	buf := make([]byte, chunkSize+tagSize)
	for i := uint64(0); i < n; i++ {
		c := buf[:chunkLen(l.foot.PayloadLen, i)]
		if _, err := f.ReadAt(c, l.hlen+int64(i*chunkSize)); err != nil {
			if errors.Is(err, io.EOF) {
				return reject("the file was truncated while it was read", "chunk %d of %d is cut short", i, n)
			}
			return fmt.Errorf("read checkpoint chunk %d: %w", i, err)
		}
		if !l.s.open(i, c, l.tags[i*entrySize:(i+1)*entrySize]) {
			return reject("the file was altered after it was written; nothing of that chunk reached the kernel",
				"chunk %d of %d fails authentication", i, n)
		}
		if _, err := w.Write(c); err != nil {
			return fmt.Errorf("hand over checkpoint chunk %d: %w", i, err)
		}
	}
	return nil
}

// tableSum identifies a version 2 file's content for the metadata's
// sha256 field: the SHA-256 of its tags, which stand for every chunk under
// a key of the file's own (so two saves never share it).
func tableSum(tags []byte) [sha256.Size]byte { return sha256.Sum256(tags) }

// A checkpoint pipe is asked to hold, in turn: 8 MiB
// where the process may (CAP_SYS_RESOURCE), else 1 MiB (Linux's default
// pipe-max-size for everyone). A deep pipe lets the server run ahead of
// the kernel, so neither waits for the other to be scheduled on a busy
// machine; the default 64 KiB still works.
const (
	pipeSizeDeep    = 8 << 20
	pipeSizeDefault = 1 << 20
)

// newPipe makes a pipe whose server end (the read end when serverReads)
// is non-blocking, so the server can bound its waits with deadlines, and
// whose other end, handed to a kernel, is blocking as Python expects.
// NB: O_NONBLOCK belongs to the open file description, which the kernel
// shares once it receives the descriptor: only the server's end has it.
func newPipe(serverReads bool) (server, kernel *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("make checkpoint pipe: %w", err)
	}
	for _, n := range []int{pipeSizeDeep, pipeSizeDefault} {
		if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, n); err == nil {
			break
		}
	}
	s, k := p[0], p[1]
	if !serverReads {
		s, k = p[1], p[0]
	}
	if err := unix.SetNonblock(s, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("make checkpoint pipe: %w", err)
	}
	return os.NewFile(uintptr(s), "checkpoint-pipe"), os.NewFile(uintptr(k), "checkpoint-pipe"), nil
}

// Resign rewrites a whole checkpoint file (format 1, or format 2 not
// encrypted) under k: its key id, every chunk tag and the HMAC, as a
// holder of k would. Tests use it to forge files.
func Resign(k Key, file []byte) ([]byte, error) {
	h, hlen, err := ParseHeader(file)
	if err != nil {
		return nil, err
	}
	if len(file) < hlen+footerSize {
		return nil, errors.New("resign: file too short")
	}
	old := h.KeyID
	h.KeyID = k.ID
	nh := h.Encode()
	if h.Version == 1 {
		return Sign(k, append(nh, file[hlen:len(file)-sha256.Size]...)), nil
	}
	if h.Encrypted {
		return nil, errors.New("resign: an encrypted format 2 file cannot be re-signed without its key")
	}
	foot, err := ParseFooter(file[len(file)-footerSize:])
	if err != nil {
		return nil, err
	}
	n := chunkCount(foot.PayloadLen)
	if uint64(len(file)) != uint64(hlen)+foot.PayloadLen+n*entrySize+uint64(foot.MetaLen)+footerSize {
		return nil, errors.New("resign: layout does not add up")
	}
	s, err := newChunkSealer(k, h)
	if err != nil {
		return nil, err
	}
	payload := file[hlen : uint64(hlen)+foot.PayloadLen]
	var tail []byte
	for i := uint64(0); i < n; i++ {
		tail = append(tail, s.seal(0, i, payload[i*chunkSize:i*chunkSize+uint64(chunkLen(foot.PayloadLen, i))])...)
	}
	// The signed metadata names the key too: a forger rewrites it.
	meta := file[uint64(hlen)+foot.PayloadLen+n*entrySize : len(file)-footerSize]
	meta = bytes.Replace(meta, []byte(`"key_id":"`+old+`"`), []byte(`"key_id":"`+k.ID+`"`), 1)
	foot.MetaLen = uint32(len(meta))
	tail = append(append(tail, meta...), foot.encodeFields()...)
	mac := k.newMAC()
	mac.Write(nh)
	mac.Write(tail)
	out := append(append(append([]byte(nil), nh...), payload...), tail...)
	return mac.Sum(out), nil
}

// ChunkMACRate measures how fast this machine tags format 2 chunks (GMAC
// under AES-256-GCM), in GB/s, over n bytes: the floor under a save's and
// a load's cost, which benchmarks report beside their ratios.
func ChunkMACRate(n int) float64 {
	s, err := newChunkSealer(Key{ID: "rate", Secret: make([]byte, 32)}, Header{Version: FormatVersion})
	if err != nil {
		return 0
	}
	buf := make([]byte, chunkSize)
	chunks := max(1, n/chunkSize)
	t0 := time.Now()
	for i := 0; i < chunks; i++ {
		s.seal(0, uint64(i), buf)
	}
	return float64(chunks*chunkSize) / time.Since(t0).Seconds() / 1e9
}
