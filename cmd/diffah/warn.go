package main

import (
	"log/slog"

	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/sidecar"
)

// warnWhole warns, for each changed layer that still ships whole although
// a baseline was given, why (the sidecar's reason): a layer whose
// compressor cannot be replayed and whose compressed-bytes patch was not
// smaller, a patch that did not pay, or a layer no patch was planned for.
func warnWhole(log *slog.Logger, rep *pack.Report) {
	if rep == nil || rep.Sidecar == nil {
		return
	}
	for _, im := range rep.Sidecar.Images {
		if im.Baseline == nil {
			continue
		}
		for _, b := range im.Blobs {
			if b.Role == sidecar.RoleLayer && b.Action == sidecar.Ship {
				log.Warn("layer ships whole", "image", im.Name, "layer", b.Digest, "size", b.Size, "why", b.Reason)
			}
		}
	}
}
