package inspect

import (
	"fmt"
	"log/slog"

	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/sidecar"
)

// Summary is the one line export and pack end with on a terminal:
// "wrote app.dlt: 3.8 MiB (91% of 42.4 MiB saved): 1 layer patched, 2
// reused, 0 shipped whole".
func Summary(where string, sc *sidecar.Sidecar, archiveBytes int64) string {
	d := FromSidecar(sc, false, "", false)
	var patched, reused, whole int
	for _, im := range d.Images {
		for _, b := range im.Blobs {
			if b.Role != sidecar.RoleLayer {
				continue
			}
			switch b.Kind {
			case KindPatch:
				patched++
			case KindReused:
				reused++
			default:
				whole++
			}
		}
	}
	saved := 0.0
	if d.Totals.FullBytes > 0 {
		saved = 100 * float64(d.Totals.FullBytes-archiveBytes) / float64(d.Totals.FullBytes)
	}
	return fmt.Sprintf("wrote %s: %s (%.0f%% of %s saved): %s patched, %d reused, %d shipped whole",
		where, units.Bytes(archiveBytes), saved, units.Bytes(d.Totals.FullBytes), plural(patched, "layer"), reused, whole)
}

// WarnWhole warns, on log, of each changed layer that still ships whole
// (one that has a baseline to be patched or reused against), with why.
func WarnWhole(log *slog.Logger, sc *sidecar.Sidecar) {
	for _, im := range sc.Images {
		for _, b := range im.Blobs {
			if im.Baseline != nil && b.Role == sidecar.RoleLayer && b.Action == sidecar.Ship {
				log.Warn("layer ships whole", "image", im.Name, "layer", b.Digest, "size", units.Bytes(b.Size), "why", b.Reason)
			}
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
