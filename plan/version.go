package plan

import (
	"fmt"

	"github.com/diffah/diffah/sidecar"
)

// Minor versions of the 1.x plan format.
const (
	// minorBase is what a plan whose patches are all tar patches says.
	minorBase = 0
	// MinorBlobPatch (1.1) adds reasonCode on blobs, a recompression
	// recipe on reused layers,
	// the codec "diffah-tar/2" and the patch codecs of sidecar 1.2
	// ("diffah-blob/1": a patch of a layer's compressed bytes, recipe
	// {"format":"none"}; "diffah-deflate/1", "diffah-deflate-inline/1").
	MinorBlobPatch = 1
	// MinorSync (1.2) adds sync points to a patch's recipe (sidecar
	// 1.3's "sync"; recompress.SyncPoint) and the codec "diffah-tar/3".
	MinorSync = 2
	// MinorTarV3 is MinorSync: both came in 1.2.
	MinorTarV3 = MinorSync
	// MinorTarV4 (1.3) adds the codec "diffah-tar/4" (tarpatch's edit
	// form of a small layer).
	MinorTarV4 = 3
)

// setVersion sets the plan's version to the oldest that describes it.
func (p *Plan) setVersion() {
	minor := minorBase
	for _, b := range p.Blobs {
		if (b.Patch != nil && b.Patch.Codec != sidecar.TarPatchCodecV1) || len(b.Recipe) > 0 || b.ReasonCode != "" {
			minor = max(minor, MinorBlobPatch)
		}
		if b.Patch != nil && sidecar.RecipeHasSync(b.Patch.Recipe) {
			minor = max(minor, MinorSync)
		}
		if b.Patch != nil && b.Patch.Codec == sidecar.TarPatchCodecV3 {
			minor = max(minor, MinorTarV3)
		}
		if b.Patch != nil && b.Patch.Codec == sidecar.TarPatchCodecV4 {
			minor = max(minor, MinorTarV4)
		}
	}
	p.Version = fmt.Sprintf("%d.%d", Major, minor)
}
