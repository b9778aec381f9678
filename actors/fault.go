package actors

// Faults is the crash-injection hook of the kill -9 tests (infra/fault
// implements it; production passes nil). See infra/fault for the points.
type Faults interface {
	Hit(point string)
}

// Hit hits point on f, if there is one.
func Hit(f Faults, point string) {
	if f != nil {
		f.Hit(point)
	}
}
