package membudget

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// Budget is a memory budget of its own, for producers: encoders that run
// side by side (pack's tar patch and floor of a layer, on --jobs workers)
// take what a task will hold before they start it, so together they never
// hold more than the budget, whatever the number of workers. Unlike the
// process-wide budget above it sets no heap limit. A nil *Budget is no
// budget: Take returns at once.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// BestTables is what a zstd encoder at the best level holds besides its
// window, whatever its input: its match tables and, with a dictionary,
// the copies it resets them from (klauspost zstd: 2 × (2^22 + 2^18)
// entries of 8 bytes). A task compressing at that level takes it from a
// Budget on top of its input, so that two such encoders, about 100 MiB
// each with their windows, do not run side by side beside everything
// else pack holds.
const BestTables = 68 << 20

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget { return &Budget{sem: semaphore.NewWeighted(n), size: n} }

// Take blocks until n bytes of b are free (the whole budget when n is
// more, so such a task runs alone) and returns what gives them back. It
// does not heed a context: a task's share always comes back when the task
// ends, and a task must run to finish either way.
func (b *Budget) Take(n int64) (release func()) {
	if b == nil {
		return func() {}
	}
	n = min(max(n, 1), b.size)
	b.sem.Acquire(context.Background(), n)
	return func() { b.sem.Release(n) }
}
