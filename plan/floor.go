package plan

import (
	"encoding/json"
	"fmt"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

// BlobRecipe is the recipe of a blobpatch patch: its output is the blob
// itself, so nothing is recompressed.
var BlobRecipe = func() json.RawMessage {
	b, _ := json.Marshal(recompress.Recipe{Format: recompress.FormatNone})
	return b
}()

// planFloor plans a layer no recipe reproduces as a patch of its
// compressed bytes against the compressed bytes of its nearest source
// (blobpatch): any blob can be rebuilt that way, and pack ships the blob
// instead when the patch is not smaller. why is Detect's error.
func planFloor(b *Blob, why error) {
	b.Patch.Codec = blobpatch.Codec
	b.Patch.Sources = b.Patch.Sources[:1]
	b.Patch.Recipe = BlobRecipe
	b.Action = sidecar.Patch
	b.Reason = fmt.Sprintf("not in the baseline; its compressed blob cannot be reproduced (%s): patch of its compressed bytes against baseline layer %s",
		oneLine(why), b.Patch.Sources[0].Digest)
}
