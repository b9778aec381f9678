package checkpointfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// The checkpoint file. This server writes format version 2 and reads 1
// and 2 (all integers big-endian).
//
// Version 2 (chunked.go) — verified per chunk, so a load streams:
//
//	header   magic "MCPJCKPT" | version u16 = 2 | flags u16 | key id length u8 | key id | file id [16]
//	chunks   the dill stream in chunks of 1 MiB (the last one shorter), as
//	         written, or (flag encrypted) AES-256-GCM ciphertext of equal length
//	tags     one entry per chunk: epoch u32 | tag [16]; the tag is AES-256-GCM
//	         under the file's chunk key (derived from the key and the file
//	         id), nonce = epoch u32 | chunk index u64; the chunk is the
//	         additional data (GMAC) or, encrypted, the plaintext. The epoch
//	         grows when a save cuts back into chunks already sealed, so no
//	         nonce is used twice.
//	meta     JSON (Meta)
//	footer   meta length u32 | payload length u64 | "CKPT" | HMAC-SHA256 [32]
//
// The HMAC covers header, tags, meta and the footer's fields (not the
// chunks: their tags stand for them), so the list of chunks — how many,
// in which order, each one's tag — is checked before any chunk is read;
// then each chunk is checked against its tag before it is used. A chunk
// of another file (another file id, so another chunk key), a chunk moved
// to another index, a flipped byte, a truncation: each fails one check.
//
// Version 1 (still read) — verified whole before any of it is used:
//
//	header   magic "MCPJCKPT" | version u16 = 1 | flags u16 | key id length u8 | key id | nonce [8]
//	payload  the dill stream as the kernel wrote it, or (flag encrypted)
//	         chunks of: plaintext length u32 | AES-256-GCM ciphertext+tag; a zero length ends
//	meta     JSON (Meta)
//	footer   meta length u32 | payload length u64 | "CKPT" | HMAC-SHA256 [32]
//
// The HMAC covers every byte before it, header included.
//
// NB: the magic, the layouts of versions 1 and 2 and the key derivation
// labels must not change: Friday's files are read on Monday by a newer
// binary.
const (
	Magic         = "MCPJCKPT"
	FormatVersion = 2 // the version Save writes
	footerMagic   = "CKPT"
	footerSize    = 4 + 8 + 4 + sha256.Size
	nonceSize     = 8  // version 1
	fileIDSize    = 16 // version 2
	maxKeyID      = 64
	maxMeta       = 16 << 20
	chunkSize     = 1 << 20
	flagEncrypted = 1 << 0
	knownFlags    = flagEncrypted
)

// FooterSize is the length of the fixed footer at the end of every
// version's file (tests that damage files use it).
const FooterSize = footerSize

// EntrySize is the length of one chunk's entry in a version 2 file's tag
// list: epoch u32 | tag [16] (tests that damage files use it).
const EntrySize = entrySize

// ChunkSize is the payload bytes per chunk of a version 2 file.
const ChunkSize = chunkSize

// Header is the fixed part at the start of a checkpoint file.
type Header struct {
	Version   uint16
	Flags     uint16
	KeyID     string
	Nonce     [nonceSize]byte  // version 1
	FileID    [fileIDSize]byte // version 2
	Encrypted bool
}

// Footer is the fixed part at the end of a checkpoint file.
type Footer struct {
	MetaLen    uint32
	PayloadLen uint64
	MAC        [sha256.Size]byte
}

// ErrRejected marks every reason a checkpoint file is refused before any
// of it reaches a kernel. Check with errors.Is.
var ErrRejected = errors.New("checkpoint: rejected")

// RejectError says why a checkpoint file was refused and what to do.
type RejectError struct {
	Reason string
	Hint   string
}

func (e *RejectError) Error() string {
	if e.Hint == "" {
		return "checkpoint rejected: " + e.Reason
	}
	return "checkpoint rejected: " + e.Reason + " (" + e.Hint + ")"
}

func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Rejected marks the error as a refusal of the file for callers that do not
// import this package (actors/checkpoint tests for it by this method).
func (e *RejectError) Rejected() bool { return true }

func reject(hint, format string, v ...any) error {
	return &RejectError{Reason: fmt.Sprintf(format, v...), Hint: hint}
}

// Encode returns the header's bytes.
func (h Header) Encode() []byte {
	b := make([]byte, 0, len(Magic)+5+len(h.KeyID)+fileIDSize)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	flags := h.Flags
	if h.Encrypted {
		flags |= flagEncrypted
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, byte(len(h.KeyID)))
	b = append(b, h.KeyID...)
	if h.Version >= 2 {
		return append(b, h.FileID[:]...)
	}
	return append(b, h.Nonce[:]...)
}

// ParseHeader reads a header from the start of b and returns it with its
// length. A newer format version, unknown flags or a damaged header are
// RejectErrors.
func ParseHeader(b []byte) (Header, int, error) {
	var h Header
	const fixed = len(Magic) + 5
	if len(b) < fixed || string(b[:len(Magic)]) != Magic {
		return h, 0, reject("the file is not an mcp-jupyter checkpoint or its start is damaged", "bad magic: not a checkpoint file")
	}
	h.Version = binary.BigEndian.Uint16(b[8:])
	h.Flags = binary.BigEndian.Uint16(b[10:])
	if h.Version == 0 {
		return h, 0, reject("the header is damaged", "format version 0 is not valid")
	}
	if h.Version > FormatVersion {
		return h, 0, reject("upgrade mcp-jupyter to load it", "format version %d is newer than this server reads (%d)", h.Version, FormatVersion)
	}
	if h.Flags&^knownFlags != 0 {
		return h, 0, reject("the header is damaged or written by a newer server", "unknown flags %#x", h.Flags&^knownFlags)
	}
	h.Encrypted = h.Flags&flagEncrypted != 0
	h.Flags &^= flagEncrypted
	n := int(b[12])
	if n == 0 || n > maxKeyID {
		return h, 0, reject("the header is damaged", "key id length %d is out of range 1..%d", n, maxKeyID)
	}
	id := nonceSize
	if h.Version >= 2 {
		id = fileIDSize
	}
	if len(b) < fixed+n+id {
		return h, 0, reject("the file is truncated", "header cut short")
	}
	h.KeyID = string(b[fixed : fixed+n])
	if h.Version >= 2 {
		copy(h.FileID[:], b[fixed+n:])
	} else {
		copy(h.Nonce[:], b[fixed+n:])
	}
	return h, fixed + n + id, nil
}

// maxHeader is the longest header there can be.
const maxHeader = len(Magic) + 5 + maxKeyID + fileIDSize

func (f Footer) encodeFields() []byte {
	b := binary.BigEndian.AppendUint32(nil, f.MetaLen)
	b = binary.BigEndian.AppendUint64(b, f.PayloadLen)
	return append(b, footerMagic...)
}

// ParseFooter reads the footer from the last footerSize bytes of b.
func ParseFooter(b []byte) (Footer, error) {
	var f Footer
	if len(b) != footerSize || string(b[12:16]) != footerMagic {
		return f, reject("the file was cut short (an interrupted copy?) or its end is damaged", "truncated: no footer")
	}
	f.MetaLen = binary.BigEndian.Uint32(b)
	f.PayloadLen = binary.BigEndian.Uint64(b[4:])
	copy(f.MAC[:], b[16:])
	if f.MetaLen > maxMeta {
		return f, reject("the footer is damaged", "metadata length %d exceeds %d", f.MetaLen, maxMeta)
	}
	return f, nil
}

// layout checks that header, payload, meta and footer add up to size.
func layout(headerLen int, f Footer, size int64) error {
	want := uint64(headerLen) + f.PayloadLen + uint64(f.MetaLen) + footerSize
	if f.PayloadLen > uint64(size) || want != uint64(size) {
		return reject("the file was truncated or extended after it was written", "size %d, footer says %d", size, want)
	}
	return nil
}

// Key is one secret of the keyring. Signing and encryption keys are derived
// from it, so the secret itself is used for nothing else.
type Key struct {
	ID     string
	Secret []byte
}

// NB: the labels must not change.
func (k Key) macKey() []byte { return derive(k.Secret, "mcp-jupyter checkpoint hmac-sha256 v1") }
func (k Key) encKey() []byte { return derive(k.Secret, "mcp-jupyter checkpoint aes-256-gcm v1") }

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func (k Key) newMAC() hash.Hash { return hmac.New(sha256.New, k.macKey()) }

func (k Key) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.encKey())
	if err != nil {
		return nil, fmt.Errorf("make AES cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

func chunkNonce(base [nonceSize]byte, i uint32) []byte {
	n := make([]byte, 12)
	copy(n, base[:])
	binary.BigEndian.PutUint32(n[nonceSize:], i)
	return n
}

// encryptStream reads plaintext from r and writes encrypted chunks to w,
// one chunk of at most chunkSize in memory at a time. header is bound to
// every chunk as additional data.
func encryptStream(w io.Writer, r io.Reader, k Key, h Header, header []byte) (int64, error) {
	gcm, err := k.aead()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, chunkSize)
	out := make([]byte, 0, 4+chunkSize+gcm.Overhead())
	var written int64
	for i := uint32(0); ; i++ {
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return written, fmt.Errorf("read payload: %w", rerr)
		}
		out = binary.BigEndian.AppendUint32(out[:0], uint32(n))
		out = gcm.Seal(out, chunkNonce(h.Nonce, i), buf[:n], header)
		if _, err := w.Write(out); err != nil {
			return written, fmt.Errorf("write encrypted chunk: %w", err)
		}
		written += int64(len(out))
		if n == 0 {
			return written, nil
		}
		if i == ^uint32(0) {
			return written, errors.New("payload too large to encrypt")
		}
	}
}

// decryptStream reads exactly n bytes of chunks from r and writes the
// plaintext to w.
func decryptStream(w io.Writer, r io.Reader, n uint64, k Key, h Header, header []byte) error {
	gcm, err := k.aead()
	if err != nil {
		return err
	}
	var lenb [4]byte
	buf := make([]byte, 0, chunkSize+gcm.Overhead())
	var read uint64
	for i := uint32(0); ; i++ {
		if read+4 > n {
			return reject("the encrypted payload is damaged", "encrypted payload ends without its final chunk")
		}
		if _, err := io.ReadFull(r, lenb[:]); err != nil {
			return fmt.Errorf("read chunk length: %w", err)
		}
		l := binary.BigEndian.Uint32(lenb[:])
		if l > chunkSize || read+4+uint64(l)+uint64(gcm.Overhead()) > n {
			return reject("the encrypted payload is damaged", "chunk %d length %d out of range", i, l)
		}
		buf = buf[:int(l)+gcm.Overhead()]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
		read += 4 + uint64(len(buf))
		plain, err := gcm.Open(buf[:0], chunkNonce(h.Nonce, i), buf, header)
		if err != nil {
			return reject("the file was altered or the key is wrong", "chunk %d fails authentication", i)
		}
		if _, err := w.Write(plain); err != nil {
			return fmt.Errorf("write decrypted payload: %w", err)
		}
		if l == 0 {
			if read != n {
				return reject("the encrypted payload is damaged", "data after the final chunk")
			}
			return nil
		}
	}
}

// macEqual compares in constant time.
func macEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// Sign returns body followed by its HMAC-SHA256 under k: the last step of
// writing a file. Tests use it to forge files as a holder of k would.
func Sign(k Key, body []byte) []byte {
	m := k.newMAC()
	m.Write(body)
	return m.Sum(body)
}
