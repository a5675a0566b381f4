package sidecar

import (
	"encoding/json"
	"fmt"

	"github.com/diffah/diffah/recompress"
)

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
	// MinorSync (1.3) adds sync points to a patch's recompression recipe
	// ("sync": where the layer's deflate stream may be cut so resolve
	// compresses its segments in parallel; recompress.SyncPoint). A 1.2
	// reader refuses such a recipe (an unknown field), naming it.
	MinorSync = 3
	// MinorFleet (1.5) adds patch sources that are layers of the archive
	// itself (Source.Target): in a bundle a layer may be patched against a
	// layer another image (or an earlier layer of the same image) ships or
	// patches first. Such a patch has codec BundleTarCodec, a diffah-tar/2
	// payload (diffah-tar/3) whose sources may be target layers, so a 1.2 reader refuses
	// it by its codec, naming it, before writing anything, instead of
	// looking for those layers in a baseline.
	MinorFleet = 5
	// MinorModel (1.4, with fileCosts) adds the patch codec "diffah-deflate-model/1": a
	// tar patch plus the layer's deflate model form (package deflatetok:
	// the zlib/gzip-family matcher's parameters and its corrections),
	// whose uncompressedSize is the tar's size and whose recipe is
	// {"format":"none"}. A 1.3 or older reader refuses such a layer by its codec.
	MinorModel = 4
	// MinorTarV3 (1.4, with fileCosts) adds the codec "diffah-tar/3"
	// (tarpatch's re-indented dictionary ranges); a 1.3 or older reader
	// refuses such a layer by its codec, naming it.
	MinorTarV3 = 4
	// MinorModelV2 (1.6) adds the patch codec "diffah-deflate-model/2":
	// diffah-deflate-model/1 whose model form (deflatetok, "DFHMODL2")
	// codes a mispredicted match's distance by its rank among the
	// model's hash chain candidates. A 1.5 or older reader refuses such a
	// layer by its codec.
	MinorModelV2 = 6
	// MinorTarV4 (1.7) adds the codecs "diffah-tar/4" (tarpatch's edit
	// form of a small layer) and "diffah-tar-bundle/4" (its bundle
	// form); a 1.6 or older reader refuses such a layer by its codec,
	// naming it.
	MinorTarV4 = 7
	// MinorModelV3 (1.8) adds the patch codec "diffah-deflate-model/3":
	// diffah-deflate-model/2 whose model form ("DFHMODL3") names its
	// matcher's family — libdeflate's levels 2–9 besides zlib/gzip. Layers
	// of the zlib family keep /2, so such archives stay readable by 1.6
	// readers; a 1.7 or older reader refuses a /3 layer by its codec.
	MinorModelV3 = 8
)

// BundleTarCodec is tarpatch.CodecBundle: a diffah-tar/4 patch some of
// whose sources are target layers (since 1.7; BundleTarCodecV3, its
// diffah-tar/3 form, since 1.5).
const (
	BundleTarCodec   = "diffah-tar-bundle/4"
	BundleTarCodecV3 = "diffah-tar-bundle/3"
)

// IsBundleTarCodec reports whether codec is a bundle tar patch codec, the
// only ones whose sources may be target layers.
func IsBundleTarCodec(codec string) bool {
	return codec == BundleTarCodec || codec == BundleTarCodecV3
}

// TarPatchCodecV3 and TarPatchCodecV4 are the tar patch codecs sidecar
// 1.4 and 1.7 add.
const (
	TarPatchCodecV3 = "diffah-tar/3"
	TarPatchCodecV4 = "diffah-tar/4"
)

// BlobPatchCodec is blobpatch.Codec (the sidecar package sits below the
// codecs, so it names it here).
const BlobPatchCodec = "diffah-blob/1"

// DeflatePatchCodec names the tar-plus-parse patch of a gzip layer;
// DeflateInlineCodec the patch of its whole token form (content inline).
const (
	DeflatePatchCodec  = "diffah-deflate/1"
	DeflateInlineCodec = "diffah-deflate-inline/1"
	// DeflateModelCodecV1 names the tar-plus-model-form patch (1.4),
	// DeflateModelCodec its successor (1.6), whose model form names a
	// mispredicted match by its rank among the model's candidates.
	DeflateModelCodecV1 = "diffah-deflate-model/1"
	DeflateModelCodec   = "diffah-deflate-model/2"
	// DeflateModelCodecV3 is the model patch whose model form names its
	// matcher family (1.8): what a layer of libdeflate gets.
	DeflateModelCodecV3 = "diffah-deflate-model/3"
)

// IsModelCodec reports whether codec is a tar-plus-model-form patch.
func IsModelCodec(codec string) bool {
	return codec == DeflateModelCodecV1 || codec == DeflateModelCodec || codec == DeflateModelCodecV3
}

// TarPatchCodecV1 is the tar patch codec 1.1 readers know.
const TarPatchCodecV1 = "diffah-tar/1"

// SetVersion sets the version to the oldest one that describes the
// sidecar: 1.8 when a patch has the codec diffah-deflate-model/3, 1.7 when a patch has the codec diffah-tar/4 or
// diffah-tar-bundle/4, 1.6 when a patch has the codec
// diffah-deflate-model/2, 1.5 when a patch reads a target layer, 1.4 when a
// patched layer carries fileCosts or has the codec diffah-deflate-model/1
// or diffah-tar/3, 1.3 when a recipe
// has sync points, 1.2 when a blob carries what 1.2 added (a reused
// layer's recipe, a patch codec other than diffah-tar/1), else 1.1, so
// archives that need nothing new stay readable by older readers (a
// reader of 1.3 or older ignores fileCosts, a newer minor version's
// field).
func (s *Sidecar) SetVersion() {
	minor := minorBase
	for _, im := range s.Images {
		for _, b := range im.Blobs {
			if (b.Patch != nil && b.Patch.Codec != TarPatchCodecV1) || len(b.Recipe) > 0 || b.ReasonCode != "" {
				minor = max(minor, MinorBlobPatch)
			}
			if b.Patch != nil && RecipeHasSync(b.Patch.Recipe) {
				minor = max(minor, MinorSync)
			}
			if b.FileCosts != nil {
				minor = max(minor, MinorFileCosts)
			}
			if b.Patch != nil && IsBundleTarCodec(b.Patch.Codec) {
				minor = max(minor, MinorFleet)
			}
			if b.Patch != nil && (b.Patch.Codec == TarPatchCodecV4 || b.Patch.Codec == BundleTarCodec) {
				minor = max(minor, MinorTarV4)
			}
			if b.Patch != nil && b.Patch.Codec == DeflateModelCodecV1 {
				minor = max(minor, MinorModel)
			}
			if b.Patch != nil && b.Patch.Codec == DeflateModelCodec {
				minor = max(minor, MinorModelV2)
			}
			if b.Patch != nil && b.Patch.Codec == DeflateModelCodecV3 {
				minor = max(minor, MinorModelV3)
			}
			if b.Patch != nil && b.Patch.Codec == TarPatchCodecV3 {
				minor = max(minor, MinorTarV3)
			}
		}
	}
	s.Version = fmt.Sprintf("%d.%d", Major, minor)
}

// RecipeHasSync reports whether a recipe lists sync points (what 1.3
// added), for the version; a recipe recompress.ParseRecipe refuses has
// none.
func RecipeHasSync(recipe json.RawMessage) bool {
	rec, err := recompress.ParseRecipe(recipe)
	return err == nil && len(rec.Sync) > 0
}
