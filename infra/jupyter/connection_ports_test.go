package jupyter

import (
	"sync"
	"testing"
)

// TestPortsNeverHandedOutTwice: concurrent allocations get distinct ports
// even though each port is free again the moment it is chosen.
func TestPortsNeverHandedOutTwice(t *testing.T) {
	var p Ports
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ports, err := p.allocate(5)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, port := range ports {
				if seen[port] {
					t.Errorf("port %d handed out twice", port)
				}
				seen[port] = true
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("%d distinct ports, want 200", len(seen))
	}
}
