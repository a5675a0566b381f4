package resolve

import (
	"bufio"
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
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// applyTokenPatch rebuilds a gzip layer from a diffah-deflate/1 patch:
// its tar from the tar patch against the baseline layers' tars (checked
// against the layer's diffID), its deflate parse (deflatetok's token form)
// from the parse patch against the baseline blob's parse, and from the two
// the blob, bit for bit, which gets its name only when its digest and
// size are the sidecar's. A diffah-deflate-model/2 (or /1) patch is the same but
// for its second part, the layer's model form, which rebuilds the blob
// from the tar alone (deflatetok.RebuildModel).
func (r *resolver) applyTokenPatch(ctx context.Context, out string, w *imageWork, b sidecar.Blob, what string) error {
	blobs, err := r.blobSources(ctx, w, b, what)
	if err != nil {
		return err
	}
	model := sidecar.IsModelCodec(b.Patch.Codec)
	var forms []blobpatch.Source
	var tars []tarpatch.Source
	for i, src := range blobs {
		s := b.Patch.Sources[i]
		base := r.baseOf(w, s.Image)
		l, err := imgref.LayerByDigest(base.Image, s.Digest)
		if err != nil {
			return fault.Errorf(fault.Integrity, "%s: patch source %s not in baseline %s: %w", what, s.Digest, base.Ref, err)
		}
		t, err := r.cache.Uncompressed(ctx, l, s.DiffID, "baseline "+base.Ref+" layer "+s.Digest.String())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		tars = append(tars, t)
		if model {
			continue
		}
		f, err := r.sourceForm(ctx, "tokens", "token form", deflatetok.Decode, s, src, what)
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
	e, _ := r.sc.EntryByName(b.Patch.Entry)
	pr := bufio.NewReaderSize(payload, 1<<20)
	readHeader := deflatetok.ReadPatchHeader
	if model {
		readHeader = deflatetok.ReadModelPatchHeader
	}
	hdr, err := readHeader(pr, e.Size, b.Size)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// 1. The tar, checked against the diffID.
	tar, err := r.tempFile(what)
	if err != nil {
		return err
	}
	defer tar.Close()
	// The tar is decoded before a byte of the blob is written: it counts
	// for the first half of the layer's progress, the blob the second.
	part := r.parts[b.Digest]
	half := b.Size / 2
	tarSum := &hashWriter{w: part.Scaled(tar, b.Patch.UncompressedSize, half), h: sha256.New(), limit: b.Patch.UncompressedSize}
	section := &io.LimitedReader{R: pr, N: hdr.TarLen}
	if err := tarpatch.Decode(ctx, tarSum, section, tars, tarpatch.DecodeOptions{MaxOutput: b.Patch.UncompressedSize}); err != nil {
		if tarSum.err != nil {
			return fmt.Errorf("%s: writing the tar: %w", what, tarSum.err)
		}
		return fmt.Errorf("%s: applying the tar patch: %w", what, err)
	}
	if n, _ := io.Copy(io.Discard, section); n != 0 {
		return fault.Errorf(fault.Integrity, "%s: %d bytes after the tar patch's end: corrupt patch", what, n)
	}
	if got := digest.NewDigest(digest.SHA256, tarSum.h); got != b.DiffID {
		return fault.Errorf(fault.Integrity, "%s: the patch rebuilt a tar with sha256 %s, the layer's diffID is %s: wrong baseline or corrupt patch", what, got, b.DiffID)
	}
	// 2. The blob: from the model form and the tar in one pass, or from
	// the token form the parse patch rebuilds and the tar.
	blob := &hashWriter{w: part.Scaled(tmp, b.Size, b.Size-half), h: sha256.New(), limit: b.Size}
	content := io.NewSectionReader(tar, 0, tarSum.n)
	from := "model form"
	if model {
		err = deflatetok.RebuildModel(ctx, blob, pr, content, deflatetok.EncodeOptions{MaxOutput: b.Size})
	} else {
		from = "token form"
		err = r.encodeParsePatch(ctx, blob, pr, forms, content, hdr.FormSize, b.Size, what)
	}
	if err != nil {
		if blob.err != nil {
			return fmt.Errorf("%s: writing the rebuilt blob: %w", what, blob.err)
		}
		return fmt.Errorf("%s: rebuilding the blob from its tar and %s: %w", what, from, err)
	}
	if _, err := io.Copy(io.Discard, payload); err != nil {
		return err
	}
	if got := digest.NewDigest(digest.SHA256, blob.h); got != b.Digest || blob.n != b.Size {
		return fault.Errorf(fault.Integrity, "%s: the patch rebuilt %s (%d bytes), expected %s (%d bytes): wrong baseline or corrupt patch", what, got, blob.n, b.Digest, b.Size)
	}
	return commitBlob(tmp, out, what)
}

// encodeParsePatch writes the blob from the token form that the parse
// patch pr rebuilds against the baseline blobs' forms, and the content.
func (r *resolver) encodeParsePatch(ctx context.Context, blob io.Writer, pr io.Reader, forms []blobpatch.Source, content io.Reader, formSize, size int64, what string) error {
	form, err := r.tempFile(what)
	if err != nil {
		return err
	}
	defer form.Close()
	fw := &hashWriter{w: form, h: sha256.New(), limit: formSize}
	if err := blobpatch.Decode(ctx, fw, pr, forms, blobpatch.DecodeOptions{MaxOutput: formSize}); err != nil {
		if fw.err != nil {
			return fmt.Errorf("writing the token form: %w", fw.err)
		}
		return fmt.Errorf("applying the token-form patch: %w", err)
	}
	return deflatetok.Encode(ctx, blob, io.NewSectionReader(form, 0, fw.n), content, deflatetok.EncodeOptions{MaxOutput: size})
}

// tempFile is an unlinked temporary file for what is rebuilt.
func (r *resolver) tempFile(what string) (*os.File, error) {
	return atomicdir.Scratch(r.o.TempDir, what)
}

// sourceForm is a form (decode: the token form, or the inline one) of the
// blob src of patch source s, derived once per resolve (key names it in
// the spool, name for people). A blob that is not a gzip stream diffah can
// rewrite is not the baseline the patch was made against.
func (r *resolver) sourceForm(ctx context.Context, key, name string, decode func(context.Context, io.Writer, io.Reader) error, s sidecar.Source, src blobpatch.Source, what string) (blobpatch.Source, error) {
	f, err := r.cache.Derived(ctx, key+" "+s.Digest.String(), "the "+name+" of baseline layer "+s.Digest.String(), func(w io.Writer) error {
		return decode(ctx, w, io.NewSectionReader(src, 0, src.Size()))
	})
	if errors.Is(err, deflatetok.ErrNotGzip) {
		return nil, fault.Errorf(fault.Integrity, "%s: patch source %s is not a gzip stream diffah can rewrite (%v): not the baseline the patch was made against", what, s.Digest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}
