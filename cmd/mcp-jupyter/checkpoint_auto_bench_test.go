package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// BenchmarkAutoCheckpointShutdown: 20 kernels holding 50 MB each (random
// bytes: nothing to share or compress), the auto-checkpoint pass a SIGTERM
// runs after its drain. Reports:
//   - pass-s: the pass with the default bound (one save per core);
//     pass-s-p1, -p2, -p4, -p8: the same pass with 1, 2, 4 and 8 saves at once;
//   - within-25s: 1 when pass-s fits what a 25 s grace leaves it
//     (25 s less closeReserve, with a drain that waited for nothing);
//   - save-one-s: the baseline, one kernel's 50 MB auto-checkpoint alone in
//     the same run, and ratio-vs-serial = pass-s / (20 × save-one-s);
//   - save-one-kernel-s: of save-one-s, the time the save's execution ran
//     in the kernel (dill pickling into the pipe, the server hashing and
//     writing behind it); the rest is the server's fsync, rename and log;
//   - agent-wait-s: an agent's `1+1` submitted while an idle auto-checkpoint
//     of 50 MB runs: how long it waited behind the save (the worst case).
func BenchmarkAutoCheckpointShutdown(b *testing.B) {
	const kernels, mb = 20, 50
	c, cl := autoCore(b, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	ids := make([]string, kernels)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = startKernelTool(b, cl)
	}
	for i, k := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustExecute(b, cl, k, fmt.Sprintf("import random\ndata = random.Random(%d).randbytes(%d << 20)\nrnd = 0", i, mb))
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	touch := func(ks ...string) {
		for _, k := range ks {
			mustExecute(b, cl, k, "rnd += 1")
		}
	}
	saveExec := func(k string) time.Duration {
		var took time.Duration
		for _, x := range c.queue.List(k, queue.StatusOK) {
			if checkpoint.CodeCall(x.Code) == "save" {
				took = x.FinishedAt.Sub(x.StartedAt) // NB: the last one
			}
		}
		return took
	}
	pass := func(parallel int) float64 {
		touch(ids...)
		c.auto.parallel = parallel
		t0 := time.Now()
		r := c.autoCheckpointAll(ctx)
		took := time.Since(t0).Seconds()
		if len(r.Saved) != kernels {
			b.Fatalf("pass with %d at once saved %d of %d: %+v", parallel, len(r.Saved), kernels, r)
		}
		return took
	}
	pass(0) // NB: the first save of each kernel creates its file; a shutdown mostly replaces one
	b.ResetTimer()
	for range b.N {
		// The baseline first: one kernel alone.
		touch(ids[0])
		t0 := time.Now()
		if err := c.autoCheckpoint(ctx, ids[0]); err != nil {
			b.Fatal(err)
		}
		one := time.Since(t0).Seconds()
		oneKernel := saveExec(ids[0]).Seconds()
		def := pass(0)
		p1, p2, p4, p8 := pass(1), pass(2), pass(4), pass(8)
		c.auto.parallel = 0

		// An agent's execution submitted while an idle save of 50 MB runs.
		touch(ids[1])
		saved := make(chan error, 1)
		go func() { saved <- c.autoCheckpoint(ctx, ids[1]) }()
		for {
			changed := c.queue.Changed()
			if x, ok := c.queue.Active(ids[1]); ok && checkpoint.CodeCall(x.Code) == "save" {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				b.Fatal("the save never started")
			}
		}
		t1 := time.Now()
		mustExecute(b, cl, ids[1], "1+1")
		wait := time.Since(t1).Seconds()
		if err := <-saved; err != nil {
			b.Fatal(err)
		}

		within := 0.0
		if def <= (25*time.Second - closeReserve(25*time.Second)).Seconds() {
			within = 1
		}
		b.ReportMetric(def, "pass-s")
		b.ReportMetric(p1, "pass-s-p1")
		b.ReportMetric(p2, "pass-s-p2")
		b.ReportMetric(p4, "pass-s-p4")
		b.ReportMetric(p8, "pass-s-p8")
		b.ReportMetric(within, "within-25s")
		b.ReportMetric(one, "save-one-s")
		b.ReportMetric(oneKernel, "save-one-kernel-s")
		b.ReportMetric(def/(kernels*one), "ratio-vs-serial")
		b.ReportMetric(wait, "agent-wait-s")
	}
}
