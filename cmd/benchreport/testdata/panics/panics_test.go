// Package panics is a benchmark package that panics, for TestMakeBenchGoesOn.
package panics

import (
	"testing"
	"time"
)

// The panic is raised on a goroutine the benchmark started, as a kernel
// reader or a server's handler would: no frame of the testing package
// stands between it and the process, so it ends the run the same way
// wherever the test runs (CI once saw a panic on the benchmark's own
// goroutine end as a silent pass).
func BenchmarkKernelActorRoundTrip(b *testing.B) {
	go func() { panic("the kernel went away") }()
	time.Sleep(time.Minute)
	b.Fatal("the panicking goroutine did not end the run")
}
