package checkpointfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLoadReadsThePrivateCopy: what restore reads is the verified bytes,
// even when the checkpoint is written in place and renamed over while it
// reads; no name of the copy exists in tmp/.
func TestLoadReadsThePrivateCopy(t *testing.T) {
	for _, enc := range []bool{false, true} {
		keys, err := OpenKeyring(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.TempDir(), keys, enc)
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.Repeat([]byte("genuine "), 200_000)
		if err := os.WriteFile(s.Path("x"), sealed(t, keys.Current(), payload, enc), 0o600); err != nil {
			t.Fatal(err)
		}
		err = s.Load("x", func(f *os.File, meta []byte, size int64) error {
			// In place, then renamed over: neither reaches f.
			w, err := os.OpenFile(s.Path("x"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := w.WriteAt(bytes.Repeat([]byte("EVIL"), 1000), 0); err != nil {
				return err
			}
			w.Close()
			if err := os.WriteFile(s.Path("x"), []byte("EVIL EVIL"), 0o600); err != nil {
				return err
			}
			if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
				t.Errorf("the private copy has a name: %v", ents)
			}
			if _, err := f.Write([]byte("x")); err == nil {
				t.Errorf("encrypted=%v: the copy handed out is writable", enc)
			}
			got, err := io.ReadAll(f)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("encrypted=%v: restore read %d bytes that are not the verified payload", enc, len(got))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpecialFilesRefusedUnopened (issue 13, finding 8): a named pipe, a
// symbolic link and a directory named like checkpoints, and a named pipe
// as a key file: each is refused at once with what it is, never opened.
func TestSpecialFilesRefusedUnopened(t *testing.T) {
	keys, err := OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir(), keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path("real"), sealed(t, keys.Current(), []byte("p"), false), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.Path("pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.Path("real"), s.Path("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Path("dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		kinds := map[string]string{}
		err := s.List(func(string) bool { return true }, func(name string, _ []byte, _ int64, err error) {
			var nr *NotRegularError
			if errors.As(err, &nr) {
				kinds[name] = nr.Kind
			} else if err != nil {
				t.Errorf("list %s: %v", name, err)
			}
		})
		if err != nil || kinds["pipe"] != "named pipe" || kinds["link"] != "symbolic link" || kinds["dir"] != "directory" || len(kinds) != 3 {
			t.Errorf("list: %v %v", kinds, err)
		}
		for name, kind := range map[string]string{"pipe": "named pipe", "link": "symbolic link", "dir": "directory"} {
			err := s.Load(name, func(*os.File, []byte, int64) error { t.Errorf("restore ran for %s", name); return nil })
			var nr *NotRegularError
			if !errors.As(err, &nr) || nr.Kind != kind || !errors.Is(err, ErrRejected) {
				t.Errorf("load %s: %v", name, err)
			}
		}
		kd := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(kd, "k.key"), 0o600); err != nil {
			t.Error(err)
			return
		}
		if _, err := OpenKeyring(kd, ""); err == nil {
			t.Error("a keyring with a named pipe as a key opened")
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a special file blocked the store")
	}
}

// TestMetadataMustDescribeTheFile: signed metadata whose key, encryption,
// format version or payload length is not the file's is refused, even
// under a valid signature; metadata that agrees loads.
func TestMetadataMustDescribeTheFile(t *testing.T) {
	keys, err := OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	k := keys.Current()
	for meta, ok := range map[string]bool{
		`{"key_id":"` + k.ID + `","encrypted":false,"format_version":1,"payload_bytes":7}`: true,
		`{"key_id":"someone-else"}`: false,
		`{"encrypted":true}`:        false,
		`{"format_version":2}`:      false,
		`{"payload_bytes":8}`:       false,
	} {
		_, err := verifyBytes(t, keys, sealedWithMeta(t, k, []byte("payload"), false, []byte(meta)))
		if ok && err != nil || !ok && !errors.Is(err, ErrRejected) {
			t.Errorf("meta %s: %v", meta, err)
		}
	}
}
