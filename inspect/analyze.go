package inspect

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/internal/units"
)

// Saving is one of the blobs that saved the most.
type Saving struct {
	Image  string        `json:"image"`
	Digest digest.Digest `json:"digest"`
	Kind   string        `json:"kind"`
	Saved  int64         `json:"savedBytes"`
}

// Bucket is one bar of the layer size histogram: layers whose target size
// is below UpTo (and at least the previous bucket's UpTo).
type Bucket struct {
	UpTo   int64  `json:"upToBytes"`
	Label  string `json:"label"`
	Layers int    `json:"layers"`
	// Bytes is the target size of those layers; Shipped what travels.
	Bytes   int64 `json:"bytes"`
	Shipped int64 `json:"shippedBytes"`
}

// bucket bounds: 1 KiB … 1 GiB by powers of 16, then the rest.
var bounds = []int64{1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 26, 1 << 30, 1<<63 - 1}

// analyze fills the derived parts of the document: top savings, the
// histogram and waste warnings.
func (d *Doc) analyze(nonReproducible map[digest.Digest]bool) {
	var savings []Saving
	hist := make([]Bucket, len(bounds))
	for i, b := range bounds {
		hist[i].UpTo = b
		hist[i].Label = "< " + units.Bytes(b)
		if i == len(bounds)-1 {
			hist[i].Label = ">= " + units.Bytes(bounds[i-1])
		}
	}
	travels := map[digest.Digest][]string{}
	byDiffID := map[digest.Digest][]digest.Digest{}
	for _, im := range d.Images {
		for _, b := range im.Blobs {
			if b.Role != "layer" {
				continue
			}
			if saved := b.TargetSize - b.ShippedSize; saved > 0 && !b.Shared {
				savings = append(savings, Saving{Image: im.Name, Digest: b.Digest, Kind: b.Kind, Saved: saved})
			}
			for i, ub := range bounds {
				if b.TargetSize < ub || i == len(bounds)-1 {
					hist[i].Layers++
					hist[i].Bytes += b.TargetSize
					hist[i].Shipped += b.ShippedSize
					break
				}
			}
			if b.Kind != KindReused && !b.Shared {
				travels[b.Digest] = append(travels[b.Digest], b.Kind+" in "+im.Name)
				if b.DiffID != "" && !slices.Contains(byDiffID[b.DiffID], b.Digest) {
					byDiffID[b.DiffID] = append(byDiffID[b.DiffID], b.Digest)
				}
			}
			if b.Kind == KindFull && !b.Shared {
				switch {
				case nonReproducible[b.Digest]:
					d.Warnings = append(d.Warnings, fmt.Sprintf("image %s: layer %s (%s) ships whole: its compressed blob cannot be reproduced and a patch of its compressed bytes was not smaller (recompress it with a standard gzip/zstd writer to make its content patchable)",
						im.Name, Short(b.Digest), units.Bytes(b.TargetSize)))
				case b.TargetSize >= 1<<20 && (im.BaselineRef != "" || im.BaselineManifest != ""):
					why := "a patch against the baseline was not smaller, or was not planned"
					if b.Reason != "" {
						why = b.Reason
					}
					d.Warnings = append(d.Warnings, fmt.Sprintf("image %s: layer %s (%s) ships whole: %s", im.Name, Short(b.Digest), units.Bytes(b.TargetSize), why))
				}
			}
		}
		// What the baseline saves: reused blobs and, in an archive (where a
		// patch's size is known), what patches save. A plan's patches are
		// not sized yet, so there only an unpatched image is judged.
		bsaved := im.ReusedBytes
		for _, b := range im.Blobs {
			if b.Kind == KindPatch && !b.Shared {
				bsaved += b.TargetSize - b.ShippedSize
			}
		}
		judged := d.PatchSizesKnown || im.Patched == 0
		// Layers that ship whole for a cause the baseline cannot change
		// (their compression cannot be reproduced): name that cause rather
		// than doubt the baseline.
		var unpatchable int64
		for _, b := range im.Blobs {
			if b.Kind == KindFull && nonReproducible[b.Digest] {
				unpatchable += b.TargetSize
			}
		}
		if im.BaselineRef != "" && im.FullBytes > 0 && judged && bsaved*20 < im.FullBytes {
			w := fmt.Sprintf("image %s: the baseline shares almost nothing with the target (%.1f%% reused, %.1f%% saved in all)",
				im.Name, 100*float64(im.ReusedBytes)/float64(im.FullBytes), 100*float64(bsaved)/float64(im.FullBytes))
			if unpatchable > 0 {
				w += fmt.Sprintf(": %s of it ships whole because its compressed blobs were made by a compressor diffah cannot reproduce, which no baseline changes", units.Bytes(unpatchable))
			} else {
				w += ": is it the right baseline?"
			}
			d.Warnings = append(d.Warnings, w)
		}
	}
	// A blob that travels more than once: shipped whole by one image and
	// as a patch by another (each a separate entry), or the same layer
	// content (diffID) shipped under two compressed digests.
	for dg, ws := range travels {
		if len(ws) > 1 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("blob %s travels %d times (%s): ship it once and reuse it", Short(dg), len(ws), strings.Join(ws, ", ")))
		}
	}
	for id, dgs := range byDiffID {
		if len(dgs) > 1 {
			var names []string
			for _, dg := range dgs {
				names = append(names, Short(dg))
			}
			d.Warnings = append(d.Warnings, fmt.Sprintf("layer content %s travels %d times, compressed differently (%s): compress it the same way in every image so it ships once",
				Short(id), len(dgs), strings.Join(names, ", ")))
		}
	}
	sort.SliceStable(savings, func(i, j int) bool {
		if savings[i].Saved != savings[j].Saved {
			return savings[i].Saved > savings[j].Saved
		}
		return savings[i].Digest < savings[j].Digest
	})
	if len(savings) > 5 {
		savings = savings[:5]
	}
	d.TopSavings = savings
	var used []Bucket
	for _, b := range hist {
		if b.Layers > 0 {
			used = append(used, b)
		}
	}
	d.Histogram = used
	sort.Strings(d.Warnings)
	// Lists are [] rather than null in the JSON when empty.
	if d.Warnings == nil {
		d.Warnings = []string{}
	}
	if d.TopSavings == nil {
		d.TopSavings = []Saving{}
	}
	if d.Histogram == nil {
		d.Histogram = []Bucket{}
	}
}
