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

// crossReuseRecipe gives a layer that became reused from another bundle
// image's baseline the recipe that reproduces its blob, as plan does for
// layers reused from the image's own baseline, so a site whose baselines
// hold layers only uncompressed (a container engine) can rebuild it by
// diffID. A planned patch already has one; otherwise the target layer is
// read once. A blob nothing reproduces keeps none.
func crossReuseRecipe(ctx context.Context, target *imgref.Image, b *plan.Blob, patch *plan.Patch) error {
	if b.Role != sidecar.RoleLayer || b.DiffID == "" || !plan.Patchable(b.MediaType) {
		return nil
	}
	if patch != nil && patch.Recipe != nil {
		b.Recipe = patch.Recipe
		return nil
	}
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return fault.Errorf(fault.Env, "pack: target layer %s: %w", b.Digest, err)
	}
	rec, err := recompress.Detect(ctx, l.Compressed, recompress.DetectOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fault.KindOf(err, 0) == fault.Env {
			return fault.Errorf(fault.Env, "pack: reading layer %s: %w", b.Digest, err)
		}
		b.Reason += "; no recompression recipe: a baseline holding it only uncompressed cannot rebuild it"
		return nil
	}
	enc, err := json.Marshal(rec)
	if err != nil {
		return fault.Wrap(fault.Internal, err)
	}
	b.Recipe = enc
	return nil
}
