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

// TestBudgetTryTake: TryTake takes what is free and refuses, without
// waiting, what is not; a nil budget always gives.
func TestBudgetTryTake(t *testing.T) {
	b := NewBudget(100)
	held := b.Take(60)
	if _, ok := b.TryTake(50); ok {
		t.Fatal("TryTake(50) succeeded with 40 of 100 free")
	}
	r, ok := b.TryTake(40)
	if !ok {
		t.Fatal("TryTake(40) failed with 40 free")
	}
	r()
	held()
	r, ok = b.TryTake(500) // more than the budget: the whole of it
	if !ok {
		t.Fatal("TryTake(500) failed on an idle budget of 100")
	}
	if _, ok := b.TryTake(1); ok {
		t.Fatal("TryTake(1) succeeded while the whole budget was taken")
	}
	r()
	var none *Budget
	if r, ok := none.TryTake(1 << 40); !ok {
		t.Fatal("nil budget refused")
	} else {
		r()
	}
}
