package checkpointfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// frame kinds as kernel.py writes them.
func dataFrame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{frameData}, uint32(len(b))), b...)
}
func cutFrame(off uint64) []byte { return binary.BigEndian.AppendUint64([]byte{frameTruncate}, off) }

var endFrame = []byte{frameEnd}

// saveStream drives a real save the way the kernel does: stream is written
// into the stage's pipe by another goroutine (the kernel's side), then the
// stage is sealed. It returns Seal's error.
func saveStream(t testing.TB, s *Store, name string, stream []byte) (int64, error) {
	t.Helper()
	st, err := s.Stage(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()
	// The kernel gets its own descriptor of the write end (a dup, as
	// SCM_RIGHTS gives it); the server's copy is closed by Seal.
	kfd, err := dupFile(st.KernelFile())
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := kfd.Write(stream)
		kfd.Close()
		wrote <- err
	}()
	size, err := st.Seal(func(x Sealed) ([]byte, error) {
		return []byte(fmt.Sprintf(`{"name":%q,"key_id":%q,"encrypted":%v,"format_version":%d,"payload_bytes":%d,"sha256":%q}`,
			name, x.KeyID, x.Encrypted, x.FormatVersion, x.PayloadBytes, x.SHA256)), nil
	})
	if werr := <-wrote; werr != nil && err == nil {
		t.Fatalf("kernel side: %v", werr)
	}
	return size, err
}

func dupFile(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	var derr error
	_ = sc.Control(func(fd uintptr) {
		var nfd int
		nfd, derr = dupCloexec(int(fd))
		if derr == nil {
			nf = os.NewFile(uintptr(nfd), "kernel-end")
		}
	})
	return nf, derr
}

func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// saveV2 saves payload in frames of random sizes.
func saveV2(t testing.TB, s *Store, name string, payload []byte) []byte {
	t.Helper()
	var stream []byte
	r := rand.New(rand.NewPCG(1, 2))
	for rest := payload; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(3<<20))
		stream = append(stream, dataFrame(rest[:n])...)
		rest = rest[n:]
	}
	stream = append(stream, endFrame...)
	if _, err := saveStream(t, s, name, stream); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newStore(t testing.TB, encrypt bool) *Store {
	t.Helper()
	keys, err := OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir(), keys, encrypt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loadAll loads name and returns what restore read and Load's error.
func loadAll(s *Store, name string) ([]byte, error) {
	var got []byte
	err := s.Load(name, func(f *os.File, _ []byte, _ int64) error {
		var err error
		got, err = io.ReadAll(f)
		return err
	})
	return got, err
}

func randomPayload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestFormat2RoundTrip: a save streamed in frames loads back byte for
// byte, plain and encrypted, through Load (a pipe) and Verify; an
// encrypted file holds no plaintext; the metadata's sha256 differs between
// two saves of the same bytes (it names the file, not only the content).
func TestFormat2RoundTrip(t *testing.T) {
	for _, enc := range []bool{false, true} {
		s := newStore(t, enc)
		payload := randomPayload(3*chunkSize + 12345)
		copy(payload, "dill stream marker")
		b := saveV2(t, s, "x", payload)
		if h, _, err := ParseHeader(b); err != nil || h.Version != 2 || h.Encrypted != enc {
			t.Fatalf("header %+v %v", h, err)
		}
		got, err := loadAll(s, "x")
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("encrypted=%v: load: %v (%d bytes)", enc, err, len(got))
		}
		meta, _, err := s.Verify("x")
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if enc == bytes.Contains(b, []byte("dill stream marker")) {
			t.Fatalf("encrypted=%v: plaintext in the file: %v", enc, !enc)
		}
		saveV2(t, s, "y", payload)
		meta2, _, _ := s.Verify("y")
		if sumOf(meta) == sumOf(meta2) || len(sumOf(meta)) != 64 {
			t.Fatalf("sha256 %q and %q", sumOf(meta), sumOf(meta2))
		}
		if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
			t.Fatalf("temp files left: %v", ents)
		}
	}
}

func sumOf(meta []byte) string {
	i := bytes.Index(meta, []byte(`"sha256":"`))
	if i < 0 {
		return ""
	}
	rest := meta[i+10:]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// TestFormat2Cuts: the kernel cuts the stream back when a variable fails to
// pickle half way — within the chunk being filled and back across chunks
// already tagged and written — and the file holds exactly what was kept.
func TestFormat2Cuts(t *testing.T) {
	for _, enc := range []bool{false, true} {
		s := newStore(t, enc)
		a, b, c := randomPayload(chunkSize/2), randomPayload(2*chunkSize+77), randomPayload(chunkSize+5)
		var stream []byte
		stream = append(stream, dataFrame(a)...)
		stream = append(stream, dataFrame(c[:1000])...)
		stream = append(stream, cutFrame(uint64(len(a)))...) // within the open chunk
		stream = append(stream, dataFrame(b)...)
		stream = append(stream, dataFrame(c)...)
		stream = append(stream, cutFrame(uint64(len(a)+len(b)))...) // back across a written chunk
		stream = append(stream, dataFrame(c[:10])...)
		stream = append(stream, endFrame...)
		if _, err := saveStream(t, s, "cut", stream); err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte(nil), a...), b...), c[:10]...)
		got, err := loadAll(s, "cut")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("encrypted=%v: %v, %d bytes, want %d", enc, err, len(got), len(want))
		}
		// The chunks sealed again after the cut back into written ones
		// carry a new epoch (a new nonce); those before it the first.
		file, _ := os.ReadFile(s.Path("cut"))
		at := tagsAt(t, file)
		cutChunk := (len(a) + len(b)) / chunkSize
		for i := 0; i*chunkSize < len(want); i++ {
			epoch := binary.BigEndian.Uint32(file[at+i*entrySize:])
			if wantEpoch := map[bool]uint32{true: 1, false: 0}[i >= cutChunk]; epoch != wantEpoch {
				t.Fatalf("encrypted=%v: chunk %d sealed in epoch %d, want %d", enc, i, epoch, wantEpoch)
			}
		}
	}
}

// TestFormat2MalformedStreams: a kernel that sends a malformed stream, or
// stops before its end mark, gets nothing committed and leaves nothing.
func TestFormat2MalformedStreams(t *testing.T) {
	s := newStore(t, false)
	for name, stream := range map[string][]byte{
		"no-end":        dataFrame([]byte("abc")),
		"unknown-frame": append(dataFrame([]byte("abc")), 'X'),
		"empty-frame":   append(binary.BigEndian.AppendUint32([]byte{frameData}, 0), endFrame...),
		"huge-frame":    binary.BigEndian.AppendUint32([]byte{frameData}, maxFrame+1),
		"short-frame":   binary.BigEndian.AppendUint32([]byte{frameData}, 100),
		"cut-forward":   append(append(dataFrame([]byte("abc")), cutFrame(4)...), endFrame...),
		"cut-short":     append(dataFrame([]byte("abc")), frameTruncate, 0),
		"nothing":       nil,
	} {
		if _, err := saveStream(t, s, name, stream); err == nil {
			t.Errorf("%s: sealed", name)
		}
		if s.Exists(name) {
			t.Errorf("%s: committed", name)
		}
	}
	if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

// chunkAt returns the offset of chunk i in a format 2 file.
func chunkAt(t testing.TB, b []byte, i int) int {
	t.Helper()
	_, hlen, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return hlen + i*chunkSize
}

// tagsAt returns the offset of the tag list of a format 2 file.
func tagsAt(t testing.TB, b []byte) int {
	t.Helper()
	_, hlen, _ := ParseHeader(b)
	foot, err := ParseFooter(b[len(b)-footerSize:])
	if err != nil {
		t.Fatal(err)
	}
	return hlen + int(foot.PayloadLen)
}

// TestFormat2DamageRefused: a flipped byte anywhere, a truncation, chunks
// or tags reordered, a chunk of another file (same key, same place): each
// is refused. A damaged chunk k is refused before any byte of it is handed
// out: the reader gets exactly chunks 0..k-1 and then the end.
func TestFormat2DamageRefused(t *testing.T) {
	for _, enc := range []bool{false, true} {
		s := newStore(t, enc)
		payload := randomPayload(4*chunkSize + 999)
		good := saveV2(t, s, "good", payload)
		otherPayload := randomPayload(len(payload))
		for i := range otherPayload {
			otherPayload[i] ^= 0x5a
		}
		other := saveV2(t, s, "other", otherPayload)
		tags := tagsAt(t, good)
		put := func(name string, b []byte) {
			t.Helper()
			if err := os.WriteFile(s.Path(name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// A flipped byte in chunk k: nothing of chunk k reaches the reader.
		for _, k := range []int{0, 2, 4} {
			b := append([]byte(nil), good...)
			b[chunkAt(t, b, k)+chunkSize/3%chunkLen(uint64(len(payload)), uint64(k))] ^= 0x20
			put("flip", b)
			got, err := loadAll(s, "flip")
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), fmt.Sprintf("chunk %d of 5 fails authentication", k)) {
				t.Fatalf("encrypted=%v flip in chunk %d: %v", enc, k, err)
			}
			if !bytes.Equal(got, payload[:k*chunkSize]) {
				t.Fatalf("encrypted=%v flip in chunk %d: the reader got %d bytes, want exactly the %d before chunk %d", enc, k, len(got), k*chunkSize, k)
			}
		}
		swapped := func(b []byte, at, size, i, j int) []byte {
			b = append([]byte(nil), b...)
			x := append([]byte(nil), b[at+i*size:at+(i+1)*size]...)
			copy(b[at+i*size:], b[at+j*size:at+(j+1)*size])
			copy(b[at+j*size:], x)
			return b
		}
		fromOther := append([]byte(nil), good...)
		copy(fromOther[chunkAt(t, good, 1):chunkAt(t, good, 2)], other[chunkAt(t, other, 1):chunkAt(t, other, 2)])
		cases := map[string]struct {
			b      []byte
			reason string
			before int // bytes the reader may get before the refusal
		}{
			"chunks-reordered":   {swapped(good, chunkAt(t, good, 0), chunkSize, 1, 2), "chunk 1 of 5 fails", chunkSize},
			"tags-reordered":     {swapped(good, tags, entrySize, 1, 2), "signature mismatch", 0},
			"tag-flipped":        {func() []byte { b := append([]byte(nil), good...); b[tags+20] ^= 1; return b }(), "signature mismatch", 0},
			"chunk-of-another":   {fromOther, "chunk 1 of 5 fails", chunkSize},
			"tag-list-truncated": {append(append([]byte(nil), good[:tags+entrySize*4]...), good[tags+entrySize*5:]...), "truncated", 0},
			"last-chunk-dropped": {append(append([]byte(nil), good[:chunkAt(t, good, 4)]...), good[tags:]...), "truncated", 0},
			"cut-short":          {good[:len(good)-1], "truncated", 0},
			"header-flipped":     {func() []byte { b := append([]byte(nil), good...); b[chunkAt(t, b, 0)-1] ^= 1; return b }(), "signature mismatch", 0},
			"meta-flipped":       {func() []byte { b := append([]byte(nil), good...); b[len(b)-footerSize-3] ^= 1; return b }(), "signature mismatch", 0},
			"mac-flipped":        {func() []byte { b := append([]byte(nil), good...); b[len(b)-1] ^= 1; return b }(), "signature mismatch", 0},
			"version-1-claimed":  {func() []byte { b := append([]byte(nil), good...); b[9] = 1; return b }(), "", 0},
		}
		for name, c := range cases {
			put("bad", c.b)
			got, err := loadAll(s, "bad")
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("encrypted=%v %s: %v, want a refusal with %q", enc, name, err, c.reason)
			}
			if !bytes.Equal(got, payload[:min(len(got), c.before)]) || len(got) > c.before {
				t.Errorf("encrypted=%v %s: the reader got %d bytes (at most %d checked ones allowed)", enc, name, len(got), c.before)
			}
		}
	}
}

// TestFormat2LoadRaces: while restore reads, the file is renamed over (the
// load reads its own descriptor: the genuine payload) or written in place
// (the chunk written fails its tag: refused; nothing unchecked handed out).
func TestFormat2LoadRaces(t *testing.T) {
	s := newStore(t, false)
	payload := randomPayload(3 * chunkSize)
	good := saveV2(t, s, "x", payload)
	var got []byte
	err := s.Load("x", func(f *os.File, _ []byte, _ int64) error {
		if err := os.WriteFile(s.Path("x")+".tmp", []byte("EVIL"), 0o600); err != nil {
			return err
		}
		if err := os.Rename(s.Path("x")+".tmp", s.Path("x")); err != nil {
			return err
		}
		if _, err := f.Write([]byte("x")); err == nil {
			t.Error("the descriptor handed out is writable")
		}
		var err error
		got, err = io.ReadAll(f)
		return err
	})
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("renamed over during the load: %v, %d bytes", err, len(got))
	}
	if err := os.WriteFile(s.Path("x"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Load("x", func(f *os.File, _ []byte, _ int64) error {
		w, err := os.OpenFile(s.Path("x"), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer w.Close()
		// Past what the pipe can hold ahead of the reader.
		if _, err := w.WriteAt(bytes.Repeat([]byte("EVIL"), 1000), int64(chunkAt(t, good, 2))+10); err != nil {
			return err
		}
		got, err = io.ReadAll(f)
		return err
	})
	if !errors.Is(err, ErrRejected) || !bytes.Equal(got, payload[:len(got)]) || len(got) > 2*chunkSize {
		t.Fatalf("written in place during the load: %v, %d bytes handed out", err, len(got))
	}
}

// TestFormat2ReaderStopsEarly: a restore that returns without reading (a
// package policy refusal, a kernel that died) does not leave Load waiting.
func TestFormat2ReaderStopsEarly(t *testing.T) {
	s := newStore(t, false)
	saveV2(t, s, "x", randomPayload(5*chunkSize))
	want := errors.New("refused by policy")
	if err := s.Load("x", func(*os.File, []byte, int64) error { return want }); err != want {
		t.Fatalf("load: %v", err)
	}
	// A refusal by the metadata (a renamed copy) is the answer even when
	// the stream, read ahead, found a damaged chunk meanwhile.
	b, _ := os.ReadFile(s.Path("x"))
	b[chunkAt(t, b, 0)] ^= 1
	if err := os.WriteFile(s.Path("x"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	renamed := &RejectError{Reason: "saved as another name"}
	if err := s.Load("x", func(*os.File, []byte, int64) error { return renamed }); err != renamed {
		t.Fatalf("load: %v", err)
	}
	if _, err := loadAll(s, "x"); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "chunk 0 of 5") {
		t.Fatalf("load read to the end: %v", err)
	}
}

// TestResignForges: Resign makes a file that verifies under the key it was
// given (so the refusals that use it test the key, not a broken forgery).
func TestResignForges(t *testing.T) {
	s := newStore(t, false)
	payload := randomPayload(2*chunkSize + 3)
	good := saveV2(t, s, "x", payload)
	id, err := s.Keys().Rotate()
	if err != nil {
		t.Fatal(err)
	}
	k, _ := s.Keys().Lookup(id)
	forged, err := Resign(k, good)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := ParseHeader(forged); h.KeyID != id {
		t.Fatalf("key id %s", h.KeyID)
	}
	if err := os.WriteFile(s.Path("f"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := loadAll(s, "f"); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("forged file: %v", err)
	}
}

// sealV2 writes a format 2 file in memory with a fixed file id, from the
// layout in format.go (independently of Stage).
func sealV2(t testing.TB, k Key, payload []byte, enc bool) []byte {
	t.Helper()
	h := Header{Version: 2, KeyID: k.ID, Encrypted: enc}
	copy(h.FileID[:], "fixed file id 16")
	hb := h.Encode()
	s, err := newChunkSealer(k, h)
	if err != nil {
		t.Fatal(err)
	}
	var chunks, tags []byte
	for i := 0; i*chunkSize < len(payload); i++ {
		c := append(make([]byte, 0, chunkSize+tagSize), payload[i*chunkSize:min(len(payload), (i+1)*chunkSize)]...)
		tags = append(tags, s.seal(0, uint64(i), c)...)
		chunks = append(chunks, c...)
	}
	meta := []byte(fmt.Sprintf(`{"name":"g","format_version":2,"payload_bytes":%d}`, len(payload)))
	foot := Footer{MetaLen: uint32(len(meta)), PayloadLen: uint64(len(payload))}
	tail := append(append(tags, meta...), foot.encodeFields()...)
	m := k.newMAC()
	m.Write(hb)
	m.Write(tail)
	out := append(append(append([]byte(nil), hb...), chunks...), tail...)
	return m.Sum(out)
}

// FuzzVerifyV2: no input panics, nothing but a file this store sealed is
// accepted, and a refused file hands out only checked chunks. The seeds
// run as a regular test.
func FuzzVerifyV2(f *testing.F) {
	keys, err := OpenKeyring(f.TempDir(), "fuzzing secret of enough length!!")
	if err != nil {
		f.Fatal(err)
	}
	var goods [][]byte
	for _, enc := range []bool{false, true} {
		// NB: built with a fixed file id: fuzz workers are other processes,
		// and each must know the same two good files.
		g := sealV2(f, keys.Current(), []byte("payload"), enc)
		goods = append(goods, g)
		f.Add(g)
		f.Add(g[:len(g)-1])
		f.Add(g[:40])
		b := append([]byte(nil), g...)
		b[50] ^= 1
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(Header{Version: 2, KeyID: "k"}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := verifyBytes(t, keys, b)
		if err == nil && !bytes.Equal(b, goods[0]) && !bytes.Equal(b, goods[1]) {
			t.Fatalf("accepted a file it did not seal: %q", b)
		}
		if err == nil && string(out) != "payload" {
			t.Fatalf("payload %q", out)
		}
		if err != nil && len(out) > 0 {
			// One chunk of 7 bytes: a refused file hands out nothing.
			t.Fatalf("handed out unchecked bytes %q", out)
		}
	})
}

// FuzzIngest: the frame parser never panics on what a kernel sends, and
// what it keeps is what a simple model of the frames keeps.
func FuzzIngest(f *testing.F) {
	f.Add(append(dataFrame([]byte("abc")), endFrame...))
	f.Add(append(append(dataFrame([]byte("abcdef")), cutFrame(2)...), endFrame...))
	f.Add(append(dataFrame([]byte("abc")), cutFrame(9)...))
	f.Add([]byte{frameData, 0, 0, 0, 0})
	f.Add([]byte{'Z'})
	s := newStore(f, false)
	f.Fuzz(func(t *testing.T, stream []byte) {
		part, err := os.CreateTemp(s.TempDir(), "fuzz.*.part")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(part.Name())
		defer part.Close()
		sealer, err := newChunkSealer(s.Keys().Current(), Header{Version: 2})
		if err != nil {
			t.Fatal(err)
		}
		w := newChunkWriter(part, 0, sealer)
		err = ingest(bytes.NewReader(stream), w)
		want, ok := modelFrames(stream)
		if ok != (err == nil) {
			t.Fatalf("ingest: %v, model ok=%v", err, ok)
		}
		if !ok {
			return
		}
		n, _, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if _, err := part.ReadAt(got, 0); err != nil && n > 0 {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("kept %q, model %q", got, want)
		}
	})
}

// modelFrames is the frame protocol written plainly.
func modelFrames(b []byte) ([]byte, bool) {
	var out []byte
	for {
		if len(b) == 0 {
			return nil, false
		}
		switch b[0] {
		case frameEnd:
			return out, true
		case frameTruncate:
			if len(b) < 9 {
				return nil, false
			}
			off := binary.BigEndian.Uint64(b[1:9])
			if off > uint64(len(out)) {
				return nil, false
			}
			out, b = out[:off], b[9:]
		case frameData:
			if len(b) < 5 {
				return nil, false
			}
			n := binary.BigEndian.Uint32(b[1:5])
			if n == 0 || n > maxFrame || uint64(len(b)-5) < uint64(n) {
				return nil, false
			}
			out, b = append(out, b[5:5+n]...), b[5+n:]
		default:
			return nil, false
		}
	}
}

// TestSaveAndLoadMemoryBounded: a save and a load allocate a bounded
// amount whatever the payload's size (a chunk buffer, a read buffer and 20
// bytes of tag entry per MiB), never the payload: 64 MiB go through with
// less than 4 MiB allocated by each.
func TestSaveAndLoadMemoryBounded(t *testing.T) {
	s := newStore(t, false)
	payload := randomPayload(64 << 20)
	var stream []byte
	for rest := payload; len(rest) > 0; {
		n := min(len(rest), 8<<20)
		stream = append(stream, dataFrame(rest[:n])...)
		rest = rest[n:]
	}
	stream = append(stream, endFrame...)
	allocated := func(f func()) uint64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc
	}
	if got := allocated(func() {
		if _, err := saveStream(t, s, "big", stream); err != nil {
			t.Fatal(err)
		}
	}); got > 4<<20 {
		t.Fatalf("a 64 MiB save allocated %d bytes", got)
	} else {
		t.Logf("a 64 MiB save allocated %d bytes", got)
	}
	buf := make([]byte, 1<<20)
	if got := allocated(func() {
		if err := s.Load("big", func(f *os.File, _ []byte, _ int64) error {
			_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}); got > 4<<20 {
		t.Fatalf("a 64 MiB load allocated %d bytes", got)
	} else {
		t.Logf("a 64 MiB load allocated %d bytes", got)
	}
}
