package inspect

import (
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
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
		hist[i].Label = "< " + Bytes(b)
		if i == len(bounds)-1 {
			hist[i].Label = ">= " + Bytes(bounds[i-1])
		}
	}
	shippedBy := map[digest.Digest][]string{}
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
			if b.Kind == KindFull && !b.Shared {
				shippedBy[b.Digest] = append(shippedBy[b.Digest], im.Name)
				switch {
				case nonReproducible[b.Digest]:
					d.Warnings = append(d.Warnings, fmt.Sprintf("image %s: layer %s (%s) ships whole: its compressed blob cannot be reproduced, so no patch could replace it (recompress it with a standard gzip/zstd writer to make it patchable)",
						im.Name, Short(b.Digest), Bytes(b.TargetSize)))
				case b.TargetSize >= 1<<20 && (im.BaselineRef != "" || im.BaselineManifest != ""):
					why := "a patch against the baseline was not smaller, or was not planned"
					if b.Reason != "" {
						why = b.Reason
					}
					d.Warnings = append(d.Warnings, fmt.Sprintf("image %s: layer %s (%s) ships whole: %s", im.Name, Short(b.Digest), Bytes(b.TargetSize), why))
				}
			}
		}
		if im.BaselineRef != "" && im.FullBytes > 0 && im.ReusedBytes*20 < im.FullBytes && im.Patched == 0 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("image %s: the baseline shares almost nothing with the target (%.1f%% reused): is it the right baseline?",
				im.Name, 100*float64(im.ReusedBytes)/float64(im.FullBytes)))
		}
	}
	for dg, names := range shippedBy {
		if len(names) > 1 && d.Source == "plan" {
			d.Warnings = append(d.Warnings, fmt.Sprintf("blob %s is shipped by %d images (%v): in one bundle it travels once", Short(dg), len(names), names))
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
}
