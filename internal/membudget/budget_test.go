package membudget

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestBudgetBounds: tasks together never hold more than the budget; a
// task larger than the budget runs alone; a nil budget does not wait.
func TestBudgetBounds(t *testing.T) {
	b := NewBudget(100)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(10 + i%5*20) // 10..90, and 500 below
			if i == 7 {
				n = 500
			}
			release := b.Take(n)
			n = min(n, 100)
			h := held.Add(n)
			for {
				p := peak.Load()
				if h <= p || peak.CompareAndSwap(p, h) {
					break
				}
			}
			held.Add(-n)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 100 {
		t.Fatalf("tasks held %d bytes at once, budget 100", p)
	}
	var none *Budget
	none.Take(1 << 40)()
}
