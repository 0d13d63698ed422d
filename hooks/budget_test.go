package hooks

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestBudgetBounds: however many goroutines ask, the bytes held at once
// never exceed the budget, and a request larger than the budget still runs
// (alone).
func TestBudgetBounds(t *testing.T) {
	t.Parallel()
	b := newBudget(10)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(1 + i%4)
			if i == 7 {
				n = 100 // larger than the budget
			}
			b.acquire(n)
			cost := min(n, 10)
			h := held.Add(cost)
			for {
				p := peak.Load()
				if h <= p || peak.CompareAndSwap(p, h) {
					break
				}
			}
			held.Add(-cost)
			b.release(n)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 10 {
		t.Errorf("held %d bytes at once, budget 10", p)
	}
	if b.free != 10 {
		t.Errorf("%d bytes free after every release, want 10", b.free)
	}
}
