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

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// Store is the directory of checkpoint files: <dir>/<name>.ckpt (signed,
// optionally encrypted), <name>.json beside it (the metadata, for people),
// and <dir>/tmp for saves and loads in progress. actors/checkpoint declares
// what it needs of it (checkpoint.Files); Store implements it. Safe for
// concurrent use on different names; the actor serializes commands on one.
//
// NB: no kernel is ever given a path under dir. A save hands the kernel an
// open descriptor of its staging file, a load one of a private, unlinked
// copy of the verified payload (see Load): what the HMAC covered is what
// the kernel unpickles, whoever writes the directory meanwhile.
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
		fi, err := os.Lstat(d)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", d, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is a %s, not a directory: remove it and start again", d, kindOf(fi.Mode()))
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("restrict %s: %w", d, err)
		}
	}
	stale, _ := os.ReadDir(s.tmp)
	for _, e := range stale {
		_ = os.RemoveAll(filepath.Join(s.tmp, e.Name()))
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

// Exists reports whether something is committed under name's file name —
// also a named pipe, symbolic link or directory, so that a load of it
// answers "not a regular file" instead of "not found". It never opens it.
func (s *Store) Exists(name string) bool {
	_, err := os.Lstat(s.Path(name))
	return err == nil
}

// Stage is one save in progress: the kernel writes its dill stream to
// KernelFile, then Seal signs, encrypts and commits it.
type Stage struct {
	s    *Store
	name string
	key  Key
	h    Header
	hb   []byte
	part *os.File // becomes <name>.ckpt; the server's own descriptor
	// kernel is what the kernel writes to: part itself (the header is
	// already in it), or, when encrypting, a private unlinked plaintext
	// file that Seal encrypts into part.
	kernel *os.File
	done   bool
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
	st.part, st.kernel = part, part
	if st.h.Encrypted {
		plain, err := privateFile(s.tmp)
		if err != nil {
			st.Abort()
			return nil, fmt.Errorf("create checkpoint plaintext temp file: %w", err)
		}
		st.kernel = plain
	} else if _, err := part.Write(st.hb); err != nil {
		st.Abort()
		return nil, fmt.Errorf("write checkpoint header: %w", err)
	}
	return st, nil
}

// KernelFile is the open file the kernel writes its dill stream to (at its
// end). The kernel gets a descriptor of it, never its path.
func (st *Stage) KernelFile() *os.File { return st.kernel }

// Abort closes the stage's files and removes the staging file (a no-op for
// the committed file after a successful Seal).
func (st *Stage) Abort() {
	if st.kernel != st.part {
		_ = st.kernel.Close()
	}
	_ = st.part.Close()
	if !st.done {
		_ = os.Remove(st.part.Name())
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
// with the checkpoint. It reads only through the descriptors Stage opened.
// It returns the file's size.
//
// NB: the kernel may keep its descriptor of an unencrypted stage and write
// to it after this: the file then no longer matches its signature and every
// load refuses it. That spoils only the checkpoint that kernel wrote.
func (st *Stage) Seal(meta func(Sealed) ([]byte, error)) (int64, error) {
	defer st.Abort()
	f := st.part
	mac, sum := st.key.newMAC(), sha256.New()
	mac.Write(st.hb)
	var payload int64
	if st.h.Encrypted {
		fi, err := st.kernel.Stat()
		if err != nil {
			return 0, fmt.Errorf("stat checkpoint plaintext: %w", err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := w.Write(st.hb); err != nil {
			return 0, fmt.Errorf("write checkpoint header: %w", err)
		}
		plain := io.NewSectionReader(st.kernel, 0, fi.Size())
		payload, err = encryptStream(io.MultiWriter(w, mac, sum), bufio.NewReaderSize(plain, 1<<20), st.key, st.h, st.hb)
		if err != nil {
			return 0, fmt.Errorf("encrypt checkpoint: %w", err)
		}
		if err := w.Flush(); err != nil {
			return 0, fmt.Errorf("write checkpoint: %w", err)
		}
	} else {
		fi, err := f.Stat()
		if err != nil {
			return 0, fmt.Errorf("stat checkpoint temp file: %w", err)
		}
		got := make([]byte, len(st.hb))
		if _, err := f.ReadAt(got, 0); err != nil || string(got) != string(st.hb) {
			return 0, fmt.Errorf("checkpoint temp file %s was changed while the kernel wrote it: save again", f.Name())
		}
		n := fi.Size() - int64(len(st.hb))
		payload, err = io.CopyBuffer(io.MultiWriter(mac, sum), io.NewSectionReader(f, int64(len(st.hb)), n), make([]byte, 1<<20))
		if err != nil {
			return 0, fmt.Errorf("sign checkpoint: %w", err)
		}
		if payload != n {
			return 0, fmt.Errorf("checkpoint temp file %s shrank while it was signed: save again", f.Name())
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
	size := int64(len(st.hb)) + payload + int64(len(tail))
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		return 0, fmt.Errorf("write checkpoint footer: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		return 0, fmt.Errorf("trim checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), st.s.Path(st.name)); err != nil {
		return 0, fmt.Errorf("commit checkpoint %s: %w", st.name, err)
	}
	st.done = true
	if err := atomicfile.SyncDir(st.s.dir); err != nil {
		return size, fmt.Errorf("sync checkpoint dir: %w", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, mj, "", "  "); err != nil {
		return size, fmt.Errorf("indent checkpoint metadata: %w", err)
	}
	pretty.WriteByte('\n')
	if err := atomicfile.Write(st.s.metaPath(st.name), pretty.Bytes()); err != nil {
		return size, fmt.Errorf("write checkpoint metadata: %w", err)
	}
	return size, nil
}

// VerifyFile checks the checkpoint file at path, writing its (decrypted)
// payload to w. Until it returns nil, w holds unverified bytes.
func (s *Store) VerifyFile(path string, w io.Writer) (meta []byte, err error) {
	meta, _, err = s.verifyPath(path, w)
	return meta, err
}

// verifyPath opens path (a regular file only) and verifies it into w.
func (s *Store) verifyPath(path string, w io.Writer) ([]byte, int64, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return s.verifyInto(f, w)
}

// verifyInto streams the checkpoint open in f through its HMAC and writes
// the (decrypted) payload to w. Every byte is read once, through f: the
// bytes written to w, the metadata returned and the bytes the MAC covered
// are the same bytes, whatever happens to the file meanwhile. It returns
// the metadata and the file's size.
func (s *Store) verifyInto(f *os.File, w io.Writer) ([]byte, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("stat checkpoint: %w", err)
	}
	size := fi.Size()
	hbuf := make([]byte, min(int64(maxHeader), size))
	if _, err := f.ReadAt(hbuf, 0); err != nil {
		return nil, 0, fmt.Errorf("read checkpoint header: %w", err)
	}
	h, hlen, err := ParseHeader(hbuf)
	if err != nil {
		return nil, 0, err
	}
	if size < int64(hlen)+footerSize {
		return nil, 0, reject("the file was cut short (an interrupted copy?)", "truncated: %d bytes is too short for a checkpoint", size)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, size-footerSize); err != nil {
		return nil, 0, fmt.Errorf("read checkpoint footer: %w", err)
	}
	foot, err := ParseFooter(fb)
	if err != nil {
		return nil, 0, err
	}
	if err := layout(hlen, foot, size); err != nil {
		return nil, 0, err
	}
	key, ok := s.keys.Lookup(h.KeyID)
	if !ok {
		return nil, 0, reject("restore that key into checkpoint-keys/ or set MCP_CHECKPOINT_SECRET to the secret that signed it",
			"signed with key %s, which this server does not have (rotated away, or from another server)", h.KeyID)
	}
	mac := key.newMAC()
	mac.Write(hbuf[:hlen])
	payload := io.TeeReader(io.NewSectionReader(f, int64(hlen), int64(foot.PayloadLen)), mac)
	bw := bufio.NewWriterSize(w, 1<<20)
	if h.Encrypted {
		if err := decryptStream(bw, bufio.NewReaderSize(payload, 1<<20), foot.PayloadLen, key, h, hbuf[:hlen]); err != nil {
			return nil, 0, err
		}
	} else if n, err := io.CopyBuffer(bw, payload, make([]byte, 1<<20)); err != nil {
		return nil, 0, fmt.Errorf("copy checkpoint payload: %w", err)
	} else if uint64(n) != foot.PayloadLen {
		return nil, 0, reject("the file was truncated while it was read", "payload %d bytes, footer says %d", n, foot.PayloadLen)
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	mb := make([]byte, foot.MetaLen)
	if _, err := f.ReadAt(mb, int64(hlen)+int64(foot.PayloadLen)); err != nil {
		return nil, 0, fmt.Errorf("read checkpoint metadata: %w", err)
	}
	mac.Write(mb)
	mac.Write(foot.encodeFields())
	if !macEqual(mac.Sum(nil), foot.MAC[:]) {
		return nil, 0, reject("the file was altered after it was written, or signed with another secret under the same key id",
			"signature mismatch")
	}
	if !json.Valid(mb) {
		// Signed but unreadable: a bug of the writer, not tampering.
		return nil, 0, errors.New("decode checkpoint metadata: not JSON")
	}
	if err := agrees(mb, h, foot); err != nil {
		return nil, 0, err
	}
	return mb, size, nil
}

// sealedFields are the metadata fields Seal takes from the file itself
// (see Sealed; the JSON keys are those actors/checkpoint.Meta writes).
type sealedFields struct {
	KeyID         *string `json:"key_id"`
	Encrypted     *bool   `json:"encrypted"`
	FormatVersion *int    `json:"format_version"`
	PayloadBytes  *int64  `json:"payload_bytes"`
}

// agrees checks that the signed metadata describes this file: its key,
// encryption, format version and payload length are the header's and the
// footer's. Fields the metadata lacks are not compared. A disagreement is
// a writer's bug or a file assembled from parts: refused.
func agrees(mb []byte, h Header, foot Footer) error {
	var f sealedFields
	if err := json.Unmarshal(mb, &f); err != nil {
		return nil // not an object of these fields: the caller decodes it
	}
	switch {
	case f.KeyID != nil && *f.KeyID != h.KeyID,
		f.Encrypted != nil && *f.Encrypted != h.Encrypted,
		f.FormatVersion != nil && *f.FormatVersion != int(h.Version),
		f.PayloadBytes != nil && uint64(*f.PayloadBytes) != foot.PayloadLen:
		return reject("the file was assembled from parts of others, or written by a faulty server", "signed metadata disagrees with the file's header or footer")
	}
	return nil
}

// List calls fn for every committed checkpoint, by name, with its signed
// metadata (not verified: load verifies), its size, or why the metadata
// could not be read. An entry that is not a regular file (a named pipe, a
// socket, a symbolic link, a directory) is reported with a *NotRegularError
// and never opened. valid filters names (the actor's naming rule). Temp
// files are never listed.
func (s *Store) List(valid func(name string) bool, fn func(name string, meta []byte, size int64, err error)) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	type ent struct {
		name string
		mode fs.FileMode
	}
	var found []ent
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ckpt")
		if ok && valid(name) {
			found = append(found, ent{name, e.Type()})
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].name < found[j].name })
	for _, e := range found {
		if !e.mode.IsRegular() {
			fn(e.name, nil, 0, &NotRegularError{Path: s.Path(e.name), Kind: kindOf(e.mode)})
			continue
		}
		m, size, err := readMeta(s.Path(e.name))
		fn(e.name, m, size, err)
	}
	return nil
}

// Save stages a save of name, runs dump with the open file the kernel
// writes its dill stream to (at its end; the kernel gets a descriptor of
// it, never a path), then seals and commits it (see Seal); meta gets the
// key id, whether the payload is encrypted, the payload's length and its
// sha256, and returns the metadata JSON. It returns the file's size. On
// error nothing is committed and the temp files are gone.
func (s *Store) Save(name string, dump func(stage *os.File) error,
	meta func(keyID string, encrypted bool, payloadBytes int64, sha256 string) ([]byte, error)) (int64, error) {
	st, err := s.Stage(name)
	if err != nil {
		return 0, err
	}
	defer st.Abort()
	if err := dump(st.KernelFile()); err != nil {
		return 0, err
	}
	return st.Seal(func(x Sealed) ([]byte, error) { return meta(x.KeyID, x.Encrypted, x.PayloadBytes, x.SHA256) })
}

// Load opens name's file once (no-follow, non-blocking; only a regular file
// is read), verifies all of it through that descriptor while it copies the
// (decrypted) payload into a private unlinked file under tmp/, then runs
// restore with that copy, opened read-only at the payload's start, the
// signed metadata and the file's size. The copy is gone when Load returns.
// A refusal is a *RejectError and restore does not run; a missing file
// wraps fs.ErrNotExist.
//
// NB: the copy is the point: a kernel, another tenant of the volume or
// anyone else who can write checkpoints/ may rename over or write into the
// file after its signature was checked, but not into a file with no name.
// It costs one extra write of the payload (to the page cache; it is never
// synced); see docs/CHECKPOINTS.md.
func (s *Store) Load(name string, restore func(payload *os.File, meta []byte, size int64) error) error {
	src, err := openRegular(s.Path(name))
	if err != nil {
		return err
	}
	defer src.Close()
	cp, err := privateFile(s.tmp)
	if err != nil {
		return fmt.Errorf("create load temp file: %w", err)
	}
	defer cp.Close()
	meta, size, err := s.verifyInto(src, cp)
	if err != nil {
		return err
	}
	ro, err := reopenReadOnly(cp)
	if err != nil {
		return err
	}
	if ro != cp {
		defer ro.Close()
	}
	return restore(ro, meta, size)
}

// Verify checks name's whole file as Load does, without keeping a copy. It
// returns the signed metadata and the file's size.
func (s *Store) Verify(name string) ([]byte, int64, error) {
	return s.verifyPath(s.Path(name), io.Discard)
}

func readMeta(path string) ([]byte, int64, error) {
	f, err := openRegular(path)
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
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return nil
}
