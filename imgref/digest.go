package imgref

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

// diffah's packages name blobs by digest.Digest; ggcr's v1.Hash appears
// only here at its boundary. Digest, Hash, Descriptor, LayerByDigest and
// LayerByDiffID are the one place the two types meet.

// Digest is h as diffah's digest type.
func Digest(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

// Hash is d as ggcr's hash, after layout.CheckDigest; what names d in the
// fault.Integrity error a malformed digest gets.
func Hash(d digest.Digest, what string) (v1.Hash, error) {
	if err := layout.CheckDigest(d, what); err != nil {
		return v1.Hash{}, err
	}
	h, err := v1.NewHash(d.String())
	if err != nil {
		return v1.Hash{}, fault.Errorf(fault.Integrity, "%s: %w", what, err)
	}
	return h, nil
}

// LayerByDigest finds blob d (a layer, or the config) of img. A malformed
// d is a fault.Integrity error; a lookup failure comes back as img gives
// it, for the caller to name.
func LayerByDigest(img v1.Image, d digest.Digest) (v1.Layer, error) {
	h, err := Hash(d, "blob "+string(d))
	if err != nil {
		return nil, err
	}
	return img.LayerByDigest(h)
}

// LayerByDiffID finds the layer of img whose uncompressed content has
// diffID d. A malformed d is a fault.Integrity error; a lookup failure
// comes back as img gives it, for the caller to name.
func LayerByDiffID(img v1.Image, d digest.Digest) (v1.Layer, error) {
	h, err := Hash(d, "diffID "+string(d))
	if err != nil {
		return nil, err
	}
	return img.LayerByDiffID(h)
}

// Descriptor is ggcr's descriptor of the blob d, of mediaType and size
// bytes; a malformed d is a fault.Integrity error naming what.
func Descriptor(mediaType string, d digest.Digest, size int64, what string) (v1.Descriptor, error) {
	h, err := Hash(d, what)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Size: size, Digest: h}, nil
}
