// Package membudget is the process-wide budget for the memory that input
// decides the size of: patch decoding and recompression in resolve. A
// hostile archive can make each of those use up to its limit (a decode
// its tarpatch.DecodeMemory, a recompressor its recipe's WriterMemory);
// with one per worker, the process would use jobs × that. Instead each
// worker acquires its worst case here, all at once, before it allocates,
// and releases it when done, so the sum over every worker never exceeds
// Total, whatever --jobs says. Acquiring once per task (never while
// holding another share) keeps the budget free of deadlocks.
//
// Total is sized so that, with what the rest of diffah holds (archive
// reading, tar buffers, the Go runtime), the peak RSS of any hostile
// input stays below ProcessLimit (see SECURITY.md, "Hostile archives:
// limits"). That needs the garbage of finished tasks collected before it
// piles up on the next ones' buffers, so the first Acquire also sets the
// Go heap's soft limit to match (unless GOMEMLIMIT chose one): only a
// process that decodes patches gets it, so pack and plan, whose memory
// is the producer's own, do not.
package membudget

import (
	"context"
	"os"
	"runtime/debug"
	"sync"

	"golang.org/x/sync/semaphore"
)

const (
	// ProcessLimit is the peak RSS diffah promises for any input.
	ProcessLimit = 512 << 20
	// Total is what all decoders and recompressors together may hold.
	Total = 320 << 20
	// softLimit is the Go heap's soft limit: the collector works harder
	// near it, so garbage from one task's buffers does not pile up on
	// top of the next task's.
	softLimit = 448 << 20
)

var (
	budget    = semaphore.NewWeighted(Total)
	limitOnce sync.Once
)

// Acquire blocks until n bytes of the budget are free (or ctx is done)
// and returns the function that gives them back. A request larger than
// Total waits for the whole budget, so it runs alone.
func Acquire(ctx context.Context, n int64) (release func(), err error) {
	limitOnce.Do(func() { setProcessLimit(os.Getenv) })
	n = min(max(n, 0), Total)
	if err := budget.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { budget.Release(n) }, nil
}

// setProcessLimit sets the Go runtime's soft memory limit to match the
// budget, unless GOMEMLIMIT already chose one.
func setProcessLimit(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softLimit)
	}
}
