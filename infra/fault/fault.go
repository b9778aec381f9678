// Package fault is the crash-injection hook of the kill -9 tests: a named
// point in the server's code where, when asked, the process kills itself
// with SIGKILL, as a power cut or an OOM kill would, with no deferred call,
// flush or close running.
//
// A point is hit by calling Hit on an *Injector the point's owner was given
// (a nil Injector, what production has, costs one nil check). The injector
// is chosen by the MCPJ_FAULT_KILL environment variable, "point" or
// "point:n": kill at the n-th hit of point (default the first).
//
// The points (NB: tests name them; keep them when moving code):
//
//	eventlog.written    an append is in the log's write path (sequenced, handed to Pebble), before its fsync
//	eventlog.durable    an append is synced, before its caller hears of it
//	scheduler.started   ExecutionQueued/Started is in the write path, before the kernel actor is told
//	scheduler.pipelined an execution was handed to the kernel actor behind the running one
//	kernel.sent         an execute_request went to the kernel, before anything else happens
//	kernel.output       a batch of kernel messages is in the write path, before its effects
//	kernel.ended        an execution's end is recorded, before the scheduler is told
package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Points returns the points of the package comment, in its order: the kill
// -9 sweep (cmd/mcp-jupyter TestKill9Sweep) drives every one of them. NB:
// a point added to the comment is added here too (TestPointsAreTheDocumentedOnes).
func Points() []string {
	return []string{
		"eventlog.written", "eventlog.durable",
		"scheduler.started", "scheduler.pipelined",
		"kernel.sent", "kernel.output", "kernel.ended",
	}
}

// EnvVar selects the point to kill at: "point" or "point:n".
const EnvVar = "MCPJ_FAULT_KILL"

// Injector kills the process at the n-th hit of one point.
type Injector struct {
	point string
	n     int64
	hits  atomic.Int64
	// kill ends the process; tests of the injector replace it.
	kill func()
}

// FromEnv returns the injector EnvVar asks for, or nil when it is unset.
func FromEnv() (*Injector, error) {
	spec, ok := os.LookupEnv(EnvVar)
	if !ok || spec == "" {
		return nil, nil
	}
	return Parse(spec)
}

// Parse reads "point" or "point:n" (n ≥ 1).
func Parse(spec string) (*Injector, error) {
	point, count, hasCount := strings.Cut(spec, ":")
	n := int64(1)
	if hasCount {
		v, err := strconv.ParseInt(count, 10, 64)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%s=%q: the hit count after ':' must be a whole number ≥ 1, as in kernel.sent:2", EnvVar, spec)
		}
		n = v
	}
	if point == "" {
		return nil, fmt.Errorf("%s=%q: name a point, as in kernel.sent or kernel.sent:2 (see infra/fault)", EnvVar, spec)
	}
	return &Injector{point: point, n: n, kill: killSelf}, nil
}

// Hit counts a hit of point and kills the process at the chosen one.
func (f *Injector) Hit(point string) {
	if f == nil || point != f.point {
		return
	}
	if f.hits.Add(1) == f.n {
		f.kill()
	}
}

// Point names the point this injector kills at ("" for nil).
func (f *Injector) Point() string {
	if f == nil {
		return ""
	}
	return f.point
}

func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // NB: SIGKILL is not handled; nothing after the point may run
}
