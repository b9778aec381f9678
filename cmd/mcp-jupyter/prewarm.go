package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
)

// defaultKernelSpec is the kernelspec start_kernel uses when none is named,
// and the one a bare --prewarm N pre-starts.
const defaultKernelSpec = "python3"

// parsePrewarm reads --prewarm: "N" (N kernels of the default kernelspec),
// or comma-separated "spec=N" entries, which may mix with one bare N.
// Whether each kernelspec exists is checked when the pool is made (core
// open), where the kernelspecs are found.
func parsePrewarm(v string) (map[string]int, error) {
	out, seen := map[string]int{}, map[string]bool{}
	bad := func(why string) error {
		return fmt.Errorf("--prewarm %q: %s; give a number of kernels of the default kernelspec (%s), e.g. 2, or kernelspec=number pairs, e.g. python3=2,julia=1",
			v, why, defaultKernelSpec)
	}
	for _, part := range splitList(v) {
		name, num, named := strings.Cut(part, "=")
		if !named {
			name, num = defaultKernelSpec, part
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			return nil, bad("a kernelspec name is empty")
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n < 0 {
			return nil, bad(fmt.Sprintf("%q is not a whole number of kernels", num))
		}
		if n > jupyter.MaxPoolSize {
			return nil, bad(fmt.Sprintf("%d kernels of %s is more than %d", n, name, jupyter.MaxPoolSize))
		}
		if seen[name] {
			return nil, bad(fmt.Sprintf("kernelspec %s is named twice", name))
		}
		seen[name] = true
		if n > 0 {
			out[name] = n
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// openPool makes --prewarm's pool (not started: reapPool and RemoveStale
// come first) and registers its metrics. An unknown kernelspec stops the
// start here, before anything else runs.
func (c *core) openPool() error {
	if len(c.cfg.Prewarm) == 0 {
		return nil
	}
	p, err := jupyter.NewPool(c.launcher, jupyter.PoolOptions{Sizes: c.cfg.Prewarm, Logger: c.logger})
	if err != nil {
		return fmt.Errorf("--prewarm %s: %w: fix the name in --prewarm / MCP_PREWARM or install that kernelspec", c.cfg.prewarmString(), err)
	}
	if err := c.reg.Register(metrics.NewPoolCollector(func() []metrics.PoolFigures { return poolFigures(p.Stats()) })); err != nil {
		return fmt.Errorf("register pool metrics: %w", err)
	}
	c.mu.Lock()
	c.pool, c.launcher.Pool = p, p
	c.mu.Unlock()
	return nil
}

func poolFigures(stats []jupyter.PoolStats) []metrics.PoolFigures {
	out := make([]metrics.PoolFigures, 0, len(stats))
	for _, s := range stats {
		out = append(out, metrics.PoolFigures{Spec: s.Spec, Target: s.Target, Ready: s.Ready, Handouts: s.Handouts, Misses: s.Misses,
			Failures: s.Failures, BackingOff: s.ConsecutiveFailures > 0, IdleRSSBytes: s.IdleRSSBytes})
	}
	return out
}

// reapPool kills the pre-started kernels a killed server left in its pool
// (whatever this run's --prewarm): those whose start the log does not hold.
func (c *core) reapPool(keep []string) {
	n, err := jupyter.ReapPool(c.launcher.RuntimeDir, keep, c.logger)
	if err != nil {
		c.logger.Warn("kill the pre-started kernels a previous run left", "component", "kernel", "err", err)
	}
	c.metrics.Live.ZombiesReaped(n)
}

// checkPool is doctor's look at --prewarm: every kernelspec it names must
// exist (serve refuses to start otherwise), and pre-started kernels a
// killed server left in its pool (runtime/pool markers whose kernel the log
// does not hold) are orphans serve kills at start; --reap kills them now.
// procs is nil when a running server holds the log: its pool is its own.
func checkPool(cfg config, procs *procTable, reap bool) []finding {
	var fs []finding
	if len(cfg.Prewarm) > 0 {
		f := finding{Check: "prewarm", OK: true}
		specs, err := jupyter.FindKernelSpecs(jupyter.DefaultSearchPath())
		total := 0
		for name, n := range cfg.Prewarm {
			total += n
			if err == nil {
				if _, lerr := specs.Lookup(name); lerr != nil {
					f.OK, f.Detail = false, fmt.Sprintf("--prewarm %s: %v", cfg.prewarmString(), lerr)
					f.Fix = "install that kernelspec (jupyter kernelspec list shows what is found on JUPYTER_PATH) or fix the name in --prewarm / MCP_PREWARM"
				}
			}
		}
		if err != nil {
			f.OK, f.Detail, f.Fix = false, fmt.Sprintf("find kernelspecs: %v", err), "check JUPYTER_PATH and the kernelspec directories"
		}
		if f.OK {
			f.Detail = fmt.Sprintf("%d kernel(s) kept pre-started (%s): about %d MiB of memory while idle (mcp_jupyter_pool_idle_rss_bytes shows the real figure)",
				total, cfg.prewarmString(), total*idleKernelMiB)
		}
		fs = append(fs, f)
	}
	runtime := filepath.Join(cfg.DataDir, "runtime")
	markers, err := jupyter.ReadPoolMarkers(runtime)
	if err != nil {
		return append(fs, finding{Check: "pool", OK: false, Detail: err.Error(), Fix: "check the permissions of " + filepath.Join(runtime, "pool")})
	}
	if len(markers) == 0 || procs == nil {
		return fs
	}
	keep := []string{}
	current := map[string]bool{}
	for _, p := range procs.Current() {
		keep, current[p.Kernel] = append(keep, p.Kernel), true
	}
	var left []string
	for _, m := range markers {
		if !current[m.KernelID] {
			left = append(left, fmt.Sprintf("%s (pid %d)", m.KernelID, m.Pid))
		}
	}
	if len(left) == 0 {
		return fs
	}
	if reap {
		n, err := jupyter.ReapPool(runtime, keep, slog.New(slog.DiscardHandler))
		f := finding{Check: "pool", OK: err == nil, Detail: fmt.Sprintf("killed %d pre-started kernel process(es) a killed server left in its pool", n)}
		if err != nil {
			f.Detail += ": " + err.Error()
			f.Fix = "kill the rest by hand; their pids are in " + filepath.Join(runtime, "pool")
		}
		return append(fs, f)
	}
	return append(fs, finding{Check: "pool", OK: true, Warn: true,
		Detail: fmt.Sprintf("%d pre-started kernel(s) a killed server left in its pool: %s", len(left), strings.Join(left, ", ")),
		Fix:    "serve kills them at start, or run `mcp-jupyter doctor --reap` now"})
}

// idleKernelMiB is roughly what an idle ipykernel holds resident here
// (BenchmarkStartKernelPooled measures it: idle-rss-MiB-per-kernel).
const idleKernelMiB = 60

// prewarmString is --prewarm as spec=N pairs in name order.
func (c config) prewarmString() string {
	names := make([]string, 0, len(c.Prewarm))
	for name, n := range c.Prewarm {
		names = append(names, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
