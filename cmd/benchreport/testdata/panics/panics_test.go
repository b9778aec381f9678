// Package panics is a benchmark package that panics, for TestMakeBenchGoesOn.
package panics

import "testing"

func BenchmarkKernelActorRoundTrip(b *testing.B) {
	panic("the kernel went away")
}
