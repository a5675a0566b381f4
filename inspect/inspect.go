// Package inspect explains a plan or a delta archive to people and to
// scripts: per image, what each blob costs to ship, what is reused or
// patched, and how much is saved against shipping the full image.
package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
)

// Doc is what inspect reports; its JSON form is stable.
type Doc struct {
	// Source is "plan" or "archive".
	Source  string `json:"source"`
	Version string `json:"version"`
	Tool    string `json:"tool,omitempty"`
	// Signature status (archives only).
	Signed            bool    `json:"signed"`
	KeyID             string  `json:"keyId,omitempty"`
	SignatureVerified bool    `json:"signatureVerified"`
	Images            []Image `json:"images"`
	Totals            Totals  `json:"totals"`
	// ArchiveBytes is the size of the archive itself, sidecar and tar
	// overhead included (0: unknown); ArchiveExact says whether it was
	// measured (a file's size, or every patch computed) rather than
	// estimated.
	ArchiveBytes int64 `json:"archiveBytes,omitempty"`
	ArchiveExact bool  `json:"archiveExact,omitempty"`
	// PatchSizesKnown is false for a plan whose patches were not computed:
	// their shipped size is then the layer's full size, an upper bound.
	PatchSizesKnown bool `json:"patchSizesKnown"`
	// TopSavings lists the layers that saved the most bytes.
	TopSavings []Saving `json:"topSavings"`
	// Histogram counts layers by target size.
	Histogram []Bucket `json:"histogram"`
	// Warnings point at waste: layers that could not be patched, blobs
	// shipped twice, a baseline that shares nothing.
	Warnings []string `json:"warnings"`
	// AllFiles shows every file the archive records per layer, not only
	// the first TopFiles (inspect --files; see files.go).
	AllFiles bool `json:"-"`
}

// Image is one image of the plan or archive.
type Image struct {
	Name             string        `json:"name"`
	Platform         string        `json:"platform,omitempty"`
	TargetRef        string        `json:"targetRef"`
	TargetManifest   digest.Digest `json:"targetManifest"`
	BaselineRef      string        `json:"baselineRef,omitempty"`
	BaselineManifest digest.Digest `json:"baselineManifest,omitempty"`
	Blobs            []Blob        `json:"blobs"`
	Totals
}

// Blob is one row of the layer table.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Role   string        `json:"role"`
	// Kind is full (shipped whole), patch or reused.
	Kind        string `json:"kind"`
	TargetSize  int64  `json:"targetSize"`
	ShippedSize int64  `json:"shippedSize"`
	// Ratio is ShippedSize / TargetSize.
	Ratio   float64         `json:"ratio"`
	Sources []digest.Digest `json:"patchSources,omitempty"`
	// Codec is the patch codec (diffah-tar/1, or for layers no recipe
	// reproduces diffah-deflate/1 or diffah-blob/1).
	Codec string `json:"codec,omitempty"`
	// SourceImages names, per patch source, the bundle image whose
	// baseline holds it ("" for the image's own baseline); omitted when
	// every source is the image's own.
	SourceImages []string `json:"patchSourceImages,omitempty"`
	// SourceTargets names, per patch source, the bundle image whose
	// target layer it is — a layer the archive rebuilds before this one
	// ("" for a baseline layer); omitted when every source is a
	// baseline's.
	SourceTargets []string `json:"patchSourceTargets,omitempty"`
	// From names the bundle image whose baseline a reused blob comes from,
	// when not the image's own.
	From   string `json:"from,omitempty"`
	Reason string `json:"reason,omitempty"`
	// DiffID is the digest of the uncompressed layer (layers only).
	DiffID digest.Digest `json:"diffID,omitempty"`
	// CreatedBy says what made the layer: its config history entry,
	// shortened (when the config was at hand).
	CreatedBy string `json:"createdBy,omitempty"`
	// Shared is true when another image of the bundle ships the same
	// entry (it travels once; counted in the first image only).
	Shared bool `json:"shared,omitempty"`
	// Files says what the layer's files cost, for a layer that travels
	// (files.go).
	Files *LayerFiles `json:"files,omitempty"`
}

// Totals sums sizes.
type Totals struct {
	Blobs   int `json:"blobs"`
	Shipped int `json:"shipped"`
	Patched int `json:"patched"`
	Reused  int `json:"reused"`
	// FullBytes is the size of every blob of the target(s): what shipping
	// the whole image(s) would cost.
	FullBytes    int64   `json:"fullBytes"`
	ShippedBytes int64   `json:"shippedBytes"`
	ReusedBytes  int64   `json:"reusedBytes"`
	SavedPercent float64 `json:"savedPercent"`
}

const (
	KindFull   = "full"
	KindPatch  = "patch"
	KindReused = "reused"
)

func (t *Totals) add(b Blob) {
	t.Blobs++
	t.FullBytes += b.TargetSize
	t.ShippedBytes += b.ShippedSize
	switch b.Kind {
	case KindFull:
		t.Shipped++
	case KindPatch:
		t.Patched++
	case KindReused:
		t.Reused++
		t.ReusedBytes += b.TargetSize
	}
}

func (t *Totals) finish() {
	if t.FullBytes > 0 {
		t.SavedPercent = 100 * float64(t.FullBytes-t.ShippedBytes) / float64(t.FullBytes)
	}
}

// FromPlans describes plans. A planned patch's shipped size is not known
// until pack computes it; the full blob size stands in (an upper bound).
func FromPlans(plans []*plan.Plan) *Doc {
	d := &Doc{Source: "plan"}
	var images []imageView
	for _, p := range plans {
		d.Version = p.Version
		im := Image{Name: p.Name, Platform: p.Target.Platform, TargetRef: p.Target.Ref, TargetManifest: p.Target.Manifest.Digest}
		if p.Baseline != nil {
			im.BaselineRef, im.BaselineManifest = p.Baseline.Ref, p.Baseline.ManifestDigest
			if im.BaselineRef == "" {
				im.BaselineRef = p.Baseline.ManifestFile
			}
		}
		v := imageView{head: im}
		for _, b := range p.Blobs {
			bv := blobView{Blob: b}
			if b.Action != sidecar.Reuse {
				bv.travels, bv.cost = b.Digest.String(), b.Size
			}
			bv.nonRepro = b.Action == sidecar.Ship && sidecar.LegacyReasonCode(b.ReasonCode, b.Reason) == sidecar.ReasonNotReproducible
			v.blobs = append(v.blobs, bv)
		}
		images = append(images, v)
	}
	d.describe(images)
	return d
}

// FromSidecar describes an archive from its sidecar.
func FromSidecar(sc *sidecar.Sidecar, signed bool, keyID string, verified bool) *Doc {
	d := &Doc{Source: "archive", Version: sc.Version, Tool: sc.Tool, Signed: signed, KeyID: keyID, SignatureVerified: verified, PatchSizesKnown: true}
	sizes := map[string]int64{}
	for _, e := range sc.Entries {
		sizes[e.Name] = e.Size
	}
	var images []imageView
	for _, si := range sc.Images {
		im := Image{Name: si.Name, Platform: si.Target.Platform, TargetRef: si.Target.Ref, TargetManifest: si.Target.Manifest.Digest}
		if si.Baseline != nil {
			im.BaselineRef, im.BaselineManifest = si.Baseline.Ref, si.Baseline.ManifestDigest
		}
		v := imageView{head: im}
		for _, b := range si.Blobs {
			var spec *sidecar.PatchSpec
			bv := blobView{travels: b.Entry}
			if b.Patch != nil {
				spec, bv.travels = &b.Patch.PatchSpec, b.Patch.Entry
			}
			if b.Action == sidecar.Reuse {
				bv.travels = ""
			}
			bv.Blob = plan.Blob{Descriptor: b.Descriptor, Role: b.Role, DiffID: b.DiffID, Decision: sidecar.WithPatch(b.Decision, spec)}
			bv.cost = sizes[bv.travels]
			bv.nonRepro = sidecar.LegacyReasonCode(b.ReasonCode, b.Reason) == sidecar.ReasonNotReproducible
			bv.archived, bv.files = true, b.FileCosts
			v.blobs = append(v.blobs, bv)
		}
		images = append(images, v)
	}
	d.describe(images)
	return d
}

// imageView is an image of a plan or an archive as describe reads it.
type imageView struct {
	head  Image
	blobs []blobView
}

// blobView is a blob of a plan or an archive: its decision (an archive's
// patch as a plan names it), what travels for it (a plan's blob digest
// or an archive's entry; "" for nothing) and what that costs.
type blobView struct {
	plan.Blob
	travels string
	cost    int64
	// nonRepro: the blob's compressed bytes cannot be reproduced.
	nonRepro bool
	// archived: the blob is an archive's (its patch computed), whose
	// files cost what files says (nil: not recorded).
	archived bool
	files    *sidecar.FileCosts
}

// describe fills the document from the images of a plan or an archive:
// the one loop over both.
func (d *Doc) describe(images []imageView) {
	counted := map[string]bool{}
	nonRepro := map[digest.Digest]bool{}
	for _, v := range images {
		im := v.head
		for _, b := range v.blobs {
			row := Blob{Digest: b.Digest, Role: b.Role, TargetSize: b.Size, Reason: b.Reason, DiffID: b.DiffID, From: b.From}
			switch b.Action {
			case sidecar.Reuse:
				row.Kind = KindReused
			case sidecar.Patch:
				row.Kind, row.Codec = KindPatch, b.Patch.Codec
				row.addSources(b.Patch.Sources)
			default:
				row.Kind = KindFull
			}
			if b.nonRepro {
				nonRepro[b.Digest] = true
			}
			// What travels once is counted in the first image only.
			if b.travels != "" {
				if counted[b.travels] {
					row.Shared = true
				} else {
					counted[b.travels] = true
					row.ShippedSize = b.cost
				}
			}
			if row.TargetSize > 0 {
				row.Ratio = float64(row.ShippedSize) / float64(row.TargetSize)
			}
			row.Files = layerFiles(row, b.archived, b.files)
			im.Blobs = append(im.Blobs, row)
			im.Totals.add(row)
			d.Totals.add(row)
		}
		im.Totals.finish()
		d.Images = append(d.Images, im)
	}
	d.Totals.finish()
	d.analyze(nonRepro)
}

// WritePlans prints a short text summary of plans (export --dry-run).
func WritePlans(w io.Writer, plans []*plan.Plan) error {
	return FromPlans(plans).WriteText(w)
}

// WriteJSON writes the document as indented JSON.
func (d *Doc) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d.shown(), "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the document for people.
func (d *Doc) WriteText(w io.Writer) error {
	d = d.shown()
	var b strings.Builder
	fmt.Fprintf(&b, "%s, format %s", d.Source, d.Version)
	if d.Tool != "" {
		fmt.Fprintf(&b, ", written by %s", d.Tool)
	}
	b.WriteString("\n")
	if d.Source == "archive" {
		switch {
		case d.Signed && d.SignatureVerified:
			fmt.Fprintf(&b, "signature: valid, key %s\n", d.KeyID)
		case d.Signed:
			fmt.Fprintf(&b, "signature: present, key %s (not verified: pass --verify-key)\n", d.KeyID)
		default:
			b.WriteString("signature: none\n")
		}
	}
	for _, im := range d.Images {
		fmt.Fprintf(&b, "\nimage %s", im.Name)
		if im.Platform != "" {
			fmt.Fprintf(&b, " (%s)", im.Platform)
		}
		fmt.Fprintf(&b, "\n  target:   %s %s\n", im.TargetRef, im.TargetManifest)
		if im.BaselineRef != "" || im.BaselineManifest != "" {
			fmt.Fprintf(&b, "  baseline: %s %s\n", im.BaselineRef, im.BaselineManifest)
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		made := false
		for _, r := range im.Blobs {
			made = made || r.CreatedBy != ""
		}
		head := "  ROLE\tDIGEST\tKIND\tSIZE\tSHIPPED\tRATIO\tPATCH SOURCE"
		if made {
			head += "\tCREATED BY"
		}
		fmt.Fprintln(tw, head)
		for _, r := range im.Blobs {
			shipped := units.Bytes(r.ShippedSize)
			if r.Shared {
				shipped = "(shared)"
			}
			src := ""
			for i, s := range r.Sources {
				if i > 0 {
					src += ","
				}
				src += Short(s)
				if i < len(r.SourceImages) && r.SourceImages[i] != "" {
					src += " (of " + r.SourceImages[i] + ")"
				}
				if i < len(r.SourceTargets) && r.SourceTargets[i] != "" {
					src += " (new layer of " + r.SourceTargets[i] + ")"
				}
			}
			if r.From != "" {
				src = "from " + r.From
			}
			line := fmt.Sprintf("  %s\t%s\t%s\t%s\t%s\t%.3f\t%s", r.Role, Short(r.Digest), r.Kind, units.Bytes(r.TargetSize), shipped, r.Ratio, src)
			if made {
				line += "\t" + r.CreatedBy
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		fmt.Fprintf(&b, "  %d blobs: %d shipped, %d patched, %d reused; %s of %s travels, %.1f%% saved\n",
			im.Totals.Blobs, im.Shipped, im.Patched, im.Reused, units.Bytes(im.ShippedBytes), units.Bytes(im.FullBytes), im.SavedPercent)
		d.writeFiles(&b, im)
	}
	if len(d.Images) > 1 {
		fmt.Fprintf(&b, "\ntotal: %s of %s travels, %.1f%% saved\n", units.Bytes(d.Totals.ShippedBytes), units.Bytes(d.Totals.FullBytes), d.Totals.SavedPercent)
	}
	if !d.PatchSizesKnown && d.Totals.Patched > 0 {
		fmt.Fprintf(&b, "\nnote: the %d patched layer(s) are counted at full size, an upper bound: their patches were not computed (`diffah export --dry-run` computes them)\n", d.Totals.Patched)
	}
	if d.ArchiveBytes > 0 {
		how := "estimated"
		if d.ArchiveExact {
			how = "exact"
		}
		saved := 0.0
		if d.Totals.FullBytes > 0 {
			saved = 100 * float64(d.Totals.FullBytes-d.ArchiveBytes) / float64(d.Totals.FullBytes)
		}
		fmt.Fprintf(&b, "\narchive: %s (%s; sidecar and tar overhead included): %.1f%% of the full %s saved\n", units.Bytes(d.ArchiveBytes), how, saved, units.Bytes(d.Totals.FullBytes))
	}
	if len(d.TopSavings) > 0 {
		b.WriteString("\ntop savings:\n")
		for _, s := range d.TopSavings {
			fmt.Fprintf(&b, "  %-10s %s  %-6s %s\n", s.Image, Short(s.Digest), s.Kind, units.Bytes(s.Saved))
		}
	}
	if len(d.Histogram) > 0 {
		b.WriteString("\nlayer sizes:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, h := range d.Histogram {
			fmt.Fprintf(tw, "  %s\t%d layer(s)\t%s\t%s shipped\t%s\n", h.Label, h.Layers, units.Bytes(h.Bytes), units.Bytes(h.Shipped), bar(h.Layers, maxLayers(d.Histogram)))
		}
		tw.Flush()
	}
	if len(d.Warnings) > 0 {
		b.WriteString("\nwarnings:\n")
		for _, w := range d.Warnings {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Short abbreviates a digest for tables.
func Short(d digest.Digest) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

func maxLayers(h []Bucket) int {
	m := 0
	for _, b := range h {
		m = max(m, b.Layers)
	}
	return m
}

func bar(n, of int) string {
	if of == 0 {
		return ""
	}
	return strings.Repeat("#", max(1, 20*n/of))
}

// addSources lists a patch's sources, and the bundle images whose
// baselines hold them when any is not the image's own.
func (b *Blob) addSources(srcs []sidecar.Source) {
	cross, target := false, false
	for _, s := range srcs {
		b.Sources = append(b.Sources, s.Digest)
		b.SourceImages = append(b.SourceImages, s.Image)
		b.SourceTargets = append(b.SourceTargets, s.Target)
		cross = cross || s.Image != ""
		target = target || s.Target != ""
	}
	if !cross {
		b.SourceImages = nil
	}
	if !target {
		b.SourceTargets = nil
	}
}
