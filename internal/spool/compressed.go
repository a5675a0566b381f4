package spool

import (
	"context"
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// Compressed returns layer's compressed bytes (the blob itself), spooled
// to disk and checked against its digest: the source of a patch of
// compressed bytes (blobpatch).
func (c *Cache) Compressed(ctx context.Context, layer v1.Layer, blob digest.Digest, what string) (*File, error) {
	// Its own key space: an uncompressed layer's digest is its diffID.
	return c.once("blob+"+blob, func() (*File, error) {
		f, err := c.spool(ctx, layer.Compressed, blob, what)
		if errors.Is(err, errContent) {
			return nil, fault.Errorf(fault.Env, "spooling %s: %w", what, errors.Unwrap(err))
		}
		if errors.Is(err, errDigest) {
			return nil, fault.Errorf(fault.Integrity, "%s: its bytes are %s, not %s: the image is corrupt", what, errors.Unwrap(err), blob)
		}
		return f, err
	})
}
