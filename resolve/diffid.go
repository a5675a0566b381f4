package resolve

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/diffah/diffah/imgref"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// Baselines matched by diffID. A container engine (and a docker save
// archive) keeps layers uncompressed, so the compressed blob a delta
// reuses or patches against is not there byte for byte, but a layer with
// the same diffID is. A patch only reads the uncompressed tar, which such a
// layer gives as is (checked against the diffID as it spools). A reused
// blob is rebuilt from it with the recipe the producer recorded (sidecar
// 1.2), checked against the diffID on the way in and against the blob's
// digest and size on the way out, as patched layers are.

// diffIDs lists the diffIDs of a baseline's layers (from its config).
func diffIDs(base *Baseline) (map[digest.Digest]bool, error) {
	cf, err := base.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	out := make(map[digest.Digest]bool, len(cf.RootFS.DiffIDs))
	for _, d := range cf.RootFS.DiffIDs {
		out[imgref.Digest(d)] = true
	}
	return out, nil
}

// byDiffID says whether base, which lacks a blob by digest, can stand in
// for it by diffID: a patch source needs only the layer; a reused blob
// also needs a valid recipe. When it cannot, why says what is missing,
// for the preflight report.
func byDiffID(base *Baseline, diffID digest.Digest, recipe json.RawMessage, reused bool) (ok bool, why string) {
	if diffID == "" {
		return false, ""
	}
	have, err := diffIDs(base)
	if err != nil {
		return false, fmt.Sprintf("its config cannot be read to match by diffID: %v", err)
	}
	if !have[diffID] {
		return false, "nor a layer with its diffID " + diffID.String()
	}
	// The config names the layer; the store must hold it too. (A layer
	// the store cannot find by diffID is reported when it is opened.)
	if l, err := imgref.LayerByDiffID(base.Image, diffID); err == nil {
		ld, derr := l.Digest()
		n, serr := l.Size()
		if derr == nil && serr == nil {
			if err := imgref.CheckBlob(context.Background(), base.Image, ld, n); err != nil {
				return false, fmt.Sprintf("its layer with the same diffID %s (%s) is not usable either: %v", diffID, ld, err)
			}
		}
	}
	if !reused {
		return true, ""
	}
	if len(recipe) == 0 {
		return false, "it has a layer with the same diffID " + diffID.String() +
			", but the delta records no recipe to recompress it (the producer could not reproduce this layer's compression, planned with --reused-recipes off, or predates format 1.2): use a baseline holding the blob itself (the registry image, an OCI layout)"
	}
	if _, err := recompress.ParseRecipe(recipe); err != nil {
		return false, fmt.Sprintf("it has a layer with the same diffID %s, but the delta's recipe for it is unusable: %v", diffID, err)
	}
	return true, ""
}

// baselineLayer is the baseline layer a patch source names: by digest,
// else the layer with its diffID (the spool checks the diffID).
func baselineLayer(base *Baseline, s sidecar.Source) (v1.Layer, error) {
	l, err := imgref.LayerByDigest(base.Image, s.Digest)
	if err == nil {
		return l, nil
	}
	if ok, _ := byDiffID(base, s.DiffID, nil, false); ok {
		if l, derr := imgref.LayerByDiffID(base.Image, s.DiffID); derr == nil {
			return l, nil
		}
	}
	return nil, err
}

// rebuildable reports whether a reused blob missing from base by digest
// can be rebuilt from its layer with the same diffID. A blob the baseline
// lists is never rebuilt: a failure to read it is reported as it is.
func rebuildable(base *Baseline, b sidecar.Blob) bool {
	if b.Role != sidecar.RoleLayer {
		return false
	}
	if m, err := base.Image.Manifest(); err == nil {
		for _, l := range m.Layers {
			if l.Digest.String() == b.Digest.String() {
				return false
			}
		}
	}
	ok, _ := byDiffID(base, b.DiffID, b.Recipe, true)
	return ok
}

// openByDiffID streams the reused blob b rebuilt from base's layer with
// its diffID, compressed with its recipe. The caller checks the digest and
// size of what it reads (layout.WriteVerified); the uncompressed content
// is checked against the diffID here, so a mismatch names the cause.
func openByDiffID(ctx context.Context, base *Baseline, b sidecar.Blob) (io.ReadCloser, error) {
	rec, err := recompress.ParseRecipe(b.Recipe)
	if err != nil {
		return nil, err
	}
	l, err := imgref.LayerByDiffID(base.Image, b.DiffID)
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "baseline %s has no layer with diffID %s: %w", base.Ref, b.DiffID, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "reading the layer with diffID %s of baseline %s: %w", b.DiffID, base.Ref, err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer rc.Close()
		pw.CloseWithError(recompressInto(ctx, pw, rc, rec, b, base.Ref))
	}()
	return &waitCloser{pr, done}, nil
}

func recompressInto(ctx context.Context, w io.Writer, tar io.Reader, rec recompress.Recipe, b sidecar.Blob, ref string) error {
	cw, err := rec.NewWriter(w)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(cw, h), ctxio.Reader{Ctx: ctx, R: tar}); err != nil {
		if fault.KindOf(err, 0) == 0 && ctx.Err() == nil {
			err = fault.Errorf(fault.Env, "rebuilding %s from the layer with diffID %s of baseline %s: %w", b.Digest, b.DiffID, ref, err)
		}
		return err
	}
	if got := digest.NewDigest(digest.SHA256, h); got != b.DiffID {
		return fault.Errorf(fault.Integrity, "baseline %s: the layer listed with diffID %s holds %s: the baseline is corrupt", ref, b.DiffID, got)
	}
	if err := cw.Close(); err != nil {
		return fault.Errorf(fault.Env, "recompressing %s: %w", b.Digest, err)
	}
	return nil
}

// waitCloser closes the pipe and waits for its writer to stop, so no
// goroutine is left reading the baseline.
type waitCloser struct {
	*io.PipeReader
	done chan struct{}
}

func (w *waitCloser) Close() error {
	w.PipeReader.CloseWithError(io.ErrClosedPipe)
	<-w.done
	return nil
}

// matchDiffID is the preflight's diffID fallback for a blob of w that the
// baseline of image lacks by digest (see byDiffID).
func (r *resolver) matchDiffID(w *imageWork, image string, layer bool, diffID digest.Digest, recipe json.RawMessage, reused bool) (bool, string) {
	base := r.baseOf(w, image)
	if base == nil || !layer {
		return false, ""
	}
	return byDiffID(base, diffID, recipe, reused)
}
