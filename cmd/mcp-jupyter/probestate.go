package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
)

// How the probes' state is kept current. The handlers of /health, /livez
// and /readyz read only this state (atomics): they never call the log, the
// actors or take a lock the hot path holds, so a probe answers in the time
// of an HTTP round trip however busy the server is. A monitor owned by the
// core refreshes it.
const (
	// readinessEvery is how often the monitor re-runs the readiness checks
	// (and at once when the start moves to another stage).
	readinessEvery = 250 * time.Millisecond
	// readinessStale: a snapshot older than this makes /readyz answer 503:
	// the checks themselves are stuck (a lock or a component that does not
	// answer), which is itself a reason not to send work.
	readinessStale = 10 * time.Second
	// pingEvery is how often the monitor pings the actor system.
	pingEvery = time.Second
	// livenessStale: /livez fails when the actor system has answered no
	// ping for this long (a wedged process, which a restart fixes).
	livenessStale = 20 * time.Second
)

// probeState is what the probe handlers read.
type probeState struct {
	stage     atomic.Pointer[string]
	readiness atomic.Pointer[readinessSnapshot]
	// actorsAnswered is when the actor system last answered a ping (or had
	// none to answer: not started yet, or closing), in Unix nanoseconds;
	// pingErr is why the last ping failed.
	actorsAnswered atomic.Int64
	pingErr        atomic.Pointer[string]
	kick           chan struct{} // cap 1: re-check now
	// staleAfter and livenessAfter are readinessStale and livenessStale
	// (tests shorten them).
	staleAfter    time.Duration
	livenessAfter time.Duration
}

// readinessSnapshot is one run of the readiness checks, as /readyz shows it
// (ids scrubbed), and when it ran.
type readinessSnapshot struct {
	rd readiness
	at time.Time
}

func newProbeState(stage string, now time.Time) *probeState {
	p := &probeState{kick: make(chan struct{}, 1), staleAfter: readinessStale, livenessAfter: livenessStale}
	p.setStage(stage)
	p.actorsAnswered.Store(now.UnixNano())
	return p
}

// setStage publishes the start's stage and asks for a re-check.
func (p *probeState) setStage(s string) {
	p.stage.Store(&s)
	p.recheck()
}

// recheck asks the monitor to run the readiness checks now (something they
// read changed); it never blocks.
func (p *probeState) recheck() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// ready is /readyz's answer at now: the last snapshot, or "not ready" with
// the stage when there is none yet or it is stale.
func (p *probeState) ready(now time.Time) readiness {
	stage := *p.stage.Load()
	snap := p.readiness.Load()
	if snap == nil {
		return readiness{Status: "not ready", Reason: "replay: " + stage, Stage: stage, Checks: map[string]string{"replay": stage}}
	}
	if age := now.Sub(snap.at); age > p.staleAfter {
		rd := snap.rd
		rd.Checks = maps.Clone(snap.rd.Checks)
		why := fmt.Sprintf("the readiness checks have not completed for %s: the event log, NATS or the actor system does not answer", age.Round(time.Second))
		rd.Checks["probe"] = why
		rd.Status, rd.Reason = "not ready", "probe: "+why
		return rd
	}
	return snap.rd
}

// live is /livez's answer at now: nil while the actor system answered a
// ping within livenessAfter.
func (p *probeState) live(now time.Time) error {
	silent := now.Sub(time.Unix(0, p.actorsAnswered.Load()))
	if silent <= p.livenessAfter {
		return nil
	}
	why := "no answer"
	if e := p.pingErr.Load(); e != nil {
		why = *e
	}
	return fmt.Errorf("the actor system has answered no ping for %s (last: %s)", silent.Round(time.Second), why)
}

// monitorProbes starts the goroutines that keep c.probes current, until
// ctx ends (close). They are the only callers of the checks.
func (c *core) monitorProbes(ctx context.Context) {
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(readinessEvery)
		defer t.Stop()
		for {
			rd := c.readiness().withoutIDs(c.kernelIDs())
			c.probes.readiness.Store(&readinessSnapshot{rd: rd, at: time.Now()})
			select {
			case <-ctx.Done():
				return
			case <-c.probes.kick:
			case <-t.C:
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			c.mu.RLock()
			sys := c.sys
			c.mu.RUnlock()
			var err error
			if sys != nil {
				err = sys.Ping(livenessTimeout)
			}
			if err == nil || errors.Is(err, system.ErrClosed) {
				c.probes.actorsAnswered.Store(time.Now().UnixNano())
			} else {
				why := err.Error()
				c.probes.pingErr.Store(&why)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
