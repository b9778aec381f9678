package checkpointfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// sealed builds a valid checkpoint file in memory (as seal does on disk).
func sealed(t testing.TB, k Key, payload []byte, encrypt bool) []byte {
	t.Helper()
	return sealedWithMeta(t, k, payload, encrypt, []byte(`{"name":"f"}`))
}

// sealedWithMeta is sealed with the given metadata JSON.
func sealedWithMeta(t testing.TB, k Key, payload []byte, encrypt bool, meta []byte) []byte {
	t.Helper()
	h := Header{Version: 1, KeyID: k.ID, Encrypted: encrypt} // format 1: old files keep loading
	copy(h.Nonce[:], "abcdefgh")
	hb := h.Encode()
	var body bytes.Buffer
	if encrypt {
		if _, err := encryptStream(&body, bytes.NewReader(payload), k, h, hb); err != nil {
			t.Fatal(err)
		}
	} else {
		body.Write(payload)
	}
	out := append(append(append([]byte(nil), hb...), body.Bytes()...), meta...)
	out = append(out, Footer{MetaLen: uint32(len(meta)), PayloadLen: uint64(body.Len())}.encodeFields()...)
	m := k.newMAC()
	m.Write(out)
	return m.Sum(out)
}

func verifyBytes(t testing.TB, keys *Keyring, b []byte) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "f.ckpt")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Store{keys: keys}
	var out bytes.Buffer
	_, err := s.VerifyFile(p, &out)
	return out.Bytes(), err
}

func TestFormatRoundTripAndDamage(t *testing.T) {
	keys, err := OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("dill stream "), 300_000) // > 3 chunks
	for _, enc := range []bool{false, true} {
		good := sealed(t, keys.Current(), payload, enc)
		got, err := verifyBytes(t, keys, good)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("encrypted=%v: round trip: %v", enc, err)
		}
		if enc && bytes.Contains(good, []byte("dill stream dill")) {
			t.Fatal("encrypted file holds plaintext")
		}
		// Every single flipped byte is refused.
		for _, i := range []int{0, 9, 12, 20, 30, len(good) / 2, len(good) - footerSize - 3, len(good) - footerSize + 2, len(good) - 1} {
			b := append([]byte(nil), good...)
			b[i] ^= 0x01
			if _, err := verifyBytes(t, keys, b); !errors.Is(err, ErrRejected) {
				t.Errorf("encrypted=%v: flipped byte %d accepted: %v", enc, i, err)
			}
		}
		for _, n := range []int{0, 5, 30, len(good) / 2, len(good) - 1} {
			if _, err := verifyBytes(t, keys, good[:n]); !errors.Is(err, ErrRejected) {
				t.Errorf("encrypted=%v: truncated to %d accepted: %v", enc, n, err)
			}
		}
	}
}

// FuzzVerify: no input panics, and nothing but a correctly signed file is
// accepted. The seeds run as a regular test.
func FuzzVerify(f *testing.F) {
	keys, err := OpenKeyring(f.TempDir(), "fuzzing secret of enough length!!")
	if err != nil {
		f.Fatal(err)
	}
	good := sealed(f, keys.Current(), []byte("payload"), false)
	enc := sealed(f, keys.Current(), []byte("payload"), true)
	f.Add(good)
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte(Magic))
	f.Add(good[:len(good)-1])
	f.Add(append([]byte(nil), enc[:40]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := verifyBytes(t, keys, b)
		if err == nil && !bytes.Equal(b, good) && !bytes.Equal(b, enc) {
			t.Fatalf("accepted a file it did not sign: %q", b)
		}
		if err == nil && string(out) != "payload" {
			t.Fatalf("payload %q", out)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add(Header{Version: 1, KeyID: "k"}.Encode())
	f.Add(Header{Version: 1, KeyID: "0123456789abcdef", Encrypted: true}.Encode())
	f.Add([]byte("MCPJCKPT\x00\x02"))
	f.Add(Header{Version: 2, KeyID: "0123456789abcdef", FileID: [16]byte{1, 2, 3}}.Encode())
	f.Add(Header{Version: 2, KeyID: "k", Encrypted: true}.Encode()[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("error is not a rejection: %v", err)
			}
			return
		}
		if !bytes.Equal(h.Encode(), b[:n]) {
			t.Fatalf("header does not round trip: %x", b[:n])
		}
	})
}
