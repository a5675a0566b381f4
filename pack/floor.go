package pack

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/membudget"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/internal/verify"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// checkCodec refuses a plan patch this diffah cannot compute, rather than
// computing another codec's payload under its name.
func checkCodec(p *plan.Plan, b plan.Blob) error {
	switch b.Patch.Codec {
	case tarpatch.Codec, blobpatch.Codec:
		return nil
	case tarpatch.CodecBundle:
		// Only pack itself chooses target-layer sources (fleet.go); a
		// plan naming this codec was refused by plan.Check before.
		return nil
	}
	return fault.WithHint(fault.Errorf(fault.Usage, "pack: plan %q layer %s asks for patch codec %q; this diffah knows %q and %q",
		p.Name, b.Digest, b.Patch.Codec, tarpatch.Codec, blobpatch.Codec), fault.Usage, "run `diffah plan` with this diffah, or pack with the diffah that made the plan")
}

// floor is the patch every patched layer can fall back to: its compressed
// bytes against the compressed bytes of its first source (blobpatch). For
// a layer whose compressor diffah cannot replay it is the only patch; for
// the others it is computed beside the tar patch and the smaller travels,
// so a patch is never larger than the blob nor than this one.
//
// workers, when set, is shared with a tar patch computed at the same time;
// jobs is how many chunks it compresses at once; stop, when set, sees the
// patch's bytes as they are written and may end it (floorStop).
func (st *state) floor(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob, workers *membudget.Budget, jobs int, stop *floorStop) (*payload, error) {
	if floorStarted != nil {
		floorStarted()
	}
	s, src, err := st.floorSource(ctx, plans, p, b)
	if err != nil {
		return nil, err
	}
	rc, err := targetBlob(p, target, b)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := st.temp()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	blob := rc
	var out io.Writer = io.MultiWriter(f, h)
	if stop != nil {
		out = io.MultiWriter(stop, f, h)
	}
	size, err := blobpatch.Encode(ctx, out, blob, b.Size, src, blobpatch.EncodeOptions{Jobs: jobs, Workers: workers})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pack: patching the compressed bytes of layer %s of %s: %w", b.Digest, p.Name, err)
	}
	if _, err := io.Copy(io.Discard, blob); err != nil {
		f.Close()
		return nil, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	st.o.Log.Info("compressed-bytes patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "patch", size)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: size, newSize: b.Size,
		codec: blobpatch.Codec, sources: []sidecar.Source{s}, recipe: plan.BlobRecipe}, nil
}

// floorSource spools the compressed bytes of the first source of b.
func (st *state) floorSource(ctx context.Context, plans []*plan.Plan, p *plan.Plan, b plan.Blob) (sidecar.Source, *spool.File, error) {
	s := b.Patch.Sources[0]
	image := s.Image
	if image == "" {
		image = p.Name
	}
	sl, err := st.sourceLayer(ctx, plans, image, s, p.Target.Platform)
	if err != nil {
		return s, nil, err
	}
	src, err := st.cache.Compressed(ctx, sl, s.Digest, "baseline layer "+s.Digest.String())
	if err != nil {
		return s, nil, fmt.Errorf("pack: %w", err)
	}
	return s, src, nil
}

// floorStarted, when set (by tests), is called as each floor starts.
var floorStarted func()

// floorSkip: a tar patch at most 1/floorSkip of its blob is kept
// without waiting for the floor.
const floorSkip = 256

// floorStop ends a floor computed beside a tar patch once it cannot be
// the smaller of the two: its output only grows, and the tar patch is
// kept on a tie, so a floor that has written as many bytes as the
// finished tar patch is lost. On a large layer the floor can take longer
// than the tar patch; it then stops when the tar patch is done instead
// of running to its end. The patch kept is the same either way.
type floorStop struct {
	mu     sync.Mutex
	n      int64 // bytes the floor wrote
	limit  int64 // the tar patch's size; 0 until it is known
	hit    bool
	cancel context.CancelFunc
}

// errFloorLost ends a floor that cannot be smaller than its tar patch.
var errFloorLost = errors.New("pack: the compressed-bytes patch is already larger than the tar patch")

func (s *floorStop) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.n += int64(len(p))
	hit := s.limit > 0 && s.n >= s.limit
	s.hit = s.hit || hit
	s.mu.Unlock()
	if hit {
		s.cancel()
		return 0, errFloorLost
	}
	return len(p), nil
}

// at says the tar patch is size bytes.
func (s *floorStop) at(size int64) {
	s.mu.Lock()
	s.limit = max(size, 1)
	hit := s.n >= s.limit
	s.hit = s.hit || hit
	s.mu.Unlock()
	if hit {
		s.cancel()
	}
}

// lost reports whether the floor reached the tar patch's size.
func (s *floorStop) lost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hit
}

// floorResult is a floor computed beside a tar patch.
type floorResult struct {
	pl  *payload
	err error
}

// withFloor keeps the smaller of a tar patch (or its error, tarErr) and
// the floor computed beside it; stat describes the one kept.
func withFloor(b plan.Blob, tp *payload, stat PatchStat, tarErr error, fl floorResult) (*payload, PatchStat, error) {
	if tarErr != nil || fl.err != nil {
		if fl.pl != nil {
			fl.pl.file.Close()
		}
		if tp != nil {
			tp.file.Close()
		}
		if tarErr != nil {
			return nil, stat, tarErr
		}
		return nil, stat, fl.err
	}
	stat.FloorSize = fl.pl.size
	if fl.pl.size < tp.size {
		tp.file.Close()
		stat.PatchSize, stat.Codec, stat.Used = fl.pl.size, blobpatch.Codec, fl.pl.size < b.Size
		return fl.pl, stat, nil
	}
	fl.pl.file.Close()
	return tp, stat, nil
}

// floorOnly is the patch of a layer planned as blobpatch (no recipe
// reproduces it).
func (st *state) floorOnly(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (*payload, PatchStat, error) {
	stat := PatchStat{Image: p.Name, Layer: b.Digest, BlobSize: b.Size, Codec: blobpatch.Codec}
	fl, err := st.floor(ctx, plans, p, target, b, st.budget, st.workers(), nil)
	if err != nil {
		return nil, stat, err
	}
	stat.PatchSize, stat.FloorSize, stat.Used = fl.size, fl.size, fl.size < b.Size
	// A gzip layer also gets a patch of its content plus a model of its
	// compressor, and patches of its token form, which follow the
	// content; the smallest travels. When the model fits closely (its
	// reconstruction data under 1% of the patch), the token forms cannot
	// beat it by much and are not computed.
	best := fl
	mp, family, err := st.modelPatch(ctx, plans, p, target, b)
	if err != nil {
		best.file.Close()
		return nil, stat, err
	}
	if mp != nil && mp.size < best.size {
		best.file.Close()
		best = mp
	} else if mp != nil {
		mp.file.Close()
	}
	for _, patchOf := range []func(context.Context, []*plan.Plan, *plan.Plan, *imgref.Image, plan.Blob) (*payload, error){st.tokenPatch, st.inlinePatch} {
		if sidecar.IsModelCodec(best.codec) && best.modelData*100 < best.size {
			break
		}
		tp, err := patchOf(ctx, plans, p, target, b)
		if err != nil {
			best.file.Close()
			return nil, stat, err
		}
		if tp == nil {
			continue
		}
		if tp.size < best.size {
			best.file.Close()
			best = tp
			// The reason names the encoder found beside what its
			// reconstruction data (the parse patch) costs.
			if family != "" {
				best.note = family + "; " + best.note
			}
		} else {
			tp.file.Close()
		}
	}
	if best == fl && family != "" {
		best.note = family + "; its reconstruction cost more than the patch of its compressed bytes"
	}
	stat.PatchSize, stat.Codec, stat.Used = best.size, best.codec, best.size < b.Size
	return best, stat, nil
}

// notSmaller says why a computed patch was not used.
func notSmaller(b plan.Blob, stat PatchStat) string {
	if b.Patch.Codec == blobpatch.Codec {
		return fmt.Sprintf("%s; that patch (%d bytes) is not smaller than the blob (%d bytes)", strings.TrimPrefix(b.Reason, "not in the baseline; "), stat.PatchSize, stat.BlobSize)
	}
	return fmt.Sprintf("the patch (%d bytes) is not smaller than the blob (%d bytes)", stat.PatchSize, stat.BlobSize)
}

// floorReason says, in the sidecar, which patch of a layer was kept when
// it is not the one the plan named.
func floorReason(b plan.Blob, codec string) string {
	switch {
	case codec == b.Patch.Codec:
		return b.Reason
	case codec == sidecar.DeflatePatchCodec:
		return strings.Replace(b.Reason, "patch of its compressed bytes", "patch of its tar and of its deflate token form (rebuilt exactly, whatever the compressor)", 1)
	case sidecar.IsModelCodec(codec):
		return strings.Replace(b.Reason, "patch of its compressed bytes", "patch of its tar plus a model of its compressor (rebuilt exactly)", 1)
	case codec == sidecar.DeflateInlineCodec:
		return strings.Replace(b.Reason, "patch of its compressed bytes", "patch of its deflate token form, content inline (rebuilt exactly, whatever the compressor)", 1)
	}
	return b.Reason + "; a patch of its compressed bytes was smaller than the tar patch"
}

// targetTar opens a target layer and its uncompressed tar.
func targetTar(p *plan.Plan, target *imgref.Image, b plan.Blob, through func(io.Reader) io.Reader) (v1.Layer, io.ReadCloser, error) {
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return nil, nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	rc, err := imgref.UncompressedThrough(l, through)
	if err != nil {
		return nil, nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	return l, rc, nil
}

// targetBlob opens a target layer's compressed bytes, verified against
// its digest as they are read.
func targetBlob(p *plan.Plan, target *imgref.Image, b plan.Blob) (io.ReadCloser, error) {
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{verify.NewReader(rc, b.Digest, b.Size, "pack: target layer "+b.Digest.String()), rc}, nil
}
