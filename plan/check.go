package plan

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// MaxPatchSources is the most baseline layers one patch may read (the
// sidecar's limit).
const MaxPatchSources = 64

// Check compares p, a plan read back from a user (and so possibly edited),
// with want: the plan Compute makes from the same target and baseline with
// IntraLayer off, which holds everything that follows from the images —
// the target manifest, every blob's descriptor, role and diffID in
// manifest order, the baseline's manifest digest, config and layers — and
// whose decisions say which blobs the baseline holds. Everything that
// follows from the images must be equal, and every decision must be
// possible: a reused blob is held by the baseline it is reused from, a
// patch reads layers that baseline has, exactly as it describes them, with
// the codec this diffah writes and a recipe that parses strictly. (Whether
// the recipe reproduces the blob needs the blob's bytes: pack checks that.)
//
// bundle holds the derived plans of the images of the same bundle by name;
// a blob's from and a patch source's image must name one of them other
// than p itself. A nil bundle allows no such reference (a single image, or
// a bundle packed --independent).
//
// Every error is a fault.Integrity error naming the blob and the field of
// the plan (as a jq path), with a hint.
func Check(p, want *Plan, bundle map[string]*Plan) error {
	if err := p.Validate(); err != nil {
		return lie(p, "%w", err)
	}
	if err := checkTarget(p, want); err != nil {
		return err
	}
	if err := checkBaseline(p, want); err != nil {
		return err
	}
	if err := checkBlobs(p, want); err != nil {
		return err
	}
	for i, b := range p.Blobs {
		if err := checkDecision(p, want, bundle, i, b); err != nil {
			return err
		}
	}
	return nil
}

func lie(p *Plan, format string, args ...any) error {
	return fault.WithHint(fault.Errorf(fault.Integrity, "plan %q: "+format, append([]any{p.Name}, args...)...), fault.Integrity,
		"the plan does not describe the images it names (edited, or made for other images): run `diffah plan` again")
}

func checkTarget(p, want *Plan) error {
	g, w := p.Target, want.Target
	if g.Manifest.Digest != w.Manifest.Digest || g.Manifest.Size != w.Manifest.Size {
		return lie(p, "target manifest (.target.manifest.digest) is %s (%d bytes) in the plan, %s (%d bytes) in %s",
			g.Manifest.Digest, g.Manifest.Size, w.Manifest.Digest, w.Manifest.Size, w.Ref)
	}
	if g.Manifest.MediaType != w.Manifest.MediaType {
		return lie(p, "target manifest %s (.target.manifest.mediaType): the plan says %q, %s says %q", g.Manifest.Digest, g.Manifest.MediaType, w.Ref, w.Manifest.MediaType)
	}
	if string(g.Raw) != string(w.Raw) {
		return lie(p, "target manifest %s (.target.raw): the bytes differ from those of %s", g.Manifest.Digest, w.Ref)
	}
	if g.Config != w.Config {
		return lie(p, "target config (.target.config) is %s in the plan, %s in the manifest of %s", g.Config, w.Config, w.Ref)
	}
	// Platform and index digest only describe the target (pack opens the
	// platform the plan names, and the manifest digest above pins what it
	// found); a plan may leave them out, but what it says must be true.
	if g.Platform != "" && g.Platform != w.Platform {
		return lie(p, "target platform (.target.platform) is %q in the plan, %q in %s", g.Platform, w.Platform, w.Ref)
	}
	if g.IndexDigest != "" && g.IndexDigest != w.IndexDigest {
		return lie(p, "target index (.target.indexDigest) is %q in the plan, %q in %s", g.IndexDigest, w.IndexDigest, w.Ref)
	}
	return nil
}

func baseName(b *Baseline) string {
	if b.Ref != "" {
		return b.Ref
	}
	return b.ManifestFile
}

func checkBaseline(p, want *Plan) error {
	g, w := p.Baseline, want.Baseline
	if (g == nil) != (w == nil) {
		return lie(p, "the plan names a baseline (.baseline) where the images have none, or the reverse")
	}
	if g == nil {
		return nil
	}
	name := baseName(w)
	if g.ManifestDigest != w.ManifestDigest {
		return lie(p, "baseline %s is now %s, the plan was made for %s (.baseline.manifestDigest)", name, w.ManifestDigest, g.ManifestDigest)
	}
	if g.Config != w.Config {
		return lie(p, "baseline config (.baseline.config) is %s in the plan, %s in baseline %s", g.Config, w.Config, name)
	}
	if len(g.Layers) != len(w.Layers) {
		return lie(p, "the plan lists %d baseline layers (.baseline.layers), baseline %s has %d", len(g.Layers), name, len(w.Layers))
	}
	for i := range g.Layers {
		if f := sourceDiff(g.Layers[i], w.Layers[i]); f != "" {
			return lie(p, "baseline layer %s (.baseline.layers[%d].%s): the plan says %s, baseline %s says %s",
				g.Layers[i].Digest, i, f, sourceField(g.Layers[i], f), name, sourceField(w.Layers[i], f))
		}
	}
	return nil
}

// sourceDiff names the first field in which two layer descriptions
// differ ("" when equal).
func sourceDiff(g, w sidecar.Source) string {
	switch {
	case g.Digest != w.Digest:
		return "digest"
	case g.Size != w.Size:
		return "size"
	case g.MediaType != w.MediaType:
		return "mediaType"
	case g.DiffID != w.DiffID:
		return "diffID"
	case g.Image != w.Image:
		return "image"
	}
	return ""
}

func sourceField(s sidecar.Source, f string) string {
	switch f {
	case "digest":
		return s.Digest.String()
	case "size":
		return fmt.Sprint(s.Size)
	case "mediaType":
		return fmt.Sprintf("%q", s.MediaType)
	case "diffID":
		return fmt.Sprintf("%q", s.DiffID)
	}
	return fmt.Sprintf("%q", s.Image)
}

// where names a target blob by its place in the manifest.
func where(i int) string {
	switch i {
	case 0:
		return "the manifest"
	case 1:
		return "the config"
	}
	return fmt.Sprintf("layer %d", i-2)
}

// checkBlobs: the plan lists exactly the target's blobs, in manifest
// order, each described as the manifest and config describe it.
func checkBlobs(p, want *Plan) error {
	has := func(list []Blob, d digest.Digest) bool {
		for _, b := range list {
			if b.Digest == d {
				return true
			}
		}
		return false
	}
	ref := want.Target.Ref
	for i := 0; i < max(len(p.Blobs), len(want.Blobs)); i++ {
		switch {
		case i >= len(want.Blobs):
			if has(want.Blobs, p.Blobs[i].Digest) {
				return lie(p, "blob %s (.blobs[%d]) is listed more often than the manifest of %s lists it", p.Blobs[i].Digest, i, ref)
			}
			return lie(p, "blob %s (.blobs[%d]) is not a blob of %s", p.Blobs[i].Digest, i, ref)
		case i >= len(p.Blobs):
			return lie(p, "blob %s (%s of %s) is missing from the plan: .blobs has %d entries, the target %d", want.Blobs[i].Digest, where(i), ref, len(p.Blobs), len(want.Blobs))
		}
		g, w := p.Blobs[i], want.Blobs[i]
		if g.Digest != w.Digest {
			switch {
			case !has(want.Blobs, g.Digest):
				return lie(p, "blob %s (.blobs[%d].digest) is not a blob of %s, whose %s is %s", g.Digest, i, ref, where(i), w.Digest)
			case !has(p.Blobs, w.Digest):
				return lie(p, "blob %s (%s of %s) is missing from the plan (.blobs[%d] is %s)", w.Digest, where(i), ref, i, g.Digest)
			}
			return lie(p, "blob %s (.blobs[%d].digest) is out of place: %s of %s is %s", g.Digest, i, where(i), ref, w.Digest)
		}
		field, got, exp := "", "", ""
		switch {
		case g.Size != w.Size:
			field, got, exp = "size", fmt.Sprint(g.Size), fmt.Sprint(w.Size)
		case g.MediaType != w.MediaType:
			field, got, exp = "mediaType", fmt.Sprintf("%q", g.MediaType), fmt.Sprintf("%q", w.MediaType)
		case g.Role != w.Role:
			field, got, exp = "role", fmt.Sprintf("%q", g.Role), fmt.Sprintf("%q", w.Role)
		case g.DiffID != w.DiffID:
			field, got, exp = "diffID", fmt.Sprintf("%q", g.DiffID), fmt.Sprintf("%q", w.DiffID)
		}
		if field != "" {
			return lie(p, "blob %s (.blobs[%d].%s): the plan says %s, %s of %s says %s", g.Digest, i, field, got, where(i), ref, exp)
		}
	}
	return nil
}

// holder returns the derived plan of the image whose baseline a blob is
// drawn from: p's own (name "") or another image of the bundle.
func holder(p, want *Plan, bundle map[string]*Plan, name, field string, d digest.Digest) (*Plan, error) {
	if name == "" {
		return want, nil
	}
	if bundle == nil {
		return nil, lie(p, "blob %s (%s): names image %q, but here each image draws on its own baseline only (one image, or a bundle packed --independent)", d, field, name)
	}
	q, ok := bundle[name]
	if !ok || name == p.Name {
		return nil, lie(p, "blob %s (%s): %q is not another image of this bundle", d, field, name)
	}
	if q.Baseline == nil {
		return nil, lie(p, "blob %s (%s): bundle image %q has no baseline", d, field, name)
	}
	return q, nil
}

func checkDecision(p, want *Plan, bundle map[string]*Plan, i int, b Blob) error {
	at := fmt.Sprintf(".blobs[%d]", i)
	if b.From != "" && b.Action != sidecar.Reuse {
		return lie(p, "blob %s (%s.from): only a reused blob names a baseline to come from; this one is %s", b.Digest, at, b.Action)
	}
	switch b.Action {
	case sidecar.Reuse:
		h, err := holder(p, want, bundle, b.From, at+".from", b.Digest)
		if err != nil {
			return err
		}
		// A layer the baseline holds compressed otherwise (same diffID)
		// is reused when the plan carries its recipe: the consumer
		// rebuilds the blob from that layer and checks its digest.
		if !holds(h.Baseline, b.Digest) && (len(b.Recipe) == 0 || !holdsDiffID(h.Baseline, b.DiffID)) {
			return lie(p, "blob %s (%s.action): reused, but baseline %s (%s) does not hold it", b.Digest, at, baseName(h.Baseline), h.Baseline.ManifestDigest)
		}
	case sidecar.Patch:
		pt := b.Patch
		// A plan's patches are tar patches, or (a layer no recipe
		// reproduces) patches of the compressed bytes; pack may turn the
		// latter into a deflate token patch when that is smaller.
		if pt.Codec != tarpatch.Codec && pt.Codec != sidecar.BlobPatchCodec {
			return lie(p, "blob %s (%s.patch.codec): codec %q; this diffah writes %q or %q", b.Digest, at, pt.Codec, tarpatch.Codec, sidecar.BlobPatchCodec)
		}
		if pt.Codec == tarpatch.Codec && !Patchable(b.MediaType) {
			return lie(p, "blob %s (%s.action): patched, but its media type %s is not a tar diffah can patch", b.Digest, at, b.MediaType)
		}
		if len(pt.Sources) > MaxPatchSources {
			return lie(p, "blob %s (%s.patch.sources): %d sources, more than the %d allowed", b.Digest, at, len(pt.Sources), MaxPatchSources)
		}
		if _, err := recompress.ParseRecipe(pt.Recipe); err != nil {
			return lie(p, "blob %s (%s.patch.recipe): %w", b.Digest, at, err)
		}
		seen := map[string]bool{}
		for k, s := range pt.Sources {
			f := fmt.Sprintf("%s.patch.sources[%d]", at, k)
			key := s.Image + "\x00" + s.Digest.String()
			if seen[key] {
				return lie(p, "blob %s (%s): source %s is listed twice", b.Digest, f, s.Digest)
			}
			seen[key] = true
			h, err := holder(p, want, bundle, s.Image, f+".image", b.Digest)
			if err != nil {
				return err
			}
			base := h.Baseline
			if base == nil {
				return lie(p, "blob %s (%s): a patch source, but the plan has no baseline", b.Digest, f)
			}
			if base.Ref == "" {
				return lie(p, "blob %s (%s): the baseline %s is only a manifest (--baseline-manifest): it has no layer to patch from", b.Digest, f, baseName(base))
			}
			if err := sourceInBaseline(p, b, f, s, base); err != nil {
				return err
			}
		}
	}
	return nil
}

func holds(b *Baseline, d digest.Digest) bool {
	if b.Config == d {
		return true
	}
	for _, l := range b.Layers {
		if l.Digest == d {
			return true
		}
	}
	return false
}

// sourceInBaseline: a patch source is a layer of the baseline, described as
// the baseline describes it (the consumer spools it by its diffID and
// the patch decoder reads exactly its size).
func sourceInBaseline(p *Plan, b Blob, f string, s sidecar.Source, base *Baseline) error {
	for _, l := range base.Layers {
		if l.Digest != s.Digest {
			continue
		}
		l.Image = s.Image
		if d := sourceDiff(s, l); d != "" {
			return lie(p, "blob %s (%s.%s): the plan says %s, baseline %s says %s", b.Digest, f, d, sourceField(s, d), baseName(base), sourceField(l, d))
		}
		return nil
	}
	return lie(p, "blob %s (%s): baseline %s (%s) has no layer %s", b.Digest, f, baseName(base), base.ManifestDigest, s.Digest)
}

// holdsDiffID reports whether the baseline has a layer with this diffID.
func holdsDiffID(base *Baseline, d digest.Digest) bool {
	if base == nil || d == "" {
		return false
	}
	for _, l := range base.Layers {
		if l.DiffID == d {
			return true
		}
	}
	return false
}
