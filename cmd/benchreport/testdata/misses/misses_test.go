// Package misses is a benchmark package whose figure misses its target,
// for TestMakeBenchGoesOn. It runs after a package that panicked.
package misses

import "testing"

func BenchmarkFanOut100(b *testing.B) {
	for range b.N {
	}
	b.ReportMetric(0.5, "ratio-stalled-throughput")
}
