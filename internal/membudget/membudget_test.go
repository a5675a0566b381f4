package membudget

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBudgetBoundsConcurrentHolders: however many workers ask at once,
// what they hold together never exceeds Total, and every one gets its
// turn.
func TestBudgetBoundsConcurrentHolders(t *testing.T) {
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(100<<20 + i)
			release, err := Acquire(context.Background(), n)
			if err != nil {
				t.Error(err)
				return
			}
			now := held.Add(n)
			for {
				p := peak.Load()
				if now <= p || peak.CompareAndSwap(p, now) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			held.Add(-n)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > Total || p == 0 {
		t.Fatalf("peak held %d, budget %d", p, Total)
	}
}

// TestAcquireLargerThanTotal runs alone instead of waiting forever, and a
// cancelled wait returns the context's error.
func TestAcquireLargerThanTotal(t *testing.T) {
	release, err := Acquire(context.Background(), 4*Total)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, 1); err == nil {
		t.Fatal("acquired while the whole budget was held")
	}
	release()
	r2, err := Acquire(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

// TestAcquireSetsSoftLimit: the first Acquire sets the heap's soft limit
// to match the budget, and leaves a GOMEMLIMIT the user chose alone.
func TestAcquireSetsSoftLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	setProcessLimit(func(string) string { return "1GiB" })
	if got := debug.SetMemoryLimit(-1); got != old {
		t.Fatalf("GOMEMLIMIT set, yet the limit changed to %d", got)
	}
	setProcessLimit(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != softLimit {
		t.Fatalf("limit %d, want %d", got, softLimit)
	}
}
