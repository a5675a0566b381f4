package sidecar

import "fmt"

// Minor versions of the 1.x format.
const (
	// minorBase is what a sidecar whose patches are all tar patches says:
	// 1.1 readers read it strictly.
	minorBase = 1
	// MinorBlobPatch (1.2) adds reasonCode on blobs, a recompression
	// recipe on reused layers
	// (rebuilt from a baseline that holds them only uncompressed: a
	// container engine, a docker save archive), the codec "diffah-tar/2"
	// (tarpatch's ADIFF and XADIFF ops), and the patch codecs "diffah-blob/1"
	// (package blobpatch: a patch of a layer's compressed bytes, whose
	// uncompressedSize is the blob size) and "diffah-deflate/1" (a
	// tar patch plus a blobpatch patch of the blob's deflate parse, package
	// deflatetok, whose uncompressedSize is the tar's size); the recipe of
	// both is {"format":"none"}; and "diffah-deflate-inline/1" (a
	// blobpatch patch of the blob's whole token form, content inline,
	// whose uncompressedSize is that form's size). A 1.1 reader refuses such a layer by its codec,
	// naming it.
	MinorBlobPatch = 2
	// MinorTarV3 (1.3) adds the codec "diffah-tar/3" (tarpatch's
	// re-indented dictionary ranges); a 1.2 reader refuses such a layer
	// by its codec, naming it.
	MinorTarV3 = 3
)

// TarPatchCodecV3 is the tar patch codec sidecar 1.3 adds.
const TarPatchCodecV3 = "diffah-tar/3"

// BlobPatchCodec is blobpatch.Codec (the sidecar package sits below the
// codecs, so it names it here).
const BlobPatchCodec = "diffah-blob/1"

// DeflatePatchCodec names the tar-plus-parse patch of a gzip layer;
// DeflateInlineCodec the patch of its whole token form (content inline).
const (
	DeflatePatchCodec  = "diffah-deflate/1"
	DeflateInlineCodec = "diffah-deflate-inline/1"
)

// TarPatchCodecV1 is the tar patch codec 1.1 readers know.
const TarPatchCodecV1 = "diffah-tar/1"

// SetVersion sets the version to the oldest one that describes the
// sidecar: 1.2 when a blob carries what 1.2 added (a reused layer's
// recipe, a patch codec other than diffah-tar/1; 1.3 for diffah-tar/3), else 1.1, so archives
// that need nothing new stay readable by older readers.
func (s *Sidecar) SetVersion() {
	minor := minorBase
	for _, im := range s.Images {
		for _, b := range im.Blobs {
			if b.Patch != nil && b.Patch.Codec == TarPatchCodecV3 {
				minor = MinorTarV3
			} else if (b.Patch != nil && b.Patch.Codec != TarPatchCodecV1) || len(b.Recipe) > 0 || b.ReasonCode != "" {
				minor = max(minor, MinorBlobPatch)
			}
		}
	}
	s.Version = fmt.Sprintf("%d.%d", Major, minor)
}
