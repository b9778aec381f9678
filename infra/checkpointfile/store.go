package checkpointfile

import (
	"bufio"
	"bytes"
	"crypto/rand"
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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

// Store is the directory of checkpoint files: <dir>/<name>.ckpt (signed,
// optionally encrypted), <name>.json beside it (the metadata, for people),
// and <dir>/tmp for saves and loads in progress. actors/checkpoint declares
// what it needs of it (checkpoint.Files); Store implements it. Safe for
// concurrent use on different names; the actor serializes commands on one.
//
// NB: no kernel is ever given a path under dir, nor a descriptor of a file
// in it. A save hands the kernel the write end of a pipe (see Stage), a
// load the read end of a pipe carrying checked chunks, or for a format 1
// file a private unlinked copy of the verified payload (see Load): what
// was checked is what the kernel unpickles, whoever writes the directory
// meanwhile.
type Store struct {
	dir, tmp string
	keys     *Keyring
	encrypt  bool
	// keepFree is the free space a save leaves on tmp's file system
	// (KeepFree); keepFreeSetting names what sets it, for errors.
	keepFree        uint64
	keepFreeSetting string
}

// KeepFree makes every save stop, before the disk does, once its staging
// file would leave less than n bytes free on the checkpoint directory's
// file system (0: the disk's own limit only). setting names what sets n
// (for example "--min-free-disk"), for the error. Call it before any save.
func (s *Store) KeepFree(n uint64, setting string) {
	s.keepFree, s.keepFreeSetting = n, setting
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

// Stage is one save in progress: the kernel writes its framed dill stream
// into KernelFile (a pipe), a goroutine of the stage tags each chunk as it
// completes and writes it after the header (format version 2: hashing
// while the kernel pickles), then Seal adds the tags, the metadata and the
// footer and commits the file.
type Stage struct {
	s    *Store
	name string
	key  Key
	h    Header
	hb   []byte
	part *os.File // becomes <name>.ckpt; only the server has it
	// kernel is the pipe's write end, handed to the kernel; in is the
	// server's read end, read by the ingest goroutine.
	kernel, in *os.File
	w          *chunkWriter
	ingested   chan struct{}
	// failed is closed once ingestErr is set to an error and before in
	// is closed: whoever saw the kernel's write fail (EPIPE) after that
	// can read ingestErr, the real cause (a full disk, say).
	failed    chan struct{}
	ingestErr error
	closeOnce sync.Once
	done      bool
}

// sealWait bounds how long Seal waits for the rest of the kernel's stream
// once the kernel's code has returned (it sent its end mark before that).
const sealWait = 10 * time.Second

// Stage creates the staging file of a save of name and starts reading the
// kernel's stream. The staging file never grows past maxBytes (≤ 0: no
// bound of the caller's; an owner's quota left, say) nor past the room
// above KeepFree: the save fails at that point with a *TooLargeError, and
// the kernel's next write fails at once.
func (s *Store) Stage(name string, maxBytes int64) (*Stage, error) {
	key := s.keys.Current()
	st := &Stage{s: s, name: name, key: key, h: Header{Version: FormatVersion, KeyID: key.ID, Encrypted: s.encrypt},
		ingested: make(chan struct{}), failed: make(chan struct{})}
	if _, err := rand.Read(st.h.FileID[:]); err != nil {
		return nil, fmt.Errorf("make file id: %w", err)
	}
	st.hb = st.h.Encode()
	sealer, err := newChunkSealer(key, st.h)
	if err != nil {
		return nil, err
	}
	part, err := os.CreateTemp(s.tmp, name+".*.part")
	if err != nil {
		return nil, fmt.Errorf("create checkpoint temp file: %w", err)
	}
	st.part = part
	if _, err := part.Write(st.hb); err != nil {
		part.Close()
		os.Remove(part.Name())
		return nil, fmt.Errorf("write checkpoint header: %w", err)
	}
	st.in, st.kernel, err = newPipe(true)
	if err != nil {
		part.Close()
		os.Remove(part.Name())
		return nil, err
	}
	st.w = newChunkWriter(part, int64(len(st.hb)), sealer)
	st.w.limit = s.stageLimit(maxBytes)
	go func() {
		defer close(st.ingested)
		err := ingest(bufio.NewReaderSize(st.in, 64<<10), st.w)
		if err == nil {
			return
		}
		st.ingestErr = err
		close(st.failed)
		// NB: nobody reads the pipe any more: close the read end so the
		// kernel's next write fails at once (EPIPE) instead of blocking
		// once the pipe is full until the save's timeout.
		_ = st.in.Close()
	}()
	return st, nil
}

// TooLargeError: a save's staging file would have passed its limit (see
// Stage). Quota tells which limit: the caller's (true) or the disk's room.
type TooLargeError struct {
	Limit   int64
	Quota   bool
	Setting string // what sets the disk's room (KeepFree)
}

// QuotaExceeded reports whether the caller's bound (the owner's quota) was
// the one passed.
func (e *TooLargeError) QuotaExceeded() bool { return e.Quota }

func (e *TooLargeError) Error() string {
	if e.Quota {
		return fmt.Sprintf("the checkpoint grew past %d bytes, what its owner's checkpoint quota has left: "+
			"delete_checkpoint some checkpoints (list_checkpoints shows them), save fewer variables, or ask an admin to raise the limit; nothing was saved", e.Limit)
	}
	return fmt.Sprintf("the checkpoint grew past %d bytes, the free space on the checkpoint directory's disk above %s: "+
		"free disk space or save fewer variables; nothing was saved", e.Limit, e.Setting)
}

// stageLimit is the bound of a staging file: maxBytes, and the free space
// of tmp's file system above keepFree.
func (s *Store) stageLimit(maxBytes int64) *TooLargeError {
	var lim *TooLargeError
	if maxBytes > 0 {
		lim = &TooLargeError{Limit: maxBytes, Quota: true}
	}
	if s.keepFree == 0 {
		return lim
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.tmp, &fs); err != nil {
		return lim // NB: the disk's own ENOSPC still stops the save
	}
	room := int64(0)
	if free := fs.Bavail * uint64(fs.Bsize); free > s.keepFree {
		room = int64(min(free-s.keepFree, 1<<62))
	}
	if lim == nil || room < lim.Limit {
		lim = &TooLargeError{Limit: room, Setting: s.keepFreeSetting}
	}
	return lim
}

// KernelFile is the pipe the kernel writes its framed dill stream to (see
// ingest). The kernel gets a descriptor of it; it never sees the file.
func (st *Stage) KernelFile() *os.File { return st.kernel }

// stopIngest closes the server's ends of the pipe and waits for the ingest
// goroutine (a closed read end ends its read at once).
func (st *Stage) stopIngest() {
	st.closeOnce.Do(func() {
		_ = st.kernel.Close()
		_ = st.in.Close()
		<-st.ingested
	})
}

// Abort stops reading the kernel's stream, closes the stage's file and
// removes it (a no-op for the committed file after a successful Seal).
func (st *Stage) Abort() {
	st.stopIngest()
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
	// SHA256 identifies the content: in format 2 the SHA-256 of the
	// chunk tags (which authenticate every chunk under a key of this
	// file's own); in format 1 it was the payload's.
	SHA256 string
}

// Seal completes the checkpoint: it waits for the kernel's stream to end
// (bounded by sealWait), writes the last chunk, the tags, the metadata
// meta returns (a JSON object) and the footer; fsyncs; renames to
// <name>.ckpt (the commit point); fsyncs the directory; then writes
// <name>.json. Memory use does not grow with the checkpoint. It returns
// the file's size.
//
// NB: the kernel may keep its end of the pipe and write after this:
// nobody reads it any more, and the file is the server's alone.
func (st *Stage) Seal(meta func(Sealed) ([]byte, error)) (int64, error) {
	defer st.Abort()
	// The kernel's code has returned: its end mark is in the pipe. Close
	// the server's copy of the write end and bound the wait for the rest.
	_ = st.kernel.Close()
	_ = st.in.SetReadDeadline(time.Now().Add(sealWait))
	<-st.ingested
	if st.ingestErr != nil {
		return 0, fmt.Errorf("receive checkpoint from the kernel: %w", st.ingestErr)
	}
	payload, tags, err := st.w.Finish()
	if err != nil {
		return 0, err
	}
	sum := tableSum(tags)
	mj, err := meta(Sealed{KeyID: st.key.ID, Encrypted: st.h.Encrypted, FormatVersion: FormatVersion,
		PayloadBytes: int64(payload), SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return 0, fmt.Errorf("encode checkpoint metadata: %w", err)
	}
	foot := Footer{MetaLen: uint32(len(mj)), PayloadLen: payload}
	tail := append(append(append([]byte(nil), tags...), mj...), foot.encodeFields()...)
	mac := st.key.newMAC()
	mac.Write(st.hb)
	mac.Write(tail)
	tail = mac.Sum(tail)
	f := st.part
	at := int64(len(st.hb)) + int64(payload)
	size := at + int64(len(tail))
	if _, err := f.WriteAt(tail, at); err != nil {
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
// payload to w. Until it returns nil, w may hold bytes of a file that is
// refused in the end (format 1: all of them; format 2: the chunks before
// the first one that fails; each chunk written was checked).
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
	o, err := s.openFile(f)
	if err != nil {
		return nil, 0, err
	}
	if o.h.Version == 1 {
		return s.verifyV1(f, o, w)
	}
	l, err := o.list(f)
	if err != nil {
		return nil, 0, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := l.stream(f, bw); err != nil {
		return nil, 0, err
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	return l.meta, o.size, nil
}

// opened is a checkpoint file whose header and footer parsed and whose key
// this server has.
type opened struct {
	h    Header
	hb   []byte
	foot Footer
	key  Key
	size int64
}

// openFile reads the header and footer of the checkpoint open in f and
// looks up its key. Every read goes through f.
func (s *Store) openFile(f *os.File) (opened, error) {
	var o opened
	fi, err := f.Stat()
	if err != nil {
		return o, fmt.Errorf("stat checkpoint: %w", err)
	}
	o.size = fi.Size()
	hbuf := make([]byte, min(int64(maxHeader), o.size))
	if _, err := f.ReadAt(hbuf, 0); err != nil {
		return o, fmt.Errorf("read checkpoint header: %w", err)
	}
	h, hlen, err := ParseHeader(hbuf)
	if err != nil {
		return o, err
	}
	o.h, o.hb = h, hbuf[:hlen]
	if o.size < int64(hlen)+footerSize {
		return o, reject("the file was cut short (an interrupted copy?)", "truncated: %d bytes is too short for a checkpoint", o.size)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, o.size-footerSize); err != nil {
		return o, fmt.Errorf("read checkpoint footer: %w", err)
	}
	if o.foot, err = ParseFooter(fb); err != nil {
		return o, err
	}
	key, ok := s.keys.Lookup(h.KeyID)
	if !ok {
		return o, reject("restore that key into checkpoint-keys/ or set MCP_CHECKPOINT_SECRET to the secret that signed it",
			"signed with key %s, which this server does not have (rotated away, or from another server)", h.KeyID)
	}
	o.key = key
	return o, nil
}

// list verifies a version 2 file's tags and metadata (not its chunks).
func (o opened) list(f *os.File) (*list, error) {
	l, err := verifyList(f, o.key, o.h, o.hb, o.foot, o.size)
	if err != nil {
		return nil, err
	}
	if !json.Valid(l.meta) {
		// Signed but unreadable: a bug of the writer, not tampering.
		return nil, errors.New("decode checkpoint metadata: not JSON")
	}
	if err := agrees(l.meta, o.h, o.foot); err != nil {
		return nil, err
	}
	return l, nil
}

// verifyV1 streams the format 1 checkpoint open in f through its HMAC and
// writes the (decrypted) payload to w. Every byte is read once, through f:
// the bytes written to w, the metadata returned and the bytes the MAC
// covered are the same bytes, whatever happens to the file meanwhile. It
// returns the metadata and the file's size.
func (s *Store) verifyV1(f *os.File, o opened, w io.Writer) ([]byte, int64, error) {
	h, hbuf, foot, key, size := o.h, o.hb, o.foot, o.key, o.size
	hlen := len(hbuf)
	if err := layout(hlen, foot, size); err != nil {
		return nil, 0, err
	}
	mac := key.newMAC()
	mac.Write(hbuf)
	payload := io.TeeReader(io.NewSectionReader(f, int64(hlen), int64(foot.PayloadLen)), mac)
	bw := bufio.NewWriterSize(w, 1<<20)
	if h.Encrypted {
		if err := decryptStream(bw, bufio.NewReaderSize(payload, 1<<20), foot.PayloadLen, key, h, hbuf); err != nil {
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

// Save stages a save of name (its file bounded by maxBytes, see Stage), runs dump with the pipe the kernel writes
// its framed dill stream to (see ingest; the kernel gets a descriptor of
// it), then seals and commits it (see Seal); meta gets the key id, whether
// the payload is encrypted, the payload's length and the content's sha256
// (see Sealed), and returns the metadata JSON. It returns the file's size. On
// error nothing is committed and the temp files are gone.
func (s *Store) Save(name string, maxBytes int64, dump func(stage *os.File) error,
	meta func(keyID string, encrypted bool, payloadBytes int64, sha256 string) ([]byte, error)) (int64, error) {
	st, err := s.Stage(name, maxBytes)
	if err != nil {
		return 0, err
	}
	defer st.Abort()
	if err := dump(st.KernelFile()); err != nil {
		select {
		case <-st.failed:
			// The kernel's write failed because the server stopped
			// reading: the server's reason is the one to report.
			hint := ""
			if errors.Is(st.ingestErr, syscall.ENOSPC) {
				hint = "; the checkpoint directory's disk is full: free space on it or save fewer variables; nothing was saved"
			}
			return 0, fmt.Errorf("receive checkpoint from the kernel: %w%s (the kernel then reported: %v)", st.ingestErr, hint, err)
		default:
			return 0, err
		}
	}
	return st.Seal(func(x Sealed) ([]byte, error) { return meta(x.KeyID, x.Encrypted, x.PayloadBytes, x.SHA256) })
}

// Load opens name's file once (no-follow, non-blocking; only a regular file
// is read) and runs restore with a read-only descriptor that yields the
// payload, the signed metadata and the file's size. The descriptor is never
// the stored file. A refusal is a *RejectError; a missing file wraps
// fs.ErrNotExist.
//
// Format 2: the header, the chunk tags and the metadata are checked against
// the HMAC before restore runs (a refusal then: restore does not run);
// restore gets the read end of a pipe into which a goroutine of Load writes
// each chunk once it has read it through Load's descriptor and checked it
// against its tag. A chunk that fails ends the stream before any of its
// bytes are written, and Load returns that refusal (unless restore itself
// refused the file first, by its metadata). The file is read once; nothing
// is copied to disk.
//
// Format 1: all of the file is verified through that descriptor while the
// (decrypted) payload is copied into a private unlinked file under tmp/,
// and restore gets that copy. The copy is gone when Load returns.
//
// NB: what restore reads is only ever bytes that were checked after they
// were read: a kernel, another tenant of the volume or anyone else who can
// write checkpoints/ may rename over the file or write into it meanwhile;
// a rename changes nothing Load reads, a write in place fails a tag.
func (s *Store) Load(name string, restore func(payload *os.File, meta []byte, size int64) error) error {
	src, err := openRegular(s.Path(name))
	if err != nil {
		return err
	}
	defer src.Close()
	o, err := s.openFile(src)
	if err != nil {
		return err
	}
	if o.h.Version == 1 {
		return s.loadV1(src, o, restore)
	}
	l, err := o.list(src)
	if err != nil {
		return err
	}
	out, in, err := newPipe(false)
	if err != nil {
		return err
	}
	streamed := make(chan error, 1)
	go func() {
		err := l.stream(src, out)
		_ = out.Close()
		streamed <- err
	}()
	rerr := restore(in, l.meta, o.size)
	_ = in.Close()
	// NB: a reader that stopped early (a refusal by policy, a kernel that
	// died) must not leave the writer blocked: the kernel may still hold
	// its copy of the read end.
	_ = out.SetWriteDeadline(time.Now())
	serr := <-streamed
	if rejected(rerr) {
		return rerr // refused before the kernel read (name, rollback)
	}
	if serr != nil && rejected(serr) {
		return serr
	}
	return rerr
}

// rejected reports whether err is a refusal of the file.
func rejected(err error) bool {
	var r interface{ Rejected() bool }
	return errors.As(err, &r) && r.Rejected()
}

// loadV1 is Load of a format 1 file: verified whole into a private copy.
func (s *Store) loadV1(src *os.File, o opened, restore func(payload *os.File, meta []byte, size int64) error) error {
	cp, err := privateFile(s.tmp)
	if err != nil {
		return fmt.Errorf("create load temp file: %w", err)
	}
	defer cp.Close()
	meta, size, err := s.verifyV1(src, o, cp)
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
