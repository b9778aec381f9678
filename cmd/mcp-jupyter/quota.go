package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// errQuota marks a refusal by a per-principal quota (kernels, queued
// executions). Nothing was done; what was accepted before is untouched.
var errQuota = errors.New("quota reached")

// quotas bounds what each principal holds: live kernels (--max-kernels,
// or the principal's own max_kernels) and executions waiting on any kernel
// (--max-queued-per-principal). A bound is exact under concurrency: the
// read models count what the log holds, and the starts and submits under
// way (not yet in the models) are reserved here under one mutex, released
// only once the models reflect them. A count may briefly include a kernel
// or execution twice (in the model and still reserved): a refusal then
// errs on the safe side, never past the bound. 0 means no bound.
type quotas struct {
	maxKernels int
	maxQueued  int
	kernels    *kernels.Model
	queue      *queue.Model

	mu         sync.Mutex
	starting   map[string]int // principal → kernel starts under way
	submitting map[string]int // principal → submits under way
}

func newQuotas(maxKernels, maxQueued int, km *kernels.Model, q *queue.Model) *quotas {
	return &quotas{maxKernels: maxKernels, maxQueued: maxQueued, kernels: km, queue: q,
		starting: map[string]int{}, submitting: map[string]int{}}
}

// ownerOf is the principal a kernel counts for (kernels from before
// principals existed are the admin's).
func ownerOf(k kernels.Kernel) string {
	if k.Owner == "" {
		return auth.AdminName
	}
	return k.Owner
}

// liveKernels lists the kernels p owns that run or are starting.
func (q *quotas) liveKernels(p string) []string {
	var ids []string
	for _, k := range q.kernels.List() {
		if ownerOf(k) == p && (k.State == kernels.StateRunning || k.State == kernels.StateStarting) {
			ids = append(ids, k.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// reserveKernel admits a kernel start for p, or says why not. The caller
// calls the release it returns once the start is over and the models
// reflect it (or it failed).
func (q *quotas) reserveKernel(p auth.Principal) (release func(), err error) {
	limit, setting := q.maxKernels, fmt.Sprintf("--max-kernels %d", q.maxKernels)
	if p.MaxKernels > 0 {
		limit, setting = p.MaxKernels, fmt.Sprintf("principal %q's max_kernels %d", p.Name, p.MaxKernels)
	}
	if limit <= 0 {
		return func() {}, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	// NB: a count kept by the model, O(1): the list (a copy of every
	// kernel) is made only for the refusal's message.
	if n := q.kernels.LiveCount(p.Name, auth.AdminName) + q.starting[p.Name]; n >= limit {
		live := q.liveKernels(p.Name)
		var held []string
		if len(live) > 0 {
			held = append(held, "kernels "+strings.Join(firstFew(live, 5), ", "))
		}
		if n := q.starting[p.Name]; n > 0 {
			held = append(held, fmt.Sprintf("%d starting", n))
		}
		what := strings.Join(held, " and ")
		return nil, fmt.Errorf("kernel %w: principal %q has %d of %d kernels (%s; %s): shut one down (list_kernels, shutdown_kernel) or ask an admin to raise it; nothing was started",
			errQuota, p.Name, n, limit, setting, what)
	}
	q.starting[p.Name]++
	return q.releaser(q.starting, p.Name), nil
}

// reserveQueued admits a submit for p, or says why not.
func (q *quotas) reserveQueued(p auth.Principal) (release func(), err error) {
	if q.maxQueued <= 0 {
		return func() {}, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.queue.Waiting(p.Name, auth.AdminName)
	if held := waiting + q.submitting[p.Name]; held >= q.maxQueued {
		return nil, fmt.Errorf("queue %w: principal %q has %d of %d executions waiting across its kernels (--max-queued-per-principal %d): "+
			"wait for some to start, cancel_execution some (list_executions status queued shows them), or ask an admin to raise it; this code was not queued",
			errQuota, p.Name, held, q.maxQueued, q.maxQueued)
	}
	q.submitting[p.Name]++
	return q.releaser(q.submitting, p.Name), nil
}

func (q *quotas) releaser(m map[string]int, name string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			if m[name]--; m[name] <= 0 {
				delete(m, name)
			}
			q.mu.Unlock()
		})
	}
}

func firstFew(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	return append(ids[:n:n], fmt.Sprintf("… (%d more)", len(ids)-n))
}
