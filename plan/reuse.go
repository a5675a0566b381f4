package plan

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// Modes of Options.ReusedRecipes.
const (
	ReusedRecipesAuto = "auto"
	ReusedRecipesOff  = "off"
)

// reuseRecipes records, for every reused layer, the compression recipe
// that reproduces its blob from its uncompressed tar. A consumer whose
// baseline keeps layers uncompressed (a Docker or Podman engine, a docker
// save archive) has the same diffID but not the blob; with the recipe it
// rebuilds the blob and checks its digest, as for a patched layer. A layer
// no known compressor reproduces keeps no recipe, and its reason says so:
// such a baseline cannot serve it.
//
// The same works the other way: a target layer the baseline lacks by
// digest but holds with the same diffID (the baseline was read from an
// engine or a docker save archive, or the target was) is reused too when
// its compression is reproducible: the consumer rebuilds it from that
// layer instead of receiving it.
func reuseRecipes(ctx context.Context, p *Plan, target Input, baseline *BaselineInput, o Options) error {
	if o.ReusedRecipes == ReusedRecipesOff {
		return nil
	}
	// A blob reused by digest is the same bytes on both sides: read it
	// where it is cheap, from a local baseline rather than a registry.
	from := target.Image
	if baseline != nil && baseline.Image != nil && imgref.IsRegistry(target.Ref) && !imgref.IsRegistry(baseline.Ref) {
		from = baseline.Image
	}
	baseDiffIDs := map[digest.Digest]bool{}
	if p.Baseline != nil {
		for _, l := range p.Baseline.Layers {
			if l.DiffID != "" {
				baseDiffIDs[l.DiffID] = true
			}
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	done := map[string]int{} // a layer repeated in the manifest is detected once
	for i := 2; i < len(p.Blobs); i++ {
		b := &p.Blobs[i]
		sameContent := b.Action == sidecar.Ship && baseDiffIDs[b.DiffID]
		if (b.Action != sidecar.Reuse && !sameContent) || b.DiffID == "" || !patchable(b.MediaType) {
			continue
		}
		if _, ok := done[b.Digest.String()]; ok {
			continue
		}
		done[b.Digest.String()] = i
		src := from
		if sameContent {
			src = target.Image // the baseline has it compressed otherwise
		}
		l, err := targetLayer(src, p, b)
		if err != nil {
			return err
		}
		g.Go(func() error {
			// The prefix decides (resolve checks the rebuilt blob's
			// digest before naming it): a full recompression of every
			// reused layer would triple plan time.
			rec, err := recompress.Detect(ctx, l.Compressed, recompress.DetectOptions{PrefixOnly: true})
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if fault.KindOf(err, 0) == fault.Env {
					return fault.Errorf(fault.Env, "plan: reading layer %s of %s: %w", b.Digest, p.Target.Ref, err)
				}
				o.Log.Info("layer has no recompression recipe", "layer", b.Digest, "err", err)
				if sameContent {
					b.Reason = "not in the baseline (which has its content, diffID " + b.DiffID.String() + ", compressed otherwise); ships: its compressed blob cannot be reproduced (" + oneLine(err) + ")"
				} else {
					b.Reason = "present in the baseline; no recompression recipe (" + oneLine(err) + "): a baseline holding it only uncompressed cannot rebuild it"
				}
				return nil
			}
			enc, err := json.Marshal(rec)
			if err != nil {
				return fault.Errorf(fault.Internal, "plan: encoding recipe: %w", err)
			}
			b.Recipe = enc
			if sameContent {
				b.Action = sidecar.Reuse
				b.Reason = fmt.Sprintf("the baseline has its content (diffID %s) compressed otherwise; rebuilt from it as %s", b.DiffID, rec)
			} else {
				b.Reason = fmt.Sprintf("present in the baseline; recompressed as %s where the baseline holds it only uncompressed", rec)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A repeated layer gets the first occurrence's outcome.
	for i := 2; i < len(p.Blobs); i++ {
		b := &p.Blobs[i]
		if j, ok := done[b.Digest.String()]; ok && j != i {
			b.Action, b.Recipe, b.Reason = p.Blobs[j].Action, p.Blobs[j].Recipe, p.Blobs[j].Reason
		}
	}
	return nil
}

// targetLayer opens the layer b of plan p from img (the target, or a
// baseline holding the same blob).
func targetLayer(img v1.Image, p *Plan, b *Blob) (v1.Layer, error) {
	l, err := imgref.LayerByDigest(img, b.Digest) // a malformed digest: Integrity
	if err != nil {
		return nil, fault.Errorf(fault.Env, "plan: opening layer %s of %s: %w", b.Digest, p.Target.Ref, err)
	}
	return l, nil
}
