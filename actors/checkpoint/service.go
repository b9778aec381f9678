package checkpoint

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Policy says what a load does when the kernel's packages differ from the
// ones recorded at save time.
type Policy string

const (
	PolicyWarn    Policy = "warn"    // restore and report (default)
	PolicyRefuse  Policy = "refuse"  // restore nothing
	PolicyInstall Policy = "install" // pip-install the recorded versions, then restore
)

// ParsePolicy accepts "", warn, refuse and install.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "":
		return PolicyWarn, nil
	case PolicyWarn, PolicyRefuse, PolicyInstall:
		return Policy(s), nil
	}
	return "", fmt.Errorf("policy %q: give warn (restore and report), refuse or install", s)
}

// Scanner reads the whole log once at Open (infra/eventlog implements it).
type Scanner interface {
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
}

// Options wire a Service.
type Options struct {
	Dir     string // <data dir>/checkpoints
	Keys    *Keyring
	Runner  Runner
	Log     actors.Log
	Scanner Scanner // nil: the state starts empty (the directory still decides existence)
	Encrypt bool    // AES-256-GCM at rest for new checkpoints
	Logger  *slog.Logger
	Now     func() time.Time
}

// Meta describes a checkpoint. It is stored, signed, inside the file and as
// <name>.json beside it.
type Meta struct {
	Name          string    `json:"name"`
	KernelID      string    `json:"kernel_id"`
	Notebook      string    `json:"notebook,omitempty"`
	Created       time.Time `json:"created"`
	FormatVersion int       `json:"format_version"`
	KeyID         string    `json:"key_id"`
	Encrypted     bool      `json:"encrypted"`
	PayloadBytes  int64     `json:"payload_bytes"`
	SHA256        string    `json:"sha256"` // of the payload as stored
	FileBytes     int64     `json:"file_bytes,omitempty"`
	// payloadOffset is where the verified payload starts in the file (set
	// by verifyInto; not stored).
	payloadOffset int64
	Python        string            `json:"python"`
	Packages      map[string]string `json:"packages"`
	Saved         []Variable        `json:"saved"`
	Skipped       []Variable        `json:"skipped"`
}

// Metrics are counters an operator can export (e.g. as Prometheus metrics).
type Metrics struct {
	SignatureFailures   uint64        // security_signature_failures_total
	Saves, Loads        uint64        // successful
	LastSaveDuration    time.Duration // checkpoint_save_duration_seconds
	LastLoadDuration    time.Duration // checkpoint_load_duration_seconds
	LastSizeBytes       int64         // checkpoint_size_bytes
	MissingDependencies int           // missing_dependencies_count of the last load
}

// Service saves, verifies, restores, lists and deletes checkpoints. Its
// state is a fold of the checkpoint events; commands on one name are
// serialized (a second one gets ErrBusy), different names run in parallel.
//
// It is not a protoactor actor: a save or load waits seconds to minutes
// on a kernel, which must not block a mailbox. The recipe is the same:
// Decide, effect, Append (awaited), Apply.
type Service struct {
	opts Options
	tmp  string

	mu    sync.Mutex
	state State
	busy  map[string]bool

	sigFailures atomic.Uint64
	mmu         sync.Mutex
	metrics     Metrics
}

// Open prepares the directories, removes temp files a crash left behind and
// folds the checkpoint events of the log into the state.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Keys == nil || opts.Runner == nil || opts.Log == nil {
		return nil, errors.New("checkpoint: Open needs Keys, Runner and Log")
	}
	s := &Service{opts: opts, tmp: filepath.Join(opts.Dir, "tmp"), busy: map[string]bool{}}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create checkpoint dir: %w", err)
	}
	for _, d := range []string{opts.Dir, s.tmp} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("restrict %s: %w", d, err)
		}
	}
	// NB: a crash mid-save leaves only a temp file here; it was never
	// listed and the previous checkpoint of that name is untouched.
	stale, _ := os.ReadDir(s.tmp)
	for _, e := range stale {
		_ = os.Remove(filepath.Join(s.tmp, e.Name()))
	}
	if opts.Scanner != nil {
		err := opts.Scanner.Scan(ctx, 0, 0, func(e events.Event) error {
			if events.StreamKind(e.Stream) != "checkpoint" {
				return nil
			}
			if e.Payload == nil {
				if err := e.DecodePayload(); err != nil {
					return err
				}
			}
			s.state = Apply(s.state, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("recover checkpoints: %w", err)
		}
	}
	return s, nil
}

// State returns the folded state.
func (s *Service) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// SignatureFailures counts files refused by verification since Open.
func (s *Service) SignatureFailures() uint64 { return s.sigFailures.Load() }

// Metrics returns the counters.
func (s *Service) Metrics() Metrics {
	s.mmu.Lock()
	defer s.mmu.Unlock()
	m := s.metrics
	m.SignatureFailures = s.sigFailures.Load()
	return m
}

func (s *Service) path(name string) string     { return filepath.Join(s.opts.Dir, name+".ckpt") }
func (s *Service) metaPath(name string) string { return filepath.Join(s.opts.Dir, name+".json") }

func (s *Service) onDisk(name string) bool {
	_, err := os.Stat(s.path(name))
	return err == nil
}

// begin decides c and marks its name busy; end must follow.
func (s *Service) begin(name string, c Command) ([]events.Draft, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[name] {
		return nil, fmt.Errorf("%w: checkpoint %q is being saved, loaded or deleted: try again when that finishes", ErrBusy, name)
	}
	drafts, err := Decide(s.state, c)
	if err != nil {
		return nil, err
	}
	s.busy[name] = true
	return drafts, nil
}

func (s *Service) end(name string) {
	s.mu.Lock()
	delete(s.busy, name)
	s.mu.Unlock()
}

// record decides, appends (durable) and applies an outcome.
func (s *Service) record(ctx context.Context, kernel string, p events.Payload) error {
	drafts, err := Decide(s.State(), Record{Kernel: kernel, Payload: p})
	if err != nil {
		return err
	}
	return s.append(ctx, drafts)
}

func (s *Service) append(ctx context.Context, drafts []events.Draft) error {
	evs, err := s.opts.Log.Append(ctx, drafts...)
	if err != nil {
		return fmt.Errorf("append checkpoint event: %w", err)
	}
	s.mu.Lock()
	for _, e := range evs {
		s.state = Apply(s.state, e)
	}
	s.mu.Unlock()
	return nil
}

// SaveRequest asks for a checkpoint of a kernel's variables.
type SaveRequest struct {
	Name      string
	KernelID  string
	Notebook  string
	Variables []string // empty: every user global that can be saved
	Overwrite bool
}

// Save has the kernel serialize its variables with dill into a temp file,
// signs the file while streaming it (never whole in memory), and commits it
// atomically as <name>.ckpt: temp, fsync, rename, fsync of the directory.
func (s *Service) Save(ctx context.Context, req SaveRequest) (Meta, error) {
	started := s.opts.Now()
	if _, err := s.begin(req.Name, Save{Name: req.Name, Overwrite: req.Overwrite, OnDisk: s.onDisk(req.Name)}); err != nil {
		return Meta{}, err
	}
	defer s.end(req.Name)
	for _, v := range req.Variables {
		if !isIdentifier(v) {
			return Meta{}, fmt.Errorf("variable %q is not a Python identifier: give names of the kernel's globals", v)
		}
	}
	key := s.opts.Keys.Current()
	h := Header{Version: FormatVersion, KeyID: key.ID, Encrypted: s.opts.Encrypt}
	if _, err := rand.Read(h.Nonce[:]); err != nil {
		return Meta{}, fmt.Errorf("make nonce: %w", err)
	}
	hb := h.Encode()
	part, err := os.CreateTemp(s.tmp, req.Name+".*.part")
	if err != nil {
		return Meta{}, fmt.Errorf("create checkpoint temp file: %w", err)
	}
	partPath := part.Name()
	committed := false
	defer func() {
		if !committed {
			_ = os.Remove(partPath)
		}
	}()
	kernelPath := partPath
	if h.Encrypted {
		// The kernel writes plaintext to its own temp; the server encrypts
		// it into the checkpoint and removes it.
		plain, err := os.CreateTemp(s.tmp, req.Name+".*.plain")
		if err != nil {
			part.Close()
			return Meta{}, fmt.Errorf("create checkpoint plaintext temp file: %w", err)
		}
		kernelPath = plain.Name()
		plain.Close()
		defer os.Remove(kernelPath)
	} else if _, err := part.Write(hb); err != nil {
		part.Close()
		return Meta{}, fmt.Errorf("write checkpoint header: %w", err)
	}
	if err := part.Close(); err != nil {
		return Meta{}, fmt.Errorf("close checkpoint temp file: %w", err)
	}

	var res saveResult
	params := map[string]any{"path": kernelPath}
	if len(req.Variables) > 0 {
		params["variables"] = req.Variables
	}
	if err := callKernel(ctx, s.opts.Runner, req.KernelID, "save", params, &res); err != nil {
		return Meta{}, err
	}
	if len(res.Saved) == 0 {
		return Meta{}, fmt.Errorf("nothing in kernel %s could be saved (skipped: %s): define variables first, or name them in variables", req.KernelID, describeSkipped(res.Skipped))
	}

	meta := Meta{Name: req.Name, KernelID: req.KernelID, Notebook: req.Notebook, Created: started.UTC(),
		FormatVersion: FormatVersion, KeyID: key.ID, Encrypted: h.Encrypted, Python: res.Python,
		Packages: res.Packages, Saved: res.Saved, Skipped: res.Skipped}
	if meta.Skipped == nil {
		meta.Skipped = []Variable{}
	}
	size, err := s.seal(partPath, kernelPath, key, h, hb, &meta)
	if err != nil {
		return Meta{}, err
	}
	meta.FileBytes = size
	if err := os.Rename(partPath, s.path(req.Name)); err != nil {
		return Meta{}, fmt.Errorf("commit checkpoint %s: %w", req.Name, err)
	}
	committed = true
	if err := syncDir(s.opts.Dir); err != nil {
		return Meta{}, fmt.Errorf("sync checkpoint dir: %w", err)
	}
	mj, _ := json.MarshalIndent(meta, "", "  ")
	if err := writeFileAtomic(s.metaPath(req.Name), append(mj, '\n')); err != nil {
		return Meta{}, fmt.Errorf("write checkpoint metadata: %w", err)
	}
	ev := events.CheckpointSaved{Name: req.Name, KernelID: req.KernelID, Notebook: req.Notebook, File: filepath.Base(s.path(req.Name)),
		Size: size, SHA256: meta.SHA256, KeyID: key.ID, Encrypted: h.Encrypted, Saved: eventVars(res.Saved),
		Skipped: eventVars(res.Skipped), Python: res.Python, Packages: res.Packages}
	if err := s.record(ctx, req.KernelID, ev); err != nil {
		return meta, err
	}
	s.mmu.Lock()
	s.metrics.Saves++
	s.metrics.LastSaveDuration = s.opts.Now().Sub(started)
	s.metrics.LastSizeBytes = size
	s.mmu.Unlock()
	return meta, nil
}

// seal completes the temp checkpoint at partPath: payload (already after
// the header, or encrypted from plainPath), meta, footer; then fsync. It
// streams: memory use does not grow with the checkpoint.
func (s *Service) seal(partPath, plainPath string, key Key, h Header, hb []byte, meta *Meta) (int64, error) {
	f, err := os.OpenFile(partPath, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open checkpoint temp file: %w", err)
	}
	defer f.Close()
	mac, sum := key.newMAC(), sha256.New()
	mac.Write(hb)
	var payload int64
	if h.Encrypted {
		plain, err := os.Open(plainPath)
		if err != nil {
			return 0, fmt.Errorf("open checkpoint plaintext: %w", err)
		}
		defer plain.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := w.Write(hb); err != nil {
			return 0, fmt.Errorf("write checkpoint header: %w", err)
		}
		payload, err = encryptStream(io.MultiWriter(w, mac, sum), bufio.NewReaderSize(plain, 1<<20), key, h, hb)
		if err != nil {
			return 0, fmt.Errorf("encrypt checkpoint: %w", err)
		}
		if err := w.Flush(); err != nil {
			return 0, fmt.Errorf("write checkpoint: %w", err)
		}
	} else {
		got := make([]byte, len(hb))
		if _, err := io.ReadFull(f, got); err != nil || string(got) != string(hb) {
			return 0, fmt.Errorf("checkpoint temp file %s was changed while the kernel wrote it: save again", partPath)
		}
		buf := make([]byte, 1<<20)
		payload, err = io.CopyBuffer(io.MultiWriter(mac, sum), f, buf)
		if err != nil {
			return 0, fmt.Errorf("sign checkpoint: %w", err)
		}
	}
	meta.PayloadBytes = payload
	meta.SHA256 = hex.EncodeToString(sum.Sum(nil))
	mj, err := json.Marshal(meta)
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
	return int64(len(hb)) + payload + int64(len(tail)), f.Close()
}

func eventVars(vs []Variable) []events.CheckpointVariable {
	out := make([]events.CheckpointVariable, 0, len(vs))
	for _, v := range vs {
		out = append(out, events.CheckpointVariable{Name: v.Name, Type: v.Type, Size: v.Size, Reason: v.Reason})
	}
	return out
}

func describeSkipped(vs []Variable) string {
	if len(vs) == 0 {
		return "none: the kernel has no user variables"
	}
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s): %s", v.Name, v.Type, v.Reason)
	}
	return b.String()
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127 || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// LoadRequest asks to restore a checkpoint into a kernel.
type LoadRequest struct {
	Name     string
	KernelID string
	Policy   Policy
}

// LoadResult is what a load did.
type LoadResult struct {
	Meta       Meta
	Restored   []string
	Missing    []string // recorded packages the kernel lacks (name==version)
	Mismatched []string // recorded packages at another version in the kernel
	Installs   []InstallResult
	Python     string // the kernel's Python version
}

// Load verifies the checkpoint (constant-time HMAC over the whole file,
// streamed) before any of it goes near the kernel, then compares packages,
// applies the policy, and restores the variables into the kernel's globals.
func (s *Service) Load(ctx context.Context, req LoadRequest) (LoadResult, error) {
	started := s.opts.Now()
	var out LoadResult
	if req.Policy == "" {
		req.Policy = PolicyWarn
	}
	if _, err := ParsePolicy(string(req.Policy)); err != nil {
		return out, err
	}
	if _, err := s.begin(req.Name, Load{Name: req.Name, OnDisk: s.onDisk(req.Name)}); err != nil {
		return out, err
	}
	defer s.end(req.Name)
	// An unencrypted checkpoint is verified in place and the kernel reads its
	// payload from the file itself: no copy of hundreds of MB. An encrypted
	// one is decrypted, while verified, into a private temp file.
	// NB: the kernel runs as the server's user and could alter the file
	// between the check and the read; that user can read the key too (see
	// docs/CHECKPOINTS.md), so a copy would not be safer.
	path, loadPath, offset := s.path(req.Name), "", int64(0)
	encrypted, err := encryptedFile(path)
	var meta Meta
	if err == nil && !encrypted {
		meta, err = s.verifyInto(path, io.Discard)
		loadPath, offset = path, meta.payloadOffset
	} else if err == nil {
		var tmp *os.File
		tmp, err = os.CreateTemp(s.tmp, req.Name+".*.load")
		if err != nil {
			return out, fmt.Errorf("create load temp file: %w", err)
		}
		loadPath = tmp.Name()
		defer os.Remove(loadPath)
		meta, err = s.verifyInto(path, tmp)
		if cerr := tmp.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write load temp file: %w", cerr)
		}
	}
	if err != nil {
		if errors.Is(err, ErrRejected) {
			s.sigFailures.Add(1)
			s.opts.Logger.Warn("checkpoint refused", "component", "checkpoint", "name", req.Name, "kernel", req.KernelID, "err", err)
			if rerr := s.record(ctx, req.KernelID, events.CheckpointRejected{Name: req.Name, KernelID: req.KernelID, Reason: err.Error(), Signature: true}); rerr != nil {
				return out, errors.Join(err, rerr)
			}
		}
		return out, err
	}
	out.Meta = meta

	var chk checkResult
	if err := callKernel(ctx, s.opts.Runner, req.KernelID, "check", map[string]any{"packages": nonNil(meta.Packages)}, &chk); err != nil {
		return out, err
	}
	out.Missing, out.Mismatched, out.Python = chk.Missing, chk.Mismatched, chk.Python
	differs := len(chk.Missing)+len(chk.Mismatched) > 0
	switch {
	case differs && req.Policy == PolicyRefuse:
		reason := fmt.Sprintf("policy refuse: the kernel's packages differ (missing %v, mismatched %v)", chk.Missing, chk.Mismatched)
		if err := s.record(ctx, req.KernelID, events.CheckpointRejected{Name: req.Name, KernelID: req.KernelID, Reason: reason}); err != nil {
			return out, err
		}
		return out, fmt.Errorf("%w: %s: install them, or load with policy warn or install", ErrPolicy, reason)
	case differs && req.Policy == PolicyInstall:
		var reqs []string
		reqs = append(reqs, chk.Missing...)
		for _, m := range chk.Mismatched {
			dist, _, _ := strings.Cut(m, ":")
			reqs = append(reqs, dist+"=="+meta.Packages[dist])
		}
		var inst installResult
		if err := callKernel(ctx, s.opts.Runner, req.KernelID, "install", map[string]any{"packages": reqs}, &inst); err != nil {
			return out, err
		}
		out.Installs = inst.Results
	}

	var lr loadResult
	if err := callKernel(ctx, s.opts.Runner, req.KernelID, "load", map[string]any{"path": loadPath, "offset": offset}, &lr); err != nil {
		return out, err
	}
	out.Restored = lr.Restored
	var installed []string
	for _, r := range out.Installs {
		if r.OK {
			installed = append(installed, r.Package)
		}
	}
	ev := events.CheckpointLoaded{Name: req.Name, KernelID: req.KernelID, Restored: lr.Restored, Missing: chk.Missing,
		Mismatched: chk.Mismatched, Policy: string(req.Policy), Installed: installed}
	if err := s.record(ctx, req.KernelID, ev); err != nil {
		return out, err
	}
	s.mmu.Lock()
	s.metrics.Loads++
	s.metrics.LastLoadDuration = s.opts.Now().Sub(started)
	s.metrics.MissingDependencies = len(chk.Missing)
	s.mmu.Unlock()
	return out, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Verify checks a checkpoint file without restoring it.
func (s *Service) Verify(name string) (Meta, error) {
	if err := ValidName(name); err != nil {
		return Meta{}, err
	}
	m, err := s.verifyInto(s.path(name), io.Discard)
	if errors.Is(err, ErrRejected) {
		s.sigFailures.Add(1)
	}
	return m, err
}

// verifyInto streams the checkpoint at path through its HMAC and writes the
// (decrypted) payload to w. The result may be used only when the error is
// nil: until the final constant-time comparison w holds unverified bytes.
func (s *Service) verifyInto(path string, w io.Writer) (Meta, error) {
	var meta Meta
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return meta, fmt.Errorf("%w: no checkpoint file %s: list_checkpoints shows the names", ErrNotFound, filepath.Base(path))
		}
		return meta, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return meta, fmt.Errorf("stat checkpoint: %w", err)
	}
	size := fi.Size()
	hbuf := make([]byte, min(int64(maxHeader), size))
	if _, err := io.ReadFull(f, hbuf); err != nil {
		return meta, fmt.Errorf("read checkpoint header: %w", err)
	}
	h, hlen, err := ParseHeader(hbuf)
	if err != nil {
		return meta, err
	}
	if size < int64(hlen)+footerSize {
		return meta, reject("the file was cut short (an interrupted copy?)", "truncated: %d bytes is too short for a checkpoint", size)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, size-footerSize); err != nil {
		return meta, fmt.Errorf("read checkpoint footer: %w", err)
	}
	foot, err := ParseFooter(fb)
	if err != nil {
		return meta, err
	}
	if err := layout(hlen, foot, size); err != nil {
		return meta, err
	}
	key, ok := s.opts.Keys.Lookup(h.KeyID)
	if !ok {
		return meta, reject("restore that key into checkpoint-keys/ or set MCP_CHECKPOINT_SECRET to the secret that signed it",
			"signed with key %s, which this server does not have (rotated away, or from another server)", h.KeyID)
	}
	mac := key.newMAC()
	mac.Write(hbuf[:hlen])
	payload := io.TeeReader(io.NewSectionReader(f, int64(hlen), int64(foot.PayloadLen)), mac)
	bw := bufio.NewWriterSize(w, 1<<20)
	if h.Encrypted {
		if err := decryptStream(bw, bufio.NewReaderSize(payload, 1<<20), foot.PayloadLen, key, h, hbuf[:hlen]); err != nil {
			return meta, err
		}
	} else if _, err := io.CopyBuffer(bw, payload, make([]byte, 1<<20)); err != nil {
		return meta, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return meta, fmt.Errorf("copy checkpoint payload: %w", err)
	}
	mb := make([]byte, foot.MetaLen)
	if _, err := f.ReadAt(mb, int64(hlen)+int64(foot.PayloadLen)); err != nil {
		return meta, fmt.Errorf("read checkpoint metadata: %w", err)
	}
	mac.Write(mb)
	mac.Write(foot.encodeFields())
	if !macEqual(mac.Sum(nil), foot.MAC[:]) {
		return meta, reject("the file was altered after it was written, or signed with another secret under the same key id",
			"signature mismatch")
	}
	if err := json.Unmarshal(mb, &meta); err != nil {
		// Signed but unreadable: a bug of the writer, not tampering.
		return meta, fmt.Errorf("decode checkpoint metadata: %w", err)
	}
	meta.FileBytes = size
	meta.payloadOffset = int64(hlen)
	return meta, nil
}

// encrypted reports whether the checkpoint file at path is encrypted, from
// its header alone (nothing is trusted until verifyInto).
func encryptedFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("%w: no checkpoint file %s: list_checkpoints shows the names", ErrNotFound, filepath.Base(path))
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

// List returns every committed checkpoint, by name, from the signed
// metadata in each file (not verified: load verifies). Temp files of a save
// in progress or of a crash are never listed.
func (s *Service) List() ([]Meta, error) {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []Meta
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ckpt")
		if !ok || e.IsDir() || ValidName(name) != nil {
			continue
		}
		m, err := readMeta(filepath.Join(s.opts.Dir, e.Name()))
		if err != nil {
			m = Meta{Name: name, Skipped: []Variable{{Name: "*", Reason: "unreadable: " + err.Error()}}}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readMeta(path string) (Meta, error) {
	var m Meta
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return m, err
	}
	if fi.Size() < footerSize {
		return m, reject("", "truncated")
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, fi.Size()-footerSize); err != nil {
		return m, err
	}
	foot, err := ParseFooter(fb)
	if err != nil {
		return m, err
	}
	at := fi.Size() - footerSize - int64(foot.MetaLen)
	if at < 0 {
		return m, reject("", "truncated")
	}
	mb := make([]byte, foot.MetaLen)
	if _, err := f.ReadAt(mb, at); err != nil {
		return m, err
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return m, err
	}
	m.FileBytes = fi.Size()
	return m, nil
}

// Delete removes a checkpoint's files and records CheckpointDeleted.
func (s *Service) Delete(ctx context.Context, name string) error {
	drafts, err := s.begin(name, Delete{Name: name, OnDisk: s.onDisk(name)})
	if err != nil {
		return err
	}
	defer s.end(name)
	for _, p := range []string{s.path(name), s.metaPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete checkpoint %s: %w", name, err)
		}
	}
	if err := syncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return s.append(ctx, drafts)
}
