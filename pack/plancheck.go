package pack

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// A plan is often edited with jq, and it is the only thing that tells pack
// what the consumer will do: an archive built from a plan that lies (a
// layer dropped, a reuse of a blob the baseline lacks, a wrong size, a
// recipe that does not make the blob) is refused by import, at the site,
// after the trip. So before writing a byte, pack checks every plan
// against the images it names. What follows from the images is derived
// again (plan.Compute with intra-layer off: manifests and configs only, no
// layer data) and compared field by field (plan.Check); each decision must
// be possible against the real baselines; and each recipe is replayed on
// the start of the real blob (recompress.Verify, the trial plan's
// detection runs).

// checkPlans refuses, with an integrity error naming the blob and the
// field, any plan that cannot produce its target.
func (st *state) checkPlans(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image) error {
	derived := make([]*plan.Plan, len(plans))
	bundle := map[string]*plan.Plan{}
	for i, p := range plans {
		base, err := st.baselineInput(ctx, p)
		if err != nil {
			return err
		}
		t := targets[i]
		d, err := plan.Compute(ctx, plan.Input{Ref: p.Target.Ref, Platform: t.Platform, IndexDigest: t.IndexDigest, Image: t.Image},
			base, plan.Options{Name: p.Name, IntraLayer: plan.IntraOff, Jobs: 1})
		if err != nil {
			return fmt.Errorf("pack: checking plan %q against its images: %w", p.Name, err)
		}
		derived[i] = d
		bundle[p.Name] = d
	}
	if len(plans) == 1 || st.o.Independent {
		bundle = nil
	}
	for i, p := range plans {
		if err := plan.Check(p, derived[i], bundle); err != nil {
			return fmt.Errorf("pack: %w", err)
		}
	}
	// Replay each recipe once per layer and recipe, even when several
	// images of a bundle patch the same layer.
	type key struct {
		layer  digest.Digest
		recipe string
	}
	done := map[key]bool{}
	for i, p := range plans {
		for j, b := range p.Blobs {
			// A patch of the compressed bytes recompresses nothing: its
			// recipe is "none" and there is nothing to replay.
			if b.Action != sidecar.Patch || b.Patch.Codec == sidecar.BlobPatchCodec || done[key{b.Digest, string(b.Patch.Recipe)}] {
				continue
			}
			done[key{b.Digest, string(b.Patch.Recipe)}] = true
			rec, err := recompress.ParseRecipe(b.Patch.Recipe)
			if err != nil {
				return fault.Errorf(fault.Internal, "pack: plan %q: blob %s: recipe passed plan.Check: %w", p.Name, b.Digest, err)
			}
			l, err := imgref.LayerByDigest(targets[i], b.Digest)
			if err != nil {
				return fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
			}
			if err := recompress.Verify(ctx, l.Compressed, rec, 0); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if fault.KindOf(err, fault.Integrity) != fault.Integrity {
					return fmt.Errorf("pack: plan %q: blob %s: %w", p.Name, b.Digest, err)
				}
				return fault.WithHint(fault.Errorf(fault.Integrity, "pack: plan %q: blob %s (.blobs[%d].patch.recipe): %w", p.Name, b.Digest, j, err),
					fault.Integrity, "the recipe must be the one `diffah plan` detected for this blob: run `diffah plan` again")
			}
		}
	}
	return nil
}

// baselineInput opens what a plan says the consumer holds, as plan read
// it: the baseline image (on the target's platform), or the manifest file
// given with --baseline-manifest.
func (st *state) baselineInput(ctx context.Context, p *plan.Plan) (*plan.BaselineInput, error) {
	b := p.Baseline
	switch {
	case b == nil:
		return nil, nil
	case b.Ref != "":
		img, err := st.open(ctx, b.Ref, p.Target.Platform)
		if err != nil {
			return nil, fmt.Errorf("pack: plan %q: baseline (.baseline.ref): %w", p.Name, err)
		}
		return &plan.BaselineInput{Ref: b.Ref, ManifestFile: b.ManifestFile, Image: img}, nil
	case b.ManifestFile != "":
		raw, err := os.ReadFile(b.ManifestFile)
		if err != nil {
			return nil, fault.WithHint(fault.Errorf(fault.Env, "pack: plan %q: baseline manifest (.baseline.manifestFile): %w", p.Name, err), fault.Env,
				"pack reads the manifest file `diffah plan --baseline-manifest` read, to check the reuse decisions: run pack where that file is")
		}
		return &plan.BaselineInput{ManifestFile: b.ManifestFile, RawManifest: raw}, nil
	}
	return nil, fault.WithHint(fault.Errorf(fault.Integrity, "pack: plan %q: the baseline names neither an image (.baseline.ref) nor a manifest file (.baseline.manifestFile)", p.Name),
		fault.Integrity, "run `diffah plan` again")
}
