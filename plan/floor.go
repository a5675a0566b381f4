package plan

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
// instead when the patch is not smaller. why is Detect's error, family
// the compressor Identify guessed.
func planFloor(b *Blob, why error, family string) {
	b.Patch.Codec = blobpatch.Codec
	b.Patch.Sources = b.Patch.Sources[:1]
	b.Patch.Recipe = BlobRecipe
	b.Action = sidecar.Patch
	b.Reason = fmt.Sprintf("not in the baseline; compressed by %s, whose blob cannot be reproduced (%s): patch of its compressed bytes against baseline layer %s",
		family, oneLine(why), b.Patch.Sources[0].Digest)
	b.ReasonCode = sidecar.ReasonNotReproducible
}

// identify names the compressor of a layer for the plan's reason.
func identify(l v1.Layer) string {
	rc, err := l.Compressed()
	if err != nil {
		return "an unknown compressor"
	}
	defer rc.Close()
	return recompress.Identify(rc)
}
