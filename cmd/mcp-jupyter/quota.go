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
// read models count what the log holds, and each start or submit under way
// is a reservation here, under one mutex, counted until the model holds
// what it made. 0 means no bound.
type quotas struct {
	maxKernels int
	maxQueued  int
	kernels    *kernels.Model
	queue      *queue.Model

	mu         sync.Mutex
	starting   map[string]map[*reservation]struct{} // principal → kernel starts under way
	submitting map[string]map[*reservation]struct{} // principal → submits under way
}

func newQuotas(maxKernels, maxQueued int, km *kernels.Model, q *queue.Model) *quotas {
	return &quotas{maxKernels: maxKernels, maxQueued: maxQueued, kernels: km, queue: q,
		starting: map[string]map[*reservation]struct{}{}, submitting: map[string]map[*reservation]struct{}{}}
}

// reservation is one start or submit under way, of the kernel or
// execution id it will make (chosen before the actor records it, so that
// the model holding it is seen the moment it applies). A nil reservation
// (no bound set) does nothing.
type reservation struct {
	q    *quotas
	set  map[string]map[*reservation]struct{}
	who  string
	id   string
	once sync.Once
}

// Release ends the reservation: the start or submit failed, or the models
// reflect it.
func (r *reservation) Release() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		r.q.mu.Lock()
		defer r.q.mu.Unlock()
		delete(r.set[r.who], r)
		if len(r.set[r.who]) == 0 {
			delete(r.set, r.who)
		}
	})
}

// reserve adds a reservation for who to set. Call with q.mu held.
func (q *quotas) reserve(set map[string]map[*reservation]struct{}, who, id string) *reservation {
	r := &reservation{q: q, set: set, who: who, id: id}
	if set[who] == nil {
		set[who] = map[*reservation]struct{}{}
	}
	set[who][r] = struct{}{}
	return r
}

// pending counts who's reservations whose kernel or execution the model
// does not hold yet. Call with q.mu held, BEFORE reading the model's own count: a result
// applied in between is then counted twice (a refusal errs on the safe
// side), never missed.
func pending(set map[string]map[*reservation]struct{}, who string, inModel func(id string) bool) int {
	n := 0
	for r := range set[who] {
		if !inModel(r.id) {
			n++
		}
	}
	return n
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

// reserveKernel admits the start of kernel id for p, or says why not. The caller
// calls the release it returns once the start is over and the models
// reflect it (or it failed).
func (q *quotas) reserveKernel(p auth.Principal, id string) (*reservation, error) {
	limit, setting := q.maxKernels, fmt.Sprintf("--max-kernels %d", q.maxKernels)
	if p.MaxKernels > 0 {
		limit, setting = p.MaxKernels, fmt.Sprintf("principal %q's max_kernels %d", p.Name, p.MaxKernels)
	}
	if limit <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	starting := pending(q.starting, p.Name, func(id string) bool { _, ok := q.kernels.Get(id); return ok })
	// NB: a count kept by the model, O(1): the list (a copy of every
	// kernel) is made only for the refusal's message.
	if n := q.kernels.LiveCount(p.Name, auth.AdminName) + starting; n >= limit {
		live := q.liveKernels(p.Name)
		var held []string
		if len(live) > 0 {
			held = append(held, "kernels "+strings.Join(firstFew(live, 5), ", "))
		}
		if starting > 0 {
			held = append(held, fmt.Sprintf("%d starting", starting))
		}
		what := strings.Join(held, " and ")
		return nil, fmt.Errorf("kernel %w: principal %q has %d of %d kernels (%s; %s): shut one down (list_kernels, shutdown_kernel) or ask an admin to raise it; nothing was started",
			errQuota, p.Name, n, limit, setting, what)
	}
	return q.reserve(q.starting, p.Name, id), nil
}

// reserveQueued admits the submit of execution id for p, or says why not.
func (q *quotas) reserveQueued(p auth.Principal, id string) (*reservation, error) {
	if q.maxQueued <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	submitting := pending(q.submitting, p.Name, func(id string) bool { _, ok := q.queue.Get(id); return ok })
	if held := q.queue.Waiting(p.Name, auth.AdminName) + submitting; held >= q.maxQueued {
		return nil, fmt.Errorf("queue %w: principal %q has %d of %d executions waiting across its kernels (--max-queued-per-principal %d): "+
			"wait for some to start, cancel_execution some (list_executions status queued shows them), or ask an admin to raise it; this code was not queued",
			errQuota, p.Name, held, q.maxQueued, q.maxQueued)
	}
	return q.reserve(q.submitting, p.Name, id), nil
}

func firstFew(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	return append(ids[:n:n], fmt.Sprintf("… (%d more)", len(ids)-n))
}
