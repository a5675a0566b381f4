package pack

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// Pack revises what plans decided (plan.Decision, the record the sidecar
// carries), and this file is the one place it does: every change goes
// through revise, and the revisions are made here.
//   - reusedFrom: another bundle image's baseline holds the blob (crossImage);
//   - crossPatched, notReproducible: a layer patched against the other
//     images' baselines, or why it is not (crossPatch);
//   - ownPatchWas, seenBy: a weak patch gives way to a cross-image one,
//     which each image of the bundle takes (crossFallback);
//   - targetPatched, alsoFromTargets, notReproducibleFromTargets, seenBy:
//     a layer patched against layers the archive rebuilds earlier
//     (targetSources, fleet.go), as each image with the layer states it;
//   - settle: once payloads are computed, a patch that did not pay ships
//     whole, and one kept in another codec names it (buildSidecar).

// revise replaces b's decision with d: the one assignment.
func revise(b *plan.Blob, d plan.Decision) { b.Decision = d }

// reusedFrom is b reused from the baseline of bundle image image, with
// the recipe that reproduces it (crossReuseRecipe); reproducible false
// says no recipe does.
func reusedFrom(b plan.Blob, image string, recipe json.RawMessage, reproducible bool) plan.Decision {
	d := b.Decision
	d.Action, d.From, d.Patch, d.Recipe = sidecar.Reuse, image, nil, recipe
	d.Reason = fmt.Sprintf("present in the baseline of bundle image %q", image)
	d.ReasonCode = sidecar.ReasonInBundleBaseline
	if !reproducible {
		d.Reason += "; no recompression recipe: a baseline holding it only uncompressed cannot rebuild it"
	}
	return d
}

// crossPatched is b patched from layers of the baselines of the bundle
// images from, recompressed as rec.
func crossPatched(b plan.Blob, patch *plan.Patch, from []string, rec recompress.Recipe) plan.Decision {
	d := b.Decision
	d.Action, d.Patch = sidecar.Patch, patch
	d.ReasonCode = sidecar.ReasonPatched
	d.Reason = fmt.Sprintf("not in the baseline; patch from %d layer(s) of the baseline(s) of bundle image(s) %s, recompressed as %s",
		len(patch.Sources), strings.Join(quoteAll(from), ", "), rec)
	return d
}

// notReproducible is shipped b, which no cross-image patch can rebuild.
func notReproducible(b plan.Blob) plan.Decision {
	d := b.Decision
	d.Reason += "; no patch from the other images' baselines: its compressed blob cannot be reproduced"
	d.ReasonCode = sidecar.ReasonNotReproducible
	return d
}

// ownPatchWas is the cross-image patch d, saying what the patch from the
// layer's own baseline (own; nil when it was not smaller than the blob)
// was.
func ownPatchWas(d plan.Decision, own *payload) plan.Decision {
	if own != nil {
		d.Reason = fmt.Sprintf("the patch from its own baseline was %d bytes; ", own.size) + d.Reason
	} else {
		d.Reason = "the patch from its own baseline was not smaller than the blob; " + d.Reason
	}
	return d
}

// settle is what became of planned patch b once the payloads are
// computed, and the payload that rebuilds it (nil: it ships whole, for
// the reason patches recorded). A payload in another codec than planned
// (floor.go) brings its own sources and recipe.
func (ps *payloadSet) settle(b plan.Blob) (plan.Decision, *payload) {
	d := b.Decision
	pl, ok := ps.byLayer[b.Digest.String()]
	if !ok {
		why := ps.unused[b.Digest]
		d.Action, d.Patch = sidecar.Ship, nil
		d.Reason = "not in the baseline; ships whole: " + why.text
		d.ReasonCode = why.code
		return d, nil
	}
	if pl.codec != "" {
		d.Patch = &plan.Patch{Codec: pl.codec, Sources: pl.sources, Recipe: json.RawMessage(pl.recipe)}
		d.Reason = floorReason(b, pl.codec)
		if pl.note != "" {
			d.Reason += "; " + pl.note
		}
	}
	return d, pl
}

// fromTargets says, for people, which target layers a patch reads.
func fromTargets(srcs []sidecar.Source, from []string) string {
	return fmt.Sprintf("patch from %d layer(s) this archive rebuilds first (of bundle image(s) %s)", len(srcs), strings.Join(quoteAll(from), ", "))
}

// targetPatched is shipped b patched against target layers of the bundle
// images from, recompressed as rec.
func targetPatched(b plan.Blob, patch *plan.Patch, from []string, rec recompress.Recipe) plan.Decision {
	d := b.Decision
	d.Action, d.Patch = sidecar.Patch, patch
	d.ReasonCode = sidecar.ReasonPatched
	d.Reason = fmt.Sprintf("not in the baseline; %s, recompressed as %s", fromTargets(patch.Sources, from), rec)
	return d
}

// alsoFromTargets is patched b reading the target layers srcs after its
// own sources.
func alsoFromTargets(b plan.Blob, srcs []sidecar.Source, from []string) plan.Decision {
	d := b.Decision
	pc := *d.Patch
	pc.Codec, pc.Sources = tarpatch.CodecBundle, append(append([]sidecar.Source(nil), d.Patch.Sources...), srcs...)
	d.Patch = &pc
	d.Reason += "; also " + fromTargets(srcs, from)
	return d
}

// notReproducibleFromTargets is shipped b, which target layers could
// patch but no recipe rebuilds.
func notReproducibleFromTargets(b plan.Blob, srcs []sidecar.Source, from []string) plan.Decision {
	d := b.Decision
	d.Reason += "; no " + fromTargets(srcs, from) + ": its compressed blob cannot be reproduced"
	d.ReasonCode = sidecar.ReasonNotReproducible
	return d
}

// seenBy is patch decision d of image owner as bundle image viewer
// states it: owner's own baseline by name, viewer's own without one;
// target-layer sources name their image whoever reads them.
func seenBy(d plan.Decision, owner, viewer string) plan.Decision {
	pc := *d.Patch
	pc.Sources = append([]sidecar.Source(nil), d.Patch.Sources...)
	for n := range pc.Sources {
		switch s := &pc.Sources[n]; {
		case s.Target != "":
		case s.Image == "" && owner != viewer:
			s.Image = owner
		case s.Image == viewer:
			s.Image = ""
		}
	}
	d.Patch = &pc
	return d
}
