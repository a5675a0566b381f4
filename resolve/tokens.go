package resolve

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// applyTokenPatch rebuilds a gzip layer from a patch of its token form
// (deflatetok) against the token form of baseline layers: the patch gives
// the layer's token form, which rebuilds the blob bit for bit. The blob
// is inflated again and its tar must have the layer's diffID, and the
// blob must have its digest, before it gets its name.
func (r *resolver) applyTokenPatch(ctx context.Context, out string, w *imageWork, b sidecar.Blob, what string) error {
	blobs, err := r.blobSources(ctx, w, b, what)
	if err != nil {
		return err
	}
	var forms []blobpatch.Source
	for i, src := range blobs {
		s := b.Patch.Sources[i]
		f, err := r.cache.Derived(ctx, "tokens "+s.Digest.String(), "the token form of baseline layer "+s.Digest.String(), func(w io.Writer) error {
			return deflatetok.Decode(ctx, w, io.NewSectionReader(src, 0, src.Size()))
		})
		if errors.Is(err, deflatetok.ErrNotGzip) {
			return fault.Errorf(fault.Integrity, "%s: patch source %s is not a gzip stream diffah can rewrite (%v): not the baseline the patch was made against", what, s.Digest, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		forms = append(forms, f)
	}
	payload, tmp, done, err := r.patchFiles(b, out, what)
	if err != nil {
		return err
	}
	defer done()
	form, err := os.CreateTemp(r.o.TempDir, "diffah-tokens-*")
	if err != nil {
		return fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	os.Remove(form.Name())
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
	blob := &hashWriter{w: tmp, h: sha256.New(), limit: b.Size}
	if err := deflatetok.Encode(ctx, blob, io.NewSectionReader(form, 0, fw.n), deflatetok.EncodeOptions{MaxOutput: b.Size}); err != nil {
		if blob.err != nil {
			return fmt.Errorf("%s: writing the rebuilt blob: %w", what, blob.err)
		}
		return fmt.Errorf("%s: rebuilding the blob from its token form: %w", what, err)
	}
	// The tar inside, checked against the diffID as for every patch.
	th := sha256.New()
	if err := inflateMembers(th, io.NewSectionReader(tmp, 0, blob.n)); err != nil {
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

// inflateMembers writes the content of every gzip member of r to w,
// stopping where no member follows (the token form keeps any bytes after
// the last member, which carry no content).
func inflateMembers(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return err
	}
	for {
		zr.Multistream(false)
		if _, err := io.Copy(w, zr); err != nil {
			return err
		}
		if head, _ := br.Peek(2); len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
			return nil
		}
		if err := zr.Reset(br); err != nil {
			return err
		}
	}
}
