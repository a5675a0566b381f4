package pack

import (
	"context"
	"encoding/json"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// crossReuseRecipe is the recipe that reproduces the blob of a layer about
// to be reused from another bundle image's baseline (reusedFrom), as plan
// gives layers reused from the image's own baseline, so a site whose
// baselines hold layers only uncompressed (a container engine) can
// rebuild it by diffID. A planned patch already has one; otherwise the
// target layer is read once. reproducible is false when nothing
// reproduces the blob; a blob that is not a patchable layer gets no
// recipe.
func crossReuseRecipe(ctx context.Context, target *imgref.Image, b plan.Blob) (recipe json.RawMessage, reproducible bool, err error) {
	if b.Role != sidecar.RoleLayer || b.DiffID == "" || !plan.Patchable(b.MediaType) {
		return b.Recipe, true, nil
	}
	if b.Patch != nil && b.Patch.Recipe != nil {
		return b.Patch.Recipe, true, nil
	}
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return nil, false, fault.Errorf(fault.Env, "pack: target layer %s: %w", b.Digest, err)
	}
	rec, err := recompress.Detect(ctx, l.Compressed, recompress.DetectOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if fault.KindOf(err, 0) == fault.Env {
			return nil, false, fault.Errorf(fault.Env, "pack: reading layer %s: %w", b.Digest, err)
		}
		return b.Recipe, false, nil
	}
	enc, err := json.Marshal(rec)
	if err != nil {
		return nil, false, fault.Wrap(fault.Internal, err)
	}
	return enc, true, nil
}
