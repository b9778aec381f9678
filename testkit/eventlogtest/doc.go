// Package eventlogtest is the conformance suite for mcp-jupyter's event log.
//
// Run it from the implementation's tests with a function that opens a log
// in a given data dir (registering its Close with t.Cleanup):
//
//	func TestConformance(t *testing.T) {
//		eventlogtest.Run(t, func(t testing.TB, dir string) *eventlog.Log {
//			return testkit.OpenLog(t, dir)
//		})
//	}
//
// The suite covers what callers rely on (see infra/eventlog/doc.go): gapless
// sequences, range and index reads, undecoded scans, Follow's wake-up on
// append, group commit, reopen, Close and ErrClosed, snapshots, truncation
// and ErrNotFound. Each case gets its own data dir and may reopen it.
package eventlogtest
