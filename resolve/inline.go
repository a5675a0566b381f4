package resolve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// applyInlinePatch rebuilds a gzip layer from a diffah-deflate-inline/1
// patch: the layer's whole token form (content inline) from the patch
// against the baseline blob's, the blob from the form, bit for bit; the
// blob is inflated and its tar checked against the diffID, then the blob
// against its digest, before it gets its name.
func (r *resolver) applyInlinePatch(ctx context.Context, out string, w *imageWork, b sidecar.Blob, what string) error {
	blobs, err := r.blobSources(ctx, w, b, what)
	if err != nil {
		return err
	}
	var forms []blobpatch.Source
	for i, src := range blobs {
		f, err := r.sourceForm(ctx, "inline", "inline token form", deflatetok.DecodeInline, b.Patch.Sources[i], src, what)
		if err != nil {
			return err
		}
		forms = append(forms, f)
	}
	payload, tmp, done, err := r.patchFiles(b, out, what)
	if err != nil {
		return err
	}
	defer done()
	form, err := r.tempFile(what)
	if err != nil {
		return err
	}
	defer form.Close()
	fw := &hashWriter{w: form, h: sha256.New(), limit: b.Patch.UncompressedSize}
	if err := blobpatch.Decode(ctx, fw, payload, forms, blobpatch.DecodeOptions{MaxOutput: b.Patch.UncompressedSize}); err != nil {
		if fw.err != nil {
			return fmt.Errorf("%s: writing the token form: %w", what, fw.err)
		}
		return fmt.Errorf("%s: applying patch: %w", what, err)
	}
	if _, err := io.Copy(io.Discard, payload); err != nil {
		return err
	}
	blob := r.blobWriter(tmp, b)
	if err := deflatetok.EncodeInline(ctx, blob, io.NewSectionReader(form, 0, fw.n), deflatetok.EncodeOptions{MaxOutput: b.Size}); err != nil {
		if blob.err != nil {
			return fmt.Errorf("%s: writing the rebuilt blob: %w", what, blob.err)
		}
		return fmt.Errorf("%s: rebuilding the blob from its token form: %w", what, err)
	}
	th := sha256.New()
	if err := deflatetok.Inflate(th, io.NewSectionReader(tmp, 0, blob.n)); err != nil {
		return fault.Errorf(fault.Integrity, "%s: the rebuilt blob does not inflate: %w: wrong baseline or corrupt patch", what, err)
	}
	if got := digest.NewDigest(digest.SHA256, th); got != b.DiffID {
		return fault.Errorf(fault.Integrity, "%s: the patch rebuilt a tar with sha256 %s, the layer's diffID is %s: wrong baseline or corrupt patch", what, got, b.DiffID)
	}
	if got := digest.NewDigest(digest.SHA256, blob.h); got != b.Digest || blob.n != b.Size {
		return fault.Errorf(fault.Integrity, "%s: the patch rebuilt %s (%d bytes), expected %s (%d bytes): wrong baseline or corrupt patch", what, got, blob.n, b.Digest, b.Size)
	}
	return commitBlob(tmp, out, what)
}
