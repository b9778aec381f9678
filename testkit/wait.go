package testkit

import (
	"sync"
	"testing"
	"time"
)

// WaitUntil polls cond until it holds, failing the test once timeout has
// passed with what and the state cond last described. For conditions
// nothing signals (a gauge, a process table); where a channel or Changed()
// exists, select on it with a deadline instead.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s (%s)", what, timeout, state)
		}
		time.Sleep(pause) // NB: a poll interval, not an ordering: cond decides
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// Receive returns the next value from ch, failing the test if none comes
// within timeout (or ch is closed) — a channel receive that cannot hang a
// test run.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("%s: nothing within %s", what, timeout)
	}
	var zero T
	return zero
}

// Closed waits until ch is closed (or delivers), failing the test after
// timeout.
func Closed[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not done within %s", what, timeout)
	}
}

// WaitGroup waits for wg, failing the test after timeout. (On a timeout
// the goroutine calling wg.Wait outlives the test; the test has failed.)
func WaitGroup(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	Closed(t, done, timeout, what)
}
