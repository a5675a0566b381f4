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
	// MinorTarV3 (1.2) adds the codec "diffah-tar/3".
	MinorTarV3 = 2
)

// setVersion sets the plan's version to the oldest that describes it.
func (p *Plan) setVersion() {
	minor := minorBase
	for _, b := range p.Blobs {
		if b.Patch != nil && b.Patch.Codec == sidecar.TarPatchCodecV3 {
			minor = MinorTarV3
		} else if (b.Patch != nil && b.Patch.Codec != sidecar.TarPatchCodecV1) || len(b.Recipe) > 0 || b.ReasonCode != "" {
			minor = max(minor, MinorBlobPatch)
		}
	}
	p.Version = fmt.Sprintf("%d.%d", Major, minor)
}
