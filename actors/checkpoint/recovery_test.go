package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// savedEvents counts the CheckpointSaved events of name's stream.
func savedEvents(t testing.TB, st *testkit.Stack, name string) []events.CheckpointSaved {
	t.Helper()
	var out []events.CheckpointSaved
	err := st.Log.ReadStream(context.Background(), events.CheckpointStream(name), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.CheckpointSaved); ok {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSaveCrashRecordedOnce: the actor crashes (test hook) just before it
// appends a finished save's CheckpointSaved, after the file was committed.
// Supervision restarts it; the new incarnation rebuilds its state from its
// streams, records the save it was handed over once, answers the caller,
// and its scan of the files does not record it again — nor does a later
// start.
func TestSaveCrashRecordedOnce(t *testing.T) {
	st := testkit.StartStack(t, "")
	var fired atomic.Bool
	hook := func(ds []events.Draft) {
		if ds[0].Payload.EventType() == events.TypeCheckpointSaved && fired.CompareAndSwap(false, true) {
			panic("test hook: crash the checkpoint actor before this append")
		}
	}
	r := newRigWith(t, st, rigConfig{beforeAppend: hook})
	k := r.kernel()
	r.run(k, "v = list(range(10))")
	m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "crash", KernelID: k})
	if err != nil {
		t.Fatalf("save across the crash: %v", err)
	}
	if !fired.Load() {
		t.Fatal("the test hook never crashed the actor: the test proves nothing")
	}
	saved := savedEvents(t, st, "crash")
	if len(saved) != 1 || saved[0].SHA256 != m.SHA256 || saved[0].Size != m.FileBytes {
		t.Fatalf("CheckpointSaved events %+v, want one for %s", saved, m.SHA256)
	}
	if e := r.state().Checkpoints["crash"]; e.SHA256 != m.SHA256 {
		t.Fatalf("state after the crash: %+v", e)
	}
	// A later start scans the files again: still recorded once.
	if err := r.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = newRig(t, st, false)
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "crash", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if n := len(savedEvents(t, st, "crash")); n != 1 {
		t.Fatalf("%d CheckpointSaved after a restart, want 1", n)
	}
}

// TestUnrecordedFileAdopted: a crash between a save's rename and its
// append (the process died) leaves a committed file the log does not know;
// the next start verifies it and records it once. A recorded checkpoint
// whose files are gone is recorded deleted. A file copied under another
// name is never recorded (issue 13, finding 4: the scan must not launder
// it into the log).
func TestUnrecordedFileAdopted(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "w = {'a': 1}")
	m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "orig", KernelID: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "gone", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(r.files.Path("orig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.files.Path("copy"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.files.Path("gone")); err != nil {
		t.Fatal(err)
	}
	r = newRig(t, st, false)
	// The scan runs off the mailbox and records in one batch: wait for the
	// deletion of gone, then the decision about copy was made too.
	ctx := ctx2m(t)
	for {
		if _, gone := r.state().Checkpoints["gone"]; !gone {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the scan never recorded gone deleted: %+v", r.state().Checkpoints)
		case <-st.Log.Changed():
		}
	}
	if _, ok := r.state().Checkpoints["copy"]; ok {
		t.Fatal("a file copied under another name was recorded as a save")
	}
	if n := len(savedEvents(t, st, "copy")); n != 0 {
		t.Fatalf("%d CheckpointSaved for a renamed copy, want 0", n)
	}

	// Another server with the same key finds orig.ckpt it never recorded
	// (its save's record lost): it verifies it and records it once.
	other := testkit.StartStack(t, "")
	keys := filepath.Join(other.DataDir, "checkpoint-keys")
	if err := os.CopyFS(keys, os.DirFS(filepath.Join(st.DataDir, "checkpoint-keys"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(other.DataDir, "checkpoints"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other.DataDir, "checkpoints", "orig.ckpt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t, other, false)
	for {
		if e, ok := r2.state().Checkpoints["orig"]; ok && e.SHA256 == m.SHA256 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the scan never recorded orig: %+v", r2.state().Checkpoints)
		case <-other.Log.Changed():
		}
	}
	if n := len(savedEvents(t, other, "orig")); n != 1 {
		t.Fatalf("%d CheckpointSaved for the adopted file, want 1", n)
	}
}

// TestMetricsMoveWithTheWork: the checkpoint histograms of the server's
// registry, fed through the actor's Observer: a real save moves the save
// count by 1 and checkpoint_size_bytes by the file's size, a load moves the
// load count, a tampered load is refused and counted as a load attempt.
func TestMetricsMoveWithTheWork(t *testing.T) {
	st := testkit.StartStack(t, "")
	reg := prometheus.NewRegistry()
	mx, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRigWith(t, st, rigConfig{observer: mx.Live.CheckpointObserver()})
	k := r.kernel()
	r.run(k, "m = {'x': list(range(1000))}")
	fig := func(name string) (uint64, float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				h := mf.GetMetric()[0].GetHistogram()
				return h.GetSampleCount(), h.GetSampleSum()
			}
		}
		t.Fatalf("no %s in the registry", name)
		return 0, 0
	}
	saves0, _ := fig("checkpoint_save_duration_seconds")
	sizes0, bytes0 := fig("checkpoint_size_bytes")
	loads0, _ := fig("checkpoint_load_duration_seconds")
	m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "metrics", KernelID: k})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.files.Path("metrics"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != m.FileBytes {
		t.Fatalf("file %d bytes, save says %d", fi.Size(), m.FileBytes)
	}
	if n, sec := fig("checkpoint_save_duration_seconds"); n != saves0+1 || sec <= 0 {
		t.Fatalf("save count %d (sum %v s), want %d and a positive time", n, sec, saves0+1)
	}
	if n, b := fig("checkpoint_size_bytes"); n != sizes0+1 || b != bytes0+float64(fi.Size()) {
		t.Fatalf("size samples %d sum %v, want %d and %v", n, b, sizes0+1, bytes0+float64(fi.Size()))
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "metrics", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if n, _ := fig("checkpoint_load_duration_seconds"); n != loads0+1 {
		t.Fatalf("load count %d, want %d", n, loads0+1)
	}
	// Tampered: refused, counted as a load attempt and a signature failure.
	b, _ := os.ReadFile(r.files.Path("metrics"))
	b[len(b)/2] ^= 1
	if err := os.WriteFile(r.files.Path("tampered"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "tampered", KernelID: k}); !errorsIsRejected(err) {
		t.Fatalf("tampered load: %v, want a rejection", err)
	}
	if n, _ := fig("checkpoint_load_duration_seconds"); n != loads0+2 {
		t.Fatalf("load count after the refused load %d, want %d", n, loads0+2)
	}
	if got := r.sigFailures(); got != 1 {
		t.Fatalf("signature failures %d, want 1", got)
	}
	if n, _ := fig("checkpoint_size_bytes"); n != sizes0+1 {
		t.Fatalf("loads moved the size histogram: %d", n)
	}
}

func errorsIsRejected(err error) bool { return errors.Is(err, ErrRejected) }
