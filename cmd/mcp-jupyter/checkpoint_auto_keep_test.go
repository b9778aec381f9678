package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// shutDownByServer shuts kernel id down as the server does (no principal,
// not on request: its auto-checkpoint stays) and waits until it shows.
func shutDownByServer(t *testing.T, c *core, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.sys.ShutdownKernel(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "the kernel shown shut down", func() (bool, string) {
		k, _ := c.kernels.Get(id)
		return k.State == "shut down", string(k.State)
	})
}

// TestAutoCheckpointKeepCollectsGoneKernels: --auto-checkpoint-keep (720h
// by default) deletes the auto-checkpoint of a kernel that no longer runs
// once it is older than that; a running kernel's stays however old, and
// with 0 nothing is collected.
func TestAutoCheckpointKeepCollectsGoneKernels(t *testing.T) {
	if cfg := testConfig(t, t.TempDir()); cfg.AutoCheckpointKeep != 720*time.Hour {
		t.Fatalf("--auto-checkpoint-keep default: %s, want 720h", cfg.AutoCheckpointKeep)
	}
	if _, err := parseConfig("serve", []string{"--data-dir", t.TempDir(), "--auto-checkpoint-keep", "30d"}); err == nil ||
		!strings.Contains(err.Error(), "--auto-checkpoint-keep \"30d\": give a duration such as 720h") {
		t.Fatalf("--auto-checkpoint-keep 30d: %v", err)
	}
	var logs syncBuffer
	c, cl := autoCore(t, &logs, func(cfg *config) { cfg.AutoCheckpointIdle, cfg.AutoCheckpointKeep = 0, time.Hour })
	live, gone := startKernelTool(t, cl), startKernelTool(t, cl)
	mustExecute(t, cl, live, "a = 1")
	mustExecute(t, cl, gone, "b = 2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 2 {
		t.Fatalf("pass: %+v", r)
	}
	shutDownByServer(t, c, gone)

	c.collectExpiredAutoCheckpoints(ctx, time.Now())
	if _, ok := autoEntry(t, c, gone); !ok {
		t.Fatal("a gone kernel's auto-checkpoint younger than --auto-checkpoint-keep was deleted")
	}
	c.cfg.AutoCheckpointKeep = 0
	c.collectExpiredAutoCheckpoints(ctx, time.Now().Add(24*365*time.Hour))
	if _, ok := autoEntry(t, c, gone); !ok {
		t.Fatal("--auto-checkpoint-keep 0 deleted an auto-checkpoint")
	}
	c.cfg.AutoCheckpointKeep = time.Hour
	c.collectExpiredAutoCheckpoints(ctx, time.Now().Add(2*time.Hour))
	if _, ok := autoEntry(t, c, gone); ok {
		t.Fatal("a gone kernel's auto-checkpoint older than --auto-checkpoint-keep was kept")
	}
	if _, ok := autoEntry(t, c, live); !ok {
		t.Fatal("a running kernel's auto-checkpoint was collected")
	}
	if l := logs.String(); !strings.Contains(l, "older than --auto-checkpoint-keep") || !strings.Contains(l, gone) {
		t.Fatalf("the collection is not logged:\n%s", l)
	}
}

// TestAutoCheckpointQuotaCollectsGoneKernels: when a running kernel's
// auto-checkpoint is refused for its owner's quota, the owner's
// auto-checkpoints of kernels that no longer run are deleted, oldest first
// (each logged), and the save is tried again and succeeds.
func TestAutoCheckpointQuotaCollectsGoneKernels(t *testing.T) {
	var logs syncBuffer
	c, cl := autoCore(t, &logs, func(cfg *config) {
		cfg.AutoCheckpointIdle, cfg.AutoCheckpointKeep, cfg.MaxCheckpointBytes = 0, 0, 3<<20
	})
	older, newer, live := startKernelTool(t, cl), startKernelTool(t, cl), startKernelTool(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, k := range []string{older, newer} {
		mustExecute(t, cl, k, "import os\nblob = os.urandom(1 << 20)")
		if r := c.autoCheckpointAll(ctx); !slices.Equal(r.Saved, []string{k}) {
			t.Fatalf("pass for %s: %+v", k, r)
		}
	}
	shutDownByServer(t, c, older)
	shutDownByServer(t, c, newer)

	mustExecute(t, cl, live, "import os\nwork = os.urandom(3 << 19)")
	r := c.autoCheckpointAll(ctx)
	if !slices.Equal(r.Saved, []string{live}) {
		t.Fatalf("the running kernel's auto-checkpoint over quota: %+v\n%s", r, logs.String())
	}
	for _, k := range []string{older, newer} {
		if _, ok := autoEntry(t, c, k); ok {
			t.Fatalf("the gone kernel %s's auto-checkpoint was not collected", k)
		}
	}
	l := logs.String()
	first, second := strings.Index(l, "kernel_id="+older), strings.Index(l, "kernel_id="+newer)
	if !strings.Contains(l, "auto-checkpoint deleted to make room") || first < 0 || second < 0 || first > second {
		t.Fatalf("the collection for quota is not logged oldest first:\n%s", l)
	}
}

// TestAutoCheckpointResumesAfterALateRestoreLoad: a restore that only timed
// out is recorded as failed, but its load may still end in the kernel
// (recorded by the server, no principal): that load clears the failure —
// also after a pass already judged it — and auto-checkpoints resume.
func TestAutoCheckpointResumesAfterALateRestoreLoad(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "before = 'friday'")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 1 {
		t.Fatalf("pass: %+v", r)
	}
	if _, text := callTool(t, cl, "restart_kernel", map[string]any{"kernel": k}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("restart_kernel: %s", text)
	}
	// NB: what the restore records when its load timed out (restore.go restoreLoad).
	if _, err := c.log.Append(ctx, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelRestored{KernelID: k,
		Checkpoint: autoCheckpointName(k), Error: "the restore timed out"}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "the restart shown", func() (bool, string) {
		kk, _ := c.kernels.Get(k)
		return kk.Restarts == 1 && kk.State == "running", fmt.Sprint(kk.Restarts, kk.State)
	})
	mustExecute(t, cl, k, "early = 1")
	if r := c.autoCheckpointAll(ctx); r.Skipped[k] != skipRestoreFailed {
		t.Fatalf("pass after the timed-out restore: %+v", r)
	}
	// The timed-out load ends in the kernel after all: the server's load, no principal.
	if _, err := c.ckpt.Load(ctx, checkpoint.LoadRequest{Name: autoCheckpointName(k), KernelID: k, Policy: checkpoint.PolicyWarn}); err != nil {
		t.Fatalf("the server's late load: %v", err)
	}
	mustExecute(t, cl, k, "after = 'monday'")
	if r := c.autoCheckpointAll(ctx); !slices.Equal(r.Saved, []string{k}) {
		t.Fatalf("pass after the late load: %+v", r)
	}
	fresh := startKernelTool(t, cl)
	callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(k)})
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "print(before, after)"}); !strings.Contains(text, "friday monday") {
		t.Fatalf("the new auto-checkpoint: %s", text)
	}
}
