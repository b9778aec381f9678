// Package testkit holds test helpers shared across mcp-jupyter's packages:
// real parts on the main path, never mocks of our own code.
//
// Contract:
//
//  1. Every helper takes testing.TB, calls t.Helper and registers its own
//     cleanup with t.Cleanup; none hands back a cleanup function.
//  2. A failure inside a helper fails the test (t.Fatal); helpers return
//     ready-to-use values.
//  3. Generated data is deterministic: the same arguments give the same
//     drafts, so benchmarks and golden comparisons are repeatable.
//
// Usage:
//
//	dir := testkit.TempDataDir(t)
//	log := testkit.OpenLog(t, dir)                           // closed on cleanup
//	log = testkit.LogWithEvents(t, 100_000, testkit.Mix{})   // a realistic log
//	drafts := testkit.RealisticDrafts(1_000_000)             // for replay benchmarks
//
// Conformance suites live in sub-packages named after what they test
// (eventlogtest).
package testkit
