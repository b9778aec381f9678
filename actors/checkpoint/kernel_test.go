package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

type rig struct {
	t     testing.TB
	st    *testkit.Stack
	svc   *Client
	files *checkpointfile.Store
	obs   *observed
}

// observed records what the actor tells its Observer.
type observed struct {
	mu          sync.Mutex
	saves       []int64 // file sizes
	loads       []string
	saveSeconds float64
}

func (o *observed) SaveObserved(d time.Duration, size int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.saves = append(o.saves, size)
	o.saveSeconds += d.Seconds()
}

func (o *observed) LoadObserved(_ time.Duration, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.loads = append(o.loads, outcome)
}

// rigConfig is what a test may change in the rig.
type rigConfig struct {
	encrypt      bool
	runner       Runner
	observer     Observer
	beforeAppend func([]events.Draft)
	maxBytes     int64
	// checkpointDir replaces <data dir>/checkpoints (a small file system).
	checkpointDir string
	// secret is MCP_CHECKPOINT_SECRET ("": a key generated in the data dir).
	secret string
	// replica, when set, makes the actor's Replica over the rig's files.
	replica func(*checkpointfile.Store) Replica
}

func newRig(t testing.TB, st *testkit.Stack, encrypt bool) *rig {
	t.Helper()
	return newRigWith(t, st, rigConfig{encrypt: encrypt})
}

// newRigWith opens the keyring, the file store and the actor on the stack's
// actor system, as the server does.
func newRigWith(t testing.TB, st *testkit.Stack, rc rigConfig) *rig {
	t.Helper()
	keys, err := checkpointfile.OpenKeyring(filepath.Join(st.DataDir, "checkpoint-keys"), rc.secret)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(st.DataDir, "checkpoints")
	if rc.checkpointDir != "" {
		dir = rc.checkpointDir
	}
	files, err := checkpointfile.Open(dir, keys, rc.encrypt)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, files: files, obs: &observed{}}
	if rc.runner == nil {
		rc.runner = st
	}
	if rc.observer == nil {
		rc.observer = r.obs
	}
	var replica Replica
	if rc.replica != nil {
		replica = rc.replica(files)
	}
	r.svc, err = Open(context.Background(), Config{System: st.System.Actors(), Files: files, Runner: rc.runner, Log: st.Log,
		KernelDir: r.kernelDir, Observer: rc.observer, BeforeAppend: rc.beforeAppend, MaxBytesPerOwner: rc.maxBytes, Replica: replica})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.svc.Close(context.Background()) })
	return r
}

// kernelDir is the kernel's own directory, as cmd/mcp-jupyter wires it.
func (r *rig) kernelDir(id string) string {
	return filepath.Join(r.st.DataDir, "runtime", "kernels", id)
}

func (r *rig) state() State {
	r.t.Helper()
	s, err := r.svc.State(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) sigFailures() uint64 {
	r.t.Helper()
	s, err := r.svc.Stats(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return s.SignatureFailures
}

func (r *rig) kernel() string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	k, err := r.st.System.StartKernel(ctx, "python3", "ckpt", "", "admin")
	if err != nil {
		r.t.Fatalf("start kernel: %v", err)
	}
	return k.ID
}

func (r *rig) run(kernelID, code string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := r.st.Run(ctx, kernelID, code)
	if err != nil {
		r.t.Fatalf("run %q: %v\n%s", code, err, out)
	}
	return strings.TrimSpace(out)
}

func ctx2m(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

const fridayCode = `
import pandas as pd, numpy as np, json as js
df = pd.DataFrame(np.arange(2000*5).reshape(2000, 5), columns=list("abcde"))
class Model:
    def __init__(self): self.coef = [1.5, 2.5]
    def predict(self, x): return sum(c * x for c in self.coef)
model = Model()
results = {"acc": 0.93, "runs": [1, 2, 3]}
a = b = [1]
gen = (i for i in range(3))
fh = open("/etc/hostname")
holder = [lambda: 1, (i for i in range(2))]
_private = 3
`

const mondayCheck = `print(df.shape, int(df["e"].sum()), model.predict(2), results, a is b, type(model).__name__)`

// TestFridayMonday saves df, a model defined in the kernel and results,
// restarts the whole core and loads them into a new kernel.
func TestFridayMonday(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[encrypt], func(t *testing.T) {
			st := testkit.StartStack(t, "")
			r := newRig(t, st, encrypt)
			k := r.kernel()
			r.run(k, fridayCode)
			want := r.run(k, mondayCheck)
			m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "friday", KernelID: k})
			if err != nil {
				t.Fatal(err)
			}
			saved := map[string]bool{}
			for _, v := range m.Saved {
				saved[v.Name] = true
			}
			for _, n := range []string{"df", "model", "results", "a", "b"} {
				if !saved[n] {
					t.Errorf("%s not saved: %+v", n, m.Saved)
				}
			}
			skipped := map[string]string{}
			for _, v := range m.Skipped {
				skipped[v.Name] = v.Type + ": " + v.Reason
			}
			for n, why := range map[string]string{"gen": "generator", "fh": "open file", "pd": "module", "holder": "generator", "js": "module"} {
				if !strings.Contains(skipped[n], why) {
					t.Errorf("%s skipped as %q, want a reason with %q", n, skipped[n], why)
				}
			}
			for _, n := range []string{"In", "Out", "_", "_i1", "_private", "get_ipython", "exit"} {
				if saved[n] || skipped[n] != "" {
					t.Errorf("IPython/private name %s must be left out", n)
				}
			}
			if m.Packages["pandas"] == "" || m.Python == "" {
				t.Errorf("package versions from the kernel missing: %v %q", m.Packages, m.Python)
			}
			if m.Encrypted != encrypt {
				t.Errorf("encrypted = %v", m.Encrypted)
			}
			// Monday: the core restarts, Friday's kernel is gone, a new one starts.
			if err := st.System.ShutdownKernel(context.Background(), k, "admin"); err != nil {
				t.Fatal(err)
			}
			st.Restart()
			r = newRig(t, st, encrypt)
			if _, ok := r.state().Checkpoints["friday"]; !ok {
				t.Fatalf("state after restart lacks friday: %+v", r.state())
			}
			k2 := r.kernel()
			res, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "friday", KernelID: k2})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Missing)+len(res.Mismatched) != 0 {
				t.Errorf("same environment reports differences: %v %v", res.Missing, res.Mismatched)
			}
			if got := r.run(k2, mondayCheck); got != want {
				t.Fatalf("after load: %q, want %q", got, want)
			}
			if strings.Contains(strings.Join(res.Restored, ","), "gen") {
				t.Fatalf("restored a skipped name: %v", res.Restored)
			}
			list, err := r.svc.List(context.Background())
			if err != nil || len(list.Checkpoints) != 1 || list.Checkpoints[0].Name != "friday" || !list.Checkpoints[0].Verified {
				t.Fatalf("list: %+v %v", list, err)
			}
			if err := r.svc.Delete(context.Background(), "", "friday", ""); err != nil {
				t.Fatal(err)
			}
			if list, _ := r.svc.List(context.Background()); len(list.Checkpoints) != 0 {
				t.Fatalf("listed after delete: %+v", list)
			}
			if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "friday", KernelID: k2}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("load after delete: %v", err)
			}
		})
	}
}

const namesCode = `print(sorted(n for n in globals() if not n.startswith("_") and n not in ("In", "Out", "exit", "quit", "get_ipython")), sentinel)`

// TestTamperRefused: every damaged file is refused with its reason before
// anything reaches the kernel, counted, and the kernel is untouched.
func TestTamperRefused(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "x = 41\ny = {'k': [1, 2]}")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "good", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(r.files.Path("good"))
	if err != nil {
		t.Fatal(err)
	}
	r.run(k, "sentinel = 'before'\nx = 1")
	before := r.run(k, namesCode)
	_, hlen, _ := checkpointfile.ParseHeader(good)
	const footerSize = checkpointfile.FooterSize // meta length u32, payload length u64, "CKPT", HMAC-SHA256

	other, err := checkpointfile.OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, reason string
		damage       func([]byte) []byte
		keys         func()
	}{
		// NB: under its own name: a copy under another name is refused by
		// its signed name before its chunks are read (TestRollbackAndRenameRefused).
		{"flip-payload", "fails authentication", func(b []byte) []byte { b[hlen+2] ^= 1; return b }, nil},
		{"flip-header-nonce", "signature mismatch", func(b []byte) []byte { b[hlen-1] ^= 0x80; return b }, nil},
		{"flip-meta", "signature mismatch", func(b []byte) []byte { b[len(b)-footerSize-5] ^= 1; return b }, nil},
		{"flip-mac", "signature mismatch", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, nil},
		{"truncated", "truncated", func(b []byte) []byte { return b[:len(b)-100] }, nil},
		{"truncated-to-header", "truncated", func(b []byte) []byte { return b[:hlen+3] }, nil},
		{"newer-format", "newer", func(b []byte) []byte { b[9] = checkpointfile.FormatVersion + 1; return b }, nil},
		{"not-a-checkpoint", "bad magic", func(b []byte) []byte { return []byte("print('pwned')") }, nil},
		{"unknown-key", "does not have", func(b []byte) []byte {
			// Re-sign with a key this server never had.
			return resign(t, b, other.Current())
		}, nil},
		{"wrong-secret-same-id", "signature mismatch", func(b []byte) []byte {
			h, _, _ := checkpointfile.ParseHeader(b)
			return resign(t, b, checkpointfile.Key{ID: h.KeyID, Secret: []byte("an attacker's guess of the secret!!")})
		}, nil},
	}
	for i, c := range cases {
		b := c.damage(append([]byte(nil), good...))
		name := "bad-" + c.name
		if c.name == "flip-payload" {
			name = "good"
		}
		if err := os.WriteFile(r.files.Path(name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := r.svc.Load(ctx2m(t), LoadRequest{Name: name, KernelID: k})
		if name == "good" {
			if err := os.WriteFile(r.files.Path(name), good, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: got %v, want a rejection with %q", c.name, err, c.reason)
		}
		if got := r.sigFailures(); got != uint64(i+1) {
			t.Errorf("%s: signature failures = %d, want %d", c.name, got, i+1)
		}
	}
	// A rotated-away key: good was signed with the first key; rotate and forget it.
	old := r.files.Keys().Current().ID
	if _, err := r.files.Keys().Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := r.files.Keys().Forget(old); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "good", KernelID: k}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "rotated away") {
		t.Errorf("rotated-away key: %v", err)
	}
	if after := r.run(k, namesCode); after != before {
		t.Fatalf("kernel touched by refused loads:\nbefore %s\nafter  %s", before, after)
	}
	if ents, _ := os.ReadDir(r.files.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
	if got := r.state().Checkpoints["good"].Rejects; got != 2 {
		t.Fatalf("rejections of good in the state: %d, want 2 (the flipped payload chunk, the rotated-away key)", got)
	}
}

// resign rewrites b's key id and signature with k, as a forger with k would.
func resign(t testing.TB, b []byte, k checkpointfile.Key) []byte {
	t.Helper()
	out, err := checkpointfile.Resign(k, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRotationKeepsOldKeys: after a rotation, older checkpoints still load
// and new ones are signed with the new key.
func TestRotationAndNames(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "v = [1, 2, 3]")
	m1, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "one", KernelID: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.files.Keys().Rotate(); err != nil {
		t.Fatal(err)
	}
	m2, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "two", KernelID: k, Variables: []string{"v", "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if m1.KeyID == m2.KeyID {
		t.Fatalf("rotation did not change the key id")
	}
	if len(m2.Skipped) != 1 || m2.Skipped[0].Name != "nope" || !strings.Contains(m2.Skipped[0].Reason, "not defined") {
		t.Fatalf("unknown variable: %+v", m2.Skipped)
	}
	r.run(k, "del v")
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "one", KernelID: k}); err != nil {
		t.Fatalf("old key must still verify: %v", err)
	}
	if got := r.run(k, "print(v)"); got != "[1, 2, 3]" {
		t.Fatalf("v = %s", got)
	}
	for _, bad := range []string{"../../etc/passwd", "", "a/b", ".hidden", "x\x00y", strings.Repeat("n", 101)} {
		if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: bad, KernelID: k}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("save %q: %v", bad, err)
		}
		if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: bad, KernelID: k}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("load %q: %v", bad, err)
		}
	}
	if _, err := os.Stat("/etc/passwd.ckpt"); err == nil {
		t.Fatal("wrote outside the checkpoint dir")
	}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "one", KernelID: k}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "overwrite=true") {
		t.Fatalf("existing name: %v", err)
	}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "one", KernelID: k, Overwrite: true}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "bad", KernelID: k, Variables: []string{"os.system"}}); err == nil {
		t.Fatal("a non-identifier variable must be refused")
	}
}

// failAfter runs the real kernel code, then fails as a server crash or a
// full disk would after the kernel wrote its temp file.
type failAfter struct{ Runner }

func (f failAfter) Run(ctx context.Context, k, code string) (string, error) {
	out, err := f.Runner.Run(ctx, k, code)
	if err != nil {
		return out, err
	}
	return out, errors.New("injected: no space left on device")
}

// TestCrashMidSave: a failed save lists nothing partial and the previous
// checkpoint of that name survives; a temp file left by a crash is removed
// at the next start.
func TestCrashMidSave(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "v = 'first'")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "keep", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	r.run(k, "v = 'second'")
	// NB: one actor at a time writes the checkpoint streams.
	if err := r.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := newRigWith(t, st, rigConfig{runner: failAfter{st}})
	if _, err := failing.svc.Save(ctx2m(t), SaveRequest{Name: "keep", KernelID: k, Overwrite: true}); err == nil {
		t.Fatal("injected failure not reported")
	}
	if got := failing.obs.saves; len(got) != 1 || got[0] != 0 {
		t.Fatalf("observed saves %v, want one failed save (size 0)", got)
	}
	// The failed save left no socket in the kernel's directory and no
	// staging file.
	socks, _ := filepath.Glob(filepath.Join(failing.kernelDir(k), "*.sock"))
	if ents, _ := os.ReadDir(failing.files.TempDir()); len(ents)+len(socks) != 0 {
		t.Fatalf("a failed save left temp files %v, sockets %v", ents, socks)
	}
	r = failing
	// A crash leaves a temp file: simulate one.
	if err := os.WriteFile(filepath.Join(r.files.TempDir(), "keep.123.part"), []byte("MCPJCKPT partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, _ := r.svc.List(context.Background())
	if len(list.Checkpoints) != 1 || list.Checkpoints[0].Name != "keep" {
		t.Fatalf("list: %+v", list)
	}
	if err := r.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = newRig(t, st, false)
	if ents, _ := os.ReadDir(r.files.TempDir()); len(ents) != 0 {
		t.Fatalf("stale temp files survive a restart: %v", ents)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "keep", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if got := r.run(k, "print(v)"); got != "first" {
		t.Fatalf("v = %q, want the first save", got)
	}
}
