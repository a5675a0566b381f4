package imgref

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/diffah/diffah/fault"
)

// CheckBlob says whether img holds the blob h, of size bytes, without
// reading it: for local stores a stat (a regular file inside the store, of
// the size its manifest records), for docker:// a HEAD request. A blob the
// image lacks, or holds with another size, is a fault.Integrity error
// naming it; a store or registry that cannot be asked fails as it reports
// (network trouble is Env). resolve uses it to check a baseline before
// anything is written.
func CheckBlob(ctx context.Context, img v1.Image, h v1.Hash, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHash(h, "blob"); err != nil {
		return err
	}
	l, err := img.LayerByDigest(h)
	if err != nil {
		return fault.Errorf(fault.Integrity, "blob %s is not in the image: %w", h, err)
	}
	if n, err := l.Size(); err == nil && n != size {
		return fault.Errorf(fault.Integrity, "blob %s: %d bytes in the image's manifest, but %d bytes are expected", h, n, size)
	}
	ok, err := partial.Exists(l)
	if err != nil {
		if fault.KindOf(err, 0) == 0 {
			err = fault.Wrap(fault.Env, fmt.Errorf("blob %s: %w", h, err))
		}
		return err
	}
	if !ok {
		return fault.Errorf(fault.Integrity, "blob %s: listed in the manifest but not stored", h)
	}
	return nil
}
