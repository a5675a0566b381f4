package resolve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// Target-layer sources. In a bundle a layer may be patched against a
// layer the archive itself rebuilds earlier (sidecar.Source.Target):
// another image's new layer, or an earlier one of the same image. resolve
// then builds the source first — a task waits for the layers it reads,
// and tasks are started in an order where those come first (the sidecar
// guarantees they come earlier, so there is no cycle; dependencyOrder
// checks anyway) — and reads the verified blob back from the new layout,
// spooled uncompressed. A spool is dropped as soon as the last patch that
// reads it is done, so only the sources of patches in flight stay on
// disk. An image whose source image is not resolved is skipped too
// (skipDependents).

// targetSpools tracks, during build, which layers later patches read,
// when each is written, and its spool.
type targetSpools struct {
	cache *spool.Cache
	dir   string // the layout being built
	mu    sync.Mutex
	// uses counts the patches still to read each source layer.
	uses  map[digest.Digest]int
	ready map[digest.Digest]chan struct{}
	// spooled marks the sources spooled and not yet dropped; peak is
	// the most there were at once, total how many were spooled.
	spooled     map[digest.Digest]bool
	peak, total int
}

func newTargetSpools(cache *spool.Cache, dir string) *targetSpools {
	return &targetSpools{cache: cache, dir: dir, uses: map[digest.Digest]int{}, ready: map[digest.Digest]chan struct{}{}, spooled: map[digest.Digest]bool{}}
}

// targetDigests lists the target-layer sources of b.
func targetDigests(b sidecar.Blob) []digest.Digest {
	if b.Patch == nil {
		return nil
	}
	var out []digest.Digest
	for _, s := range b.Patch.Sources {
		if s.Target != "" {
			out = append(out, s.Digest)
		}
	}
	return out
}

// count records the sources of one task (before build starts).
func (t *targetSpools) count(b sidecar.Blob) {
	for _, d := range targetDigests(b) {
		t.uses[d]++
		if t.ready[d] == nil {
			t.ready[d] = make(chan struct{})
		}
	}
}

// rank orders tasks before dependencyOrder: layers others read and
// patches (the slow part) first, so the workers overlap.
func (t *targetSpools) rank(b sidecar.Blob) int {
	if t.ready[b.Digest] != nil || b.Action == sidecar.Patch {
		return 0
	}
	return 1
}

// wait blocks until every target-layer source of b is written.
func (t *targetSpools) wait(ctx context.Context, b sidecar.Blob) error {
	for _, d := range targetDigests(b) {
		select {
		case <-t.ready[d]:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// done says the layer d is written and verified in the new layout. Each
// digest has one task, so this runs at most once per digest; ready is
// not written after count, so wait reads it without the lock.
func (t *targetSpools) done(d digest.Digest) {
	if ch := t.ready[d]; ch != nil {
		close(ch)
	}
}

// release says b no longer reads its sources; a spool no later patch
// reads is dropped.
func (t *targetSpools) release(b sidecar.Blob) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range targetDigests(b) {
		if t.uses[d]--; t.uses[d] == 0 {
			t.cache.Drop(d.String())
			delete(t.spooled, d)
		}
	}
}

// open spools a written source layer uncompressed, checked against its
// diffID.
func (t *targetSpools) open(ctx context.Context, s sidecar.Source) (*spool.File, error) {
	path := layout.BlobPath(t.dir, s.Digest)
	f, err := t.cache.Content(ctx, s.Digest.String(), func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fault.Errorf(fault.Internal, "target layer %s (of image %q) was not written before the patch that reads it: %w", s.Digest, s.Target, err)
		}
		return recompress.Decompress(f)
	}, s.DiffID, fmt.Sprintf("target layer %s of image %q", s.Digest, s.Target))
	if err == nil {
		t.mu.Lock()
		if !t.spooled[s.Digest] {
			t.spooled[s.Digest] = true
			t.total++
			t.peak = max(t.peak, len(t.spooled))
		}
		t.mu.Unlock()
	}
	return f, err
}

// logSpools says how many target-layer sources were spooled, and how
// many at most at once (a source is dropped after its last reader).
func (t *targetSpools) logSpools(log *slog.Logger) {
	if t.total > 0 {
		log.Info("target-layer sources spooled", "sources", t.total, "atOnce", t.peak)
	}
}

// dependencyOrder returns an order of tasks 0..n-1 in which each comes
// after the tasks (by digest) it depends on, otherwise keeping the given
// order. A dependency no task writes, or a cycle, is an error.
func dependencyOrder(n int, digestOf func(int) digest.Digest, depsOf func(int) []digest.Digest) ([]int, error) {
	byDigest := make(map[digest.Digest]int, n)
	for i := 0; i < n; i++ {
		byDigest[digestOf(i)] = i
	}
	const (
		unseen = iota
		visiting
		placed
	)
	state := make([]int, n)
	order := make([]int, 0, n)
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case placed:
			return nil
		case visiting:
			return fault.Errorf(fault.Integrity, "resolve: layer %s depends on itself through target-layer patch sources", digestOf(i))
		}
		state[i] = visiting
		for _, d := range depsOf(i) {
			j, ok := byDigest[d]
			if !ok {
				return fault.Errorf(fault.Internal, "resolve: layer %s is patched against layer %s, which no image being resolved rebuilds", digestOf(i), d)
			}
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = placed
		order = append(order, i)
		return nil
	}
	for i := 0; i < n; i++ {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// skipDependents skips every image that reads a target layer of an image
// that will not be resolved (skipped or failed in preflight), and so on
// transitively; it says why in the image's report and returns the images
// still to resolve and the problems so far.
func (r *resolver) skipDependents(works []*imageWork, found []verdict, rep *Report, problems []string) ([]*imageWork, []string) {
	ok := map[string]bool{}
	for i, im := range r.sc.Images {
		ok[im.Name] = found[i] == ready
	}
	for changed := true; changed; {
		changed = false
		for i, im := range r.sc.Images {
			if !ok[im.Name] {
				continue
			}
		blobs:
			for _, b := range im.Blobs {
				if b.Patch == nil {
					continue
				}
				for _, s := range b.Patch.Sources {
					if s.Target == "" || ok[s.Target] {
						continue
					}
					msg := fmt.Sprintf("image %q: skipped because its layer %s is patched against layer %s of bundle image %q, which is not resolved: resolve %q too (give its baseline)", im.Name, b.Digest, s.Digest, s.Target, s.Target)
					ok[im.Name], found[i], changed = false, sourceSkipped, true
					rep.Images[i].Reason = msg
					problems = append(problems, msg)
					break blobs
				}
			}
		}
	}
	var kept []*imageWork
	for _, w := range works {
		if ok[w.im.Name] {
			kept = append(kept, w)
		}
	}
	return kept, problems
}
