package pack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// Cross-image deltas. The images of a bundle go to one site, whose
// baselines sit side by side, so each image may draw on the others'
// baselines as well as its own: a blob an image would ship that another
// image's baseline holds is reused from there (a new service built on the
// same base as an old one ships none of the base), and a layer its own
// baseline cannot patch may be patched against the layers of the others'.
// The sidecar names the image whose baseline each such blob comes from;
// resolve then needs that baseline too and says so in preflight.
// Options.Independent turns this off.

// minCrossScore is the least share of a layer's file bytes a candidate
// source must hold (tarpatch.Similarity) to be used across images.
const minCrossScore = 0.2

// maxCrossSources caps the layers of other baselines one patch may read.
const maxCrossSources = 4

type holder struct {
	image string
	src   sidecar.Source
}

// crossImage returns copies of plans with the cross-image decisions
// made; the caller's plans are left as they were.
func (st *state) crossImage(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image) ([]*plan.Plan, error) {
	out := copyPlans(plans)
	// What each baseline holds; the first image in bundle order wins, so
	// the result does not depend on map order.
	held := map[digest.Digest]holder{}
	for _, p := range out {
		if p.Baseline == nil {
			continue
		}
		if _, ok := held[p.Baseline.Config]; !ok && p.Baseline.Config != "" {
			held[p.Baseline.Config] = holder{image: p.Name}
		}
		for _, l := range p.Baseline.Layers {
			if _, ok := held[l.Digest]; !ok {
				held[l.Digest] = holder{image: p.Name, src: l}
			}
		}
	}
	for i, p := range out {
		for j := 1; j < len(p.Blobs); j++ {
			b := &p.Blobs[j]
			// Reuse beats any patch: a planned patch gives way too.
			if h, ok := held[b.Digest]; ok && b.Action != sidecar.Reuse && h.image != p.Name {
				rec, reproducible, err := crossReuseRecipe(ctx, targets[i], *b)
				if err != nil {
					return nil, err
				}
				revise(b, reusedFrom(*b, h.image, rec, reproducible))
			}
		}
	}
	for i, p := range out {
		if p.IntraLayer == plan.IntraOff {
			continue
		}
		for j := 2; j < len(p.Blobs); j++ {
			b := &p.Blobs[j]
			if b.Action != sidecar.Ship || b.DiffID == "" || !plan.Patchable(b.MediaType) || sidecar.LegacyReasonCode(b.ReasonCode, b.Reason) == sidecar.ReasonNotReproducible {
				continue
			}
			d, err := st.crossPatch(ctx, out, i, targets[i], *b)
			if err != nil {
				return nil, err
			}
			if d != nil {
				revise(b, *d)
			}
		}
		p.Sum()
	}
	return out, nil
}

// copyPlans copies plans deep enough for pack to change their decisions.
func copyPlans(plans []*plan.Plan) []*plan.Plan {
	out := make([]*plan.Plan, len(plans))
	for i, p := range plans {
		cp := *p
		cp.Blobs = make([]plan.Blob, len(p.Blobs))
		for j, b := range p.Blobs {
			if b.Patch != nil {
				pc := *b.Patch
				pc.Sources = append([]sidecar.Source(nil), b.Patch.Sources...)
				b.Patch = &pc
			}
			cp.Blobs[j] = b
		}
		out[i] = &cp
	}
	return out
}

// crossPatch plans a patch for a layer of out[i] from the layers of the
// other images' baselines that hold most of its files: the decision
// crossPatched, or notReproducible for a layer no recipe reproduces, or
// nil when no layer holds enough.
func (st *state) crossPatch(ctx context.Context, out []*plan.Plan, i int, target *imgref.Image, b plan.Blob) (*plan.Decision, error) {
	p := out[i]
	var cands []holder
	seen := map[digest.Digest]bool{}
	for k, q := range out {
		if k == i || q.Baseline == nil || q.Baseline.Ref == "" {
			continue
		}
		for _, l := range q.Baseline.Layers {
			if seen[l.Digest] || l.DiffID == "" || !plan.Patchable(l.MediaType) {
				continue
			}
			seen[l.Digest] = true
			cands = append(cands, holder{image: q.Name, src: l})
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	var srcs []tarpatch.Source
	for _, c := range cands {
		f, err := st.sourceFile(ctx, out, c.image, c.src, p.Target.Platform)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, f)
	}
	l, rc, err := targetTar(p, target, b, nil)
	if err != nil {
		return nil, err
	}
	scores, err := tarpatch.Similarity(rc, srcs)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	order := make([]int, len(cands))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(x, y int) bool { return scores[order[x]] > scores[order[y]] })
	var chosen []sidecar.Source
	var from []string
	for _, k := range order {
		if len(chosen) == maxCrossSources || scores[k] < minCrossScore {
			break
		}
		s := cands[k].src
		s.Image = cands[k].image
		chosen = append(chosen, s)
		if !slices.Contains(from, s.Image) {
			from = append(from, s.Image)
		}
	}
	if len(chosen) == 0 {
		return nil, nil
	}
	enc, rec, err := detectRecipe(ctx, l)
	if err != nil {
		return nil, err
	}
	if enc == nil {
		d := notReproducible(b)
		return &d, nil
	}
	d := crossPatched(b, &plan.Patch{Codec: tarpatch.Codec, Sources: chosen, Recipe: enc}, from, rec)
	st.o.Log.Info("cross-image patch planned", "image", p.Name, "layer", b.Digest, "sources", len(chosen), "from", from)
	return &d, nil
}

// detectRecipe finds the recipe that reproduces a target layer's blob,
// for a layer planned to ship that pack patches instead; nil when none
// does.
func detectRecipe(ctx context.Context, l v1.Layer) ([]byte, recompress.Recipe, error) {
	rec, err := recompress.Detect(ctx, l.Compressed, recompress.DetectOptions{})
	if err != nil {
		return nil, rec, ctx.Err()
	}
	enc, err := json.Marshal(rec)
	if err != nil {
		return nil, rec, fault.Wrap(fault.Internal, err)
	}
	return enc, rec, nil
}

// sourceFile spools a baseline layer of the named image of the bundle.
func (st *state) sourceFile(ctx context.Context, plans []*plan.Plan, image string, s sidecar.Source, platform string) (*spool.File, error) {
	l, err := st.sourceLayer(ctx, plans, image, s, platform)
	if err != nil {
		return nil, err
	}
	f, err := st.cache.Uncompressed(ctx, l, s.DiffID, "baseline layer "+s.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	return f, nil
}

// sourceLayer opens a baseline layer of the named image of the bundle.
func (st *state) sourceLayer(ctx context.Context, plans []*plan.Plan, image string, s sidecar.Source, platform string) (v1.Layer, error) {
	var ref string
	for _, q := range plans {
		if q.Name == image && q.Baseline != nil {
			ref = q.Baseline.Ref
			platform = q.Target.Platform
		}
	}
	if ref == "" {
		return nil, fault.Errorf(fault.Usage, "pack: layer %s comes from the baseline of image %q, which names no baseline image to read", s.Digest, image)
	}
	base, err := st.open(ctx, ref, platform)
	if err != nil {
		return nil, err
	}
	l, err := imgref.LayerByDigest(base, s.Digest)
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "pack: baseline %s has no layer %s: %w", ref, s.Digest, err)
	}
	return l, nil
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// crossFallback gives a layer whose patch from its own baseline saved
// less than half of the blob (or nothing) a second chance against the
// other images' baselines, keeping the smaller patch (plans are
// crossImage's copies, changed in place).
func (st *state) crossFallback(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image, ps *payloadSet, rep *Report) error {
	tried := map[digest.Digest]bool{}
	// One patch at a time here: each gets every worker.
	st.perPatch = st.o.Jobs
	for i, p := range plans {
		for j := 2; j < len(p.Blobs); j++ {
			b := p.Blobs[j]
			own := ps.byLayer[b.Digest.String()]
			if b.Action != sidecar.Patch || tried[b.Digest] || own != nil && own.size*2 < b.Size || crossSources(b.Patch.Sources) {
				continue
			}
			if ps.unused[b.Digest].code == sidecar.ReasonShippedByBundle {
				continue
			}
			tried[b.Digest] = true
			d, err := st.crossPatch(ctx, plans, i, targets[i], b)
			if err != nil {
				return err
			}
			if d == nil || d.Action != sidecar.Patch {
				continue
			}
			alt := b
			revise(&alt, ownPatchWas(*d, own))
			pl, stat, err := st.patch(ctx, plans, p, targets[i], alt, nil)
			if err != nil {
				return err
			}
			rep.Patches = append(rep.Patches, stat)
			if !stat.Used || own != nil && pl.size >= own.size {
				pl.file.Close()
				continue
			}
			if own != nil {
				delete(ps.byDigest, own.digest)
				own.file.Close()
				for n := range rep.Patches {
					if old := &rep.Patches[n]; old.Layer == b.Digest && old.PatchSize == own.size {
						old.Used = false
					}
				}
			}
			// Every image with this layer takes the new patch (payloads
			// are per layer), each naming the sources from where it
			// stands: a source in its own baseline has no image name.
			for _, q := range plans {
				for k := range q.Blobs {
					if q.Blobs[k].Digest != b.Digest || q.Blobs[k].Action != sidecar.Patch {
						continue
					}
					revise(&q.Blobs[k], seenBy(alt.Decision, q.Name, q.Name))
				}
			}
			ps.byDigest[pl.digest] = pl
			ps.byLayer[b.Digest.String()] = pl
			delete(ps.unused, b.Digest)
		}
	}
	sortPatchStats(rep.Patches)
	return nil
}

func crossSources(srcs []sidecar.Source) bool {
	for _, s := range srcs {
		if s.Image != "" {
			return true
		}
	}
	return false
}
