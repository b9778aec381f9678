package checkpointfile

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Store is the directory of checkpoint files: <dir>/<name>.ckpt (signed,
// optionally encrypted), <name>.json beside it (the metadata, for people),
// and <dir>/tmp for saves and loads in progress. actors/checkpoint declares
// what it needs of it (checkpoint.Files); Store implements it. Safe for
// concurrent use on different names; the actor serializes commands on one.
type Store struct {
	dir, tmp string
	keys     *Keyring
	encrypt  bool
}

// Open prepares dir (0700) and its tmp (removing what a crash left there:
// a save that never reached its rename was never listed, and the previous
// checkpoint of that name is untouched). encrypt seals new checkpoints with
// AES-256-GCM.
func Open(dir string, keys *Keyring, encrypt bool) (*Store, error) {
	if keys == nil {
		return nil, errors.New("checkpointfile: open: a keyring is required")
	}
	s := &Store{dir: dir, tmp: filepath.Join(dir, "tmp"), keys: keys, encrypt: encrypt}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create checkpoint dir: %w", err)
	}
	for _, d := range []string{dir, s.tmp} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("restrict %s: %w", d, err)
		}
	}
	stale, _ := os.ReadDir(s.tmp)
	for _, e := range stale {
		_ = os.Remove(filepath.Join(s.tmp, e.Name()))
	}
	return s, nil
}

// Keys returns the keyring.
func (s *Store) Keys() *Keyring { return s.keys }

// Dir returns the checkpoint directory; TempDir its temp directory.
func (s *Store) Dir() string     { return s.dir }
func (s *Store) TempDir() string { return s.tmp }

// Path is the committed file of name.
func (s *Store) Path(name string) string     { return filepath.Join(s.dir, name+".ckpt") }
func (s *Store) metaPath(name string) string { return filepath.Join(s.dir, name+".json") }

// Exists reports whether name's file is committed.
func (s *Store) Exists(name string) bool {
	_, err := os.Stat(s.Path(name))
	return err == nil
}

// Stage is one save in progress: the kernel writes its dill stream to
// KernelPath, then Seal signs, encrypts and commits it.
type Stage struct {
	s          *Store
	name       string
	key        Key
	h          Header
	hb         []byte
	part       string // becomes <name>.ckpt
	kernelPath string // part itself, or a plaintext temp when encrypting
	done       bool
}

// Stage creates the temp files of a save of name.
func (s *Store) Stage(name string) (*Stage, error) {
	key := s.keys.Current()
	st := &Stage{s: s, name: name, key: key, h: Header{Version: FormatVersion, KeyID: key.ID, Encrypted: s.encrypt}}
	if _, err := rand.Read(st.h.Nonce[:]); err != nil {
		return nil, fmt.Errorf("make nonce: %w", err)
	}
	st.hb = st.h.Encode()
	part, err := os.CreateTemp(s.tmp, name+".*.part")
	if err != nil {
		return nil, fmt.Errorf("create checkpoint temp file: %w", err)
	}
	st.part, st.kernelPath = part.Name(), part.Name()
	if st.h.Encrypted {
		// The kernel writes plaintext to its own temp; Seal encrypts it
		// into the checkpoint and removes it.
		plain, err := os.CreateTemp(s.tmp, name+".*.plain")
		if err != nil {
			part.Close()
			st.Abort()
			return nil, fmt.Errorf("create checkpoint plaintext temp file: %w", err)
		}
		st.kernelPath = plain.Name()
		plain.Close()
	} else if _, err := part.Write(st.hb); err != nil {
		part.Close()
		st.Abort()
		return nil, fmt.Errorf("write checkpoint header: %w", err)
	}
	if err := part.Close(); err != nil {
		st.Abort()
		return nil, fmt.Errorf("close checkpoint temp file: %w", err)
	}
	return st, nil
}

// KernelPath is where the kernel writes its dill stream.
func (st *Stage) KernelPath() string { return st.kernelPath }

// Abort removes the stage's temp files (a no-op after a successful Seal).
func (st *Stage) Abort() {
	if !st.done {
		_ = os.Remove(st.part)
	}
	if st.kernelPath != st.part {
		_ = os.Remove(st.kernelPath)
	}
}

// Sealed is what Seal tells the metadata callback about the payload.
type Sealed struct {
	KeyID         string
	Encrypted     bool
	FormatVersion int
	PayloadBytes  int64
	SHA256        string // of the payload as stored
}

// Seal completes the checkpoint: payload (already after the header, or
// encrypted from the kernel's plaintext), the metadata meta returns (a JSON
// object), footer; fsync; rename to <name>.ckpt (the commit point); fsync
// of the directory; then <name>.json. It streams: memory use does not grow
// with the checkpoint. It returns the file's size.
func (st *Stage) Seal(meta func(Sealed) ([]byte, error)) (int64, error) {
	defer st.Abort()
	f, err := os.OpenFile(st.part, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open checkpoint temp file: %w", err)
	}
	defer f.Close()
	mac, sum := st.key.newMAC(), sha256.New()
	mac.Write(st.hb)
	var payload int64
	if st.h.Encrypted {
		plain, err := os.Open(st.kernelPath)
		if err != nil {
			return 0, fmt.Errorf("open checkpoint plaintext: %w", err)
		}
		defer plain.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := w.Write(st.hb); err != nil {
			return 0, fmt.Errorf("write checkpoint header: %w", err)
		}
		payload, err = encryptStream(io.MultiWriter(w, mac, sum), bufio.NewReaderSize(plain, 1<<20), st.key, st.h, st.hb)
		if err != nil {
			return 0, fmt.Errorf("encrypt checkpoint: %w", err)
		}
		if err := w.Flush(); err != nil {
			return 0, fmt.Errorf("write checkpoint: %w", err)
		}
	} else {
		got := make([]byte, len(st.hb))
		if _, err := io.ReadFull(f, got); err != nil || string(got) != string(st.hb) {
			return 0, fmt.Errorf("checkpoint temp file %s was changed while the kernel wrote it: save again", st.part)
		}
		payload, err = io.CopyBuffer(io.MultiWriter(mac, sum), f, make([]byte, 1<<20))
		if err != nil {
			return 0, fmt.Errorf("sign checkpoint: %w", err)
		}
	}
	mj, err := meta(Sealed{KeyID: st.key.ID, Encrypted: st.h.Encrypted, FormatVersion: FormatVersion,
		PayloadBytes: payload, SHA256: hex.EncodeToString(sum.Sum(nil))})
	if err != nil {
		return 0, fmt.Errorf("encode checkpoint metadata: %w", err)
	}
	foot := Footer{MetaLen: uint32(len(mj)), PayloadLen: uint64(payload)}
	tail := append(mj, foot.encodeFields()...)
	mac.Write(tail)
	tail = mac.Sum(tail)
	if _, err := f.Write(tail); err != nil {
		return 0, fmt.Errorf("write checkpoint footer: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close checkpoint: %w", err)
	}
	size := int64(len(st.hb)) + payload + int64(len(tail))
	if err := os.Rename(st.part, st.s.Path(st.name)); err != nil {
		return 0, fmt.Errorf("commit checkpoint %s: %w", st.name, err)
	}
	st.done = true
	if err := syncDir(st.s.dir); err != nil {
		return size, fmt.Errorf("sync checkpoint dir: %w", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, mj, "", "  "); err != nil {
		return size, fmt.Errorf("indent checkpoint metadata: %w", err)
	}
	pretty.WriteByte('\n')
	if err := writeFileAtomic(st.s.metaPath(st.name), pretty.Bytes()); err != nil {
		return size, fmt.Errorf("write checkpoint metadata: %w", err)
	}
	return size, nil
}

// Verified is a checkpoint whose whole file verified: the kernel reads the
// payload from Path at Offset. Close removes a decrypted temp copy.
type Verified struct {
	Path   string
	Offset int64
	Meta   []byte // the signed metadata (JSON)
	Size   int64  // of the checkpoint file
	temp   string
}

// Close removes the decrypted copy, if any.
func (v *Verified) Close() {
	if v.temp != "" {
		_ = os.Remove(v.temp)
	}
}

// Verify checks name's file (constant-time HMAC over the whole file,
// streamed) before any of it may go near a kernel. An unencrypted one is
// verified in place and read from the file itself (no copy of hundreds of
// MB); an encrypted one is decrypted, while verified, into a 0600 temp file.
// A refusal is a *RejectError (errors.Is ErrRejected); a missing file
// wraps fs.ErrNotExist.
// NB: the kernel runs as the server's user and could alter the file
// between the check and the read; that user can read the key too (see
// docs/CHECKPOINTS.md), so a copy would not be safer.
func (s *Store) Verify(name string) (*Verified, error) {
	path := s.Path(name)
	encrypted, err := encryptedFile(path)
	if err != nil {
		return nil, err
	}
	if !encrypted {
		meta, off, size, err := s.verifyInto(path, io.Discard)
		if err != nil {
			return nil, err
		}
		return &Verified{Path: path, Offset: off, Meta: meta, Size: size}, nil
	}
	tmp, err := os.CreateTemp(s.tmp, name+".*.load")
	if err != nil {
		return nil, fmt.Errorf("create load temp file: %w", err)
	}
	v := &Verified{Path: tmp.Name(), temp: tmp.Name()}
	meta, _, size, err := s.verifyInto(path, tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write load temp file: %w", cerr)
	}
	if err != nil {
		v.Close()
		return nil, err
	}
	v.Meta, v.Size = meta, size
	return v, nil
}

// VerifyFile checks the checkpoint file at path, writing its (decrypted)
// payload to w. Until it returns nil, w holds unverified bytes.
func (s *Store) VerifyFile(path string, w io.Writer) (meta []byte, err error) {
	meta, _, _, err = s.verifyInto(path, w)
	return meta, err
}

// verifyInto streams the checkpoint at path through its HMAC and writes the
// (decrypted) payload to w. It returns the metadata, the payload's offset
// and the file's size.
func (s *Store) verifyInto(path string, w io.Writer) ([]byte, int64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, 0, fmt.Errorf("no checkpoint file %s: %w", filepath.Base(path), fs.ErrNotExist)
		}
		return nil, 0, 0, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("stat checkpoint: %w", err)
	}
	size := fi.Size()
	hbuf := make([]byte, min(int64(maxHeader), size))
	if _, err := io.ReadFull(f, hbuf); err != nil {
		return nil, 0, 0, fmt.Errorf("read checkpoint header: %w", err)
	}
	h, hlen, err := ParseHeader(hbuf)
	if err != nil {
		return nil, 0, 0, err
	}
	if size < int64(hlen)+footerSize {
		return nil, 0, 0, reject("the file was cut short (an interrupted copy?)", "truncated: %d bytes is too short for a checkpoint", size)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, size-footerSize); err != nil {
		return nil, 0, 0, fmt.Errorf("read checkpoint footer: %w", err)
	}
	foot, err := ParseFooter(fb)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := layout(hlen, foot, size); err != nil {
		return nil, 0, 0, err
	}
	key, ok := s.keys.Lookup(h.KeyID)
	if !ok {
		return nil, 0, 0, reject("restore that key into checkpoint-keys/ or set MCP_CHECKPOINT_SECRET to the secret that signed it",
			"signed with key %s, which this server does not have (rotated away, or from another server)", h.KeyID)
	}
	mac := key.newMAC()
	mac.Write(hbuf[:hlen])
	payload := io.TeeReader(io.NewSectionReader(f, int64(hlen), int64(foot.PayloadLen)), mac)
	bw := bufio.NewWriterSize(w, 1<<20)
	if h.Encrypted {
		if err := decryptStream(bw, bufio.NewReaderSize(payload, 1<<20), foot.PayloadLen, key, h, hbuf[:hlen]); err != nil {
			return nil, 0, 0, err
		}
	} else if _, err := io.CopyBuffer(bw, payload, make([]byte, 1<<20)); err != nil {
		return nil, 0, 0, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, 0, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	mb := make([]byte, foot.MetaLen)
	if _, err := f.ReadAt(mb, int64(hlen)+int64(foot.PayloadLen)); err != nil {
		return nil, 0, 0, fmt.Errorf("read checkpoint metadata: %w", err)
	}
	mac.Write(mb)
	mac.Write(foot.encodeFields())
	if !macEqual(mac.Sum(nil), foot.MAC[:]) {
		return nil, 0, 0, reject("the file was altered after it was written, or signed with another secret under the same key id",
			"signature mismatch")
	}
	if !json.Valid(mb) {
		// Signed but unreadable: a bug of the writer, not tampering.
		return nil, 0, 0, errors.New("decode checkpoint metadata: not JSON")
	}
	return mb, int64(hlen), size, nil
}

// encryptedFile reports whether the checkpoint file at path is encrypted,
// from its header alone (nothing is trusted until verifyInto).
func encryptedFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("no checkpoint file %s: %w", filepath.Base(path), fs.ErrNotExist)
		}
		return false, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	hbuf := make([]byte, maxHeader)
	n, err := io.ReadFull(f, hbuf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, fmt.Errorf("read checkpoint header: %w", err)
	}
	h, _, err := ParseHeader(hbuf[:n])
	if err != nil {
		return false, err
	}
	return h.Encrypted, nil
}

// List calls fn for every committed checkpoint, by name, with its signed
// metadata (not verified: load verifies), its size, or why the metadata
// could not be read. valid filters names (the actor's naming rule). Temp
// files are never listed.
func (s *Store) List(valid func(name string) bool, fn func(name string, meta []byte, size int64, err error)) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ckpt")
		if ok && !e.IsDir() && valid(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		m, size, err := readMeta(s.Path(name))
		fn(name, m, size, err)
	}
	return nil
}

// Save stages a save of name, runs dump with the path the kernel writes
// its dill stream to, then seals and commits it (see Seal); meta gets the
// key id, whether the payload is encrypted, the payload's length and its
// sha256, and returns the metadata JSON. It returns the file's size. On
// error nothing is committed and the temp files are gone.
func (s *Store) Save(name string, dump func(kernelPath string) error,
	meta func(keyID string, encrypted bool, payloadBytes int64, sha256 string) ([]byte, error)) (int64, error) {
	st, err := s.Stage(name)
	if err != nil {
		return 0, err
	}
	defer st.Abort()
	if err := dump(st.KernelPath()); err != nil {
		return 0, err
	}
	return st.Seal(func(x Sealed) ([]byte, error) { return meta(x.KeyID, x.Encrypted, x.PayloadBytes, x.SHA256) })
}

// Load verifies name's whole file, then runs restore with where the
// verified payload is (path and offset), the signed metadata and the file's
// size; a decrypted copy is removed after restore returns. A refusal is a
// *RejectError and restore does not run.
func (s *Store) Load(name string, restore func(path string, offset int64, meta []byte, size int64) error) error {
	v, err := s.Verify(name)
	if err != nil {
		return err
	}
	defer v.Close()
	return restore(v.Path, v.Offset, v.Meta, v.Size)
}

func readMeta(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.Size() < footerSize {
		return nil, fi.Size(), reject("", "truncated")
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, fi.Size()-footerSize); err != nil {
		return nil, fi.Size(), err
	}
	foot, err := ParseFooter(fb)
	if err != nil {
		return nil, fi.Size(), err
	}
	at := fi.Size() - footerSize - int64(foot.MetaLen)
	if at < 0 {
		return nil, fi.Size(), reject("", "truncated")
	}
	mb := make([]byte, foot.MetaLen)
	if _, err := f.ReadAt(mb, at); err != nil {
		return nil, fi.Size(), err
	}
	return mb, fi.Size(), nil
}

// Delete removes name's files and syncs the directory.
func (s *Store) Delete(name string) error {
	for _, p := range []string{s.Path(name), s.metaPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete checkpoint %s: %w", name, err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return nil
}
