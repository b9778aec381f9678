package checkpoint

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// A save that the server cannot finish — the checkpoint disk fills up, or
// the file passes what its owner's quota has left — fails at once with the
// real cause, from a real kernel pickling 40 MB into the pipe: the kernel
// is not left blocked on a pipe nobody reads (until the save's 30-minute
// timeout), nothing is committed, no temp file stays, and the kernel goes
// on answering.
func TestSaveStopsPromptlyAtItsLimit(t *testing.T) {
	st := testkit.StartStack(t, "")
	for _, tc := range []struct {
		name string
		rc   rigConfig
		want string
		is   error
	}{
		{"disk full", rigConfig{checkpointDir: testkit.SmallFS(t, 8<<20)}, "no space left on device; the checkpoint directory's disk is full", nil},
		{"quota", rigConfig{maxBytes: 4 << 20}, "quota", ErrQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigWith(t, st, tc.rc)
			k := r.kernel()
			r.run(k, "import os\nblob = os.urandom(40 << 20)")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			_, err := r.svc.Save(ctx, SaveRequest{Name: "big", KernelID: k})
			if ctx.Err() != nil {
				t.Fatalf("the save still had not answered after %v: the kernel is blocked on the pipe", time.Since(start))
			}
			t.Logf("save answered in %v: %v", time.Since(start), err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("save of 40 MB = %v, want an error naming %q", err, tc.want)
			}
			if r.files.Exists("big") {
				t.Fatal("the failed save was committed")
			}
			if ents, _ := os.ReadDir(r.files.TempDir()); len(ents) != 0 {
				t.Fatalf("temp files left: %v", ents)
			}
			if got := r.run(k, "print(len(blob))"); got != "41943040" {
				t.Fatalf("the kernel after the failed save printed %q", got)
			}
		})
	}
}
