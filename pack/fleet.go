package pack

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// Target layers as patch sources. A fleet is rebuilt together: dozens of
// services get the same new binary or library, so their new layers hold
// the same files. The site rebuilds an archive's layers in sidecar order,
// so a layer may be patched against the target layers before it — another
// image's new layer, or an earlier layer of the same image — as well as
// against baselines: the second service's copy of the binary then costs a
// COPY of the first one's. Sources come only from earlier in sidecar
// order, so there are no cycles; the sidecar marks them (Source.Target,
// codec sidecar.BundleTarCodec) and resolve rebuilds them first.
//
// Choosing: every new layer (shipped or patched, first occurrence) gets a
// tarpatch.Print (one streaming pass, hashes of its larger files); a layer
// takes the earlier new layer that would add most to what its own sources
// already give — files copied by content, or old versions by path, as
// Encode uses them — when that is at least minTargetGain of its file
// bytes, then a second one the same way. Ties go to the earliest layer,
// so the choice does not depend on anything but the plans and the images.
// Options.Independent turns this off.

// minTargetGain is the least share of a layer's file bytes an earlier
// target layer must add to be used as a source.
const minTargetGain = 0.2

// maxTargetSources caps the target layers one patch reads.
const maxTargetSources = 2

// newLayer is the first occurrence of a layer digest the archive ships or
// patches.
type newLayer struct {
	pi, bi int // plan and blob index
	print  *tarpatch.Print
	// mixed: one image ships the layer, another patches it, so it
	// ships (see patches) and takes no sources.
	mixed bool
}

// targetSources adds target-layer sources to the layers of plans (copies,
// changed in place) that gain from them.
func (st *state) targetSources(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image) error {
	layers, err := st.newLayers(ctx, plans, targets)
	if err != nil {
		return err
	}
	ix := tarpatch.NewPrintIndex()
	var cands []newLayer // by index number
	for _, nl := range layers {
		if nl.print != nil {
			b := &plans[nl.pi].Blobs[nl.bi]
			if !nl.mixed && receives(plans[nl.pi], b) {
				if err := st.chooseTargets(ctx, plans, targets, nl, ix, cands); err != nil {
					return err
				}
			}
			ix.Add(nl.print)
			cands = append(cands, nl)
		}
	}
	return nil
}

// receives says whether a layer may take target-layer sources: a patch
// in the tar codec, or a shipped layer whose compression may be
// reproducible.
func receives(p *plan.Plan, b *plan.Blob) bool {
	if p.IntraLayer == plan.IntraOff || b.DiffID == "" || !plan.Patchable(b.MediaType) {
		return false
	}
	switch b.Action {
	case sidecar.Patch:
		return b.Patch.Codec == tarpatch.Codec
	case sidecar.Ship:
		return sidecar.LegacyReasonCode(b.ReasonCode, b.Reason) != sidecar.ReasonNotReproducible
	}
	return false
}

// newLayers lists, in sidecar order, the first occurrence of every layer
// digest the archive ships or patches, with the print of those that are
// patchable (computed on o.Jobs workers, each into its own slot). A digest
// shipped by one image and patched by another ships (see patches): it is
// listed as a source but takes no sources itself.
func (st *state) newLayers(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image) ([]newLayer, error) {
	actions := map[digest.Digest]map[string]bool{}
	var out []newLayer
	for pi, p := range plans {
		for bi := 2; bi < len(p.Blobs); bi++ {
			b := p.Blobs[bi]
			if b.Action == sidecar.Reuse {
				continue
			}
			if actions[b.Digest] == nil {
				actions[b.Digest] = map[string]bool{}
				out = append(out, newLayer{pi: pi, bi: bi})
			}
			actions[b.Digest][b.Action] = true
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.o.Jobs)
	// Reading every new layer takes a while on large images: say so.
	var todo int
	for k := range out {
		if b := plans[out[k].pi].Blobs[out[k].bi]; b.DiffID != "" && plan.Patchable(b.MediaType) {
			todo++
		}
	}
	ph := progress.NewPhase(st.o.Progress)
	defer ph.Done()
	var mu sync.Mutex
	done := 0
	if todo > 0 {
		ph.Set("pack: reading the new layers for content they share (0/%d)", todo)
	}
	for k := range out {
		p, b := plans[out[k].pi], plans[out[k].pi].Blobs[out[k].bi]
		out[k].mixed = len(actions[b.Digest]) > 1
		if b.DiffID == "" || !plan.Patchable(b.MediaType) {
			continue
		}
		g.Go(func() (err error) {
			defer fault.Recover(&err)
			out[k].print, err = st.targetPrint(gctx, p, targets[out[k].pi], b)
			mu.Lock()
			done++
			ph.Set("pack: reading the new layers for content they share (%d/%d)", done, todo)
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// targetPrint reads a target layer once for its print.
func (st *state) targetPrint(ctx context.Context, p *plan.Plan, target *imgref.Image, b plan.Blob) (*tarpatch.Print, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	defer rc.Close()
	pr, err := tarpatch.Fingerprint(rc)
	if err != nil {
		return nil, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	return pr, nil
}

// chooseTargets picks up to maxTargetSources earlier new layers for nl
// and, when any is worth it, makes every occurrence of the layer a
// BundleTarCodec patch reading them after its own sources.
func (st *state) chooseTargets(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image, nl newLayer, ix *tarpatch.PrintIndex, cands []newLayer) error {
	p := plans[nl.pi]
	b := &p.Blobs[nl.bi]
	var own []*tarpatch.Print
	if b.Action == sidecar.Patch {
		for _, s := range b.Patch.Sources {
			pr, err := st.sourcePrint(ctx, plans, p, s)
			if err != nil {
				return err
			}
			own = append(own, pr)
		}
	}
	var chosen []int
	for len(chosen) < maxTargetSources {
		best, bestGain := -1, int64(0)
		for c, g := range ix.Gains(nl.print, own) {
			if g > bestGain || g == bestGain && c < best {
				best, bestGain = c, g
			}
		}
		if best < 0 || float64(bestGain) < minTargetGain*float64(nl.print.Total) {
			break
		}
		chosen = append(chosen, best)
		own = append(own, cands[best].print)
	}
	if len(chosen) == 0 {
		return nil
	}
	slices.Sort(chosen)
	var srcs []sidecar.Source
	var from []string
	for _, c := range chosen {
		q := plans[cands[c].pi]
		sb := q.Blobs[cands[c].bi]
		srcs = append(srcs, sidecar.Source{Descriptor: sb.Descriptor, DiffID: sb.DiffID, Target: q.Name})
		if !slices.Contains(from, q.Name) {
			from = append(from, q.Name)
		}
	}
	if b.Action == sidecar.Ship {
		l, err := imgref.LayerByDigest(targets[nl.pi], b.Digest)
		if err != nil {
			return fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
		}
		enc, rec, err := detectRecipe(ctx, l)
		if err != nil {
			return err
		}
		if enc == nil {
			revise(b, notReproducibleFromTargets(*b, srcs, from))
			return nil
		}
		revise(b, targetPatched(*b, &plan.Patch{Codec: tarpatch.CodecBundle, Sources: srcs, Recipe: enc}, from, rec))
	} else {
		revise(b, alsoFromTargets(*b, srcs, from))
	}
	st.o.Log.Info("target-layer patch sources chosen", "image", p.Name, "layer", b.Digest, "sources", len(srcs), "from", from)
	// Every other image with this layer takes the same patch (payloads
	// are per layer), each naming baseline sources from where it stands.
	for qi, q := range plans {
		for k := 2; k < len(q.Blobs); k++ {
			if (qi == nl.pi && k == nl.bi) || q.Blobs[k].Digest != b.Digest || q.Blobs[k].Action == sidecar.Reuse {
				continue
			}
			revise(&q.Blobs[k], seenBy(b.Decision, p.Name, q.Name))
		}
	}
	p.Sum()
	return nil
}

// sourcePrint is the print of a baseline source, spooled once (the patch
// reads the same spool) and printed once per diffID.
func (st *state) sourcePrint(ctx context.Context, plans []*plan.Plan, p *plan.Plan, s sidecar.Source) (*tarpatch.Print, error) {
	if pr, ok := st.prints[s.DiffID]; ok {
		return pr, nil
	}
	image := s.Image
	if image == "" {
		image = p.Name
	}
	f, err := st.sourceFile(ctx, plans, image, s, p.Target.Platform)
	if err != nil {
		return nil, err
	}
	pr, err := tarpatch.Fingerprint(f.Reader())
	if err != nil {
		return nil, fmt.Errorf("pack: baseline layer %s: %w", s.Digest, err)
	}
	if st.prints == nil {
		st.prints = map[digest.Digest]*tarpatch.Print{}
	}
	st.prints[s.DiffID] = pr
	return pr, nil
}

// targetFile spools a target layer of the named image of the bundle: a
// source the archive rebuilds first.
func (st *state) targetFile(ctx context.Context, plans []*plan.Plan, s sidecar.Source) (*spool.File, error) {
	for _, q := range plans {
		if q.Name != s.Target {
			continue
		}
		img, err := st.open(ctx, q.Target.Ref, q.Target.Platform)
		if err != nil {
			return nil, err
		}
		l, err := imgref.LayerByDigest(img, s.Digest)
		if err != nil {
			return nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", q.Target.Ref, s.Digest, err)
		}
		f, err := st.cache.Uncompressed(ctx, l, s.DiffID, "target layer "+s.Digest.String()+" of "+q.Name)
		if err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		return f, nil
	}
	return nil, fault.Errorf(fault.Internal, "pack: patch source %s names image %q, which is not in the bundle", s.Digest, s.Target)
}
