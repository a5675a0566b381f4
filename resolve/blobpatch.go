package resolve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/verify"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// knownCodec refuses, before anything is written, a patch whose codec
// this diffah does not know (an archive from a newer diffah).
func knownCodec(im *sidecar.Image, b sidecar.Blob) error {
	switch b.Patch.Codec {
	case tarpatch.Codec, tarpatch.CodecV3, tarpatch.CodecV2, tarpatch.CodecV1, tarpatch.CodecBundle, tarpatch.CodecBundleV3, blobpatch.Codec, sidecar.DeflatePatchCodec, sidecar.DeflateInlineCodec, sidecar.DeflateModelCodec, sidecar.DeflateModelCodecV1, sidecar.DeflateModelCodecV3:
		return nil
	}
	return fault.WithHint(fault.Errorf(fault.Integrity, "image %q: layer %s needs patch codec %q; this diffah knows %q, %q, %q, %q, %q, %q, %q, %q, %q, %q, %q and %q", im.Name, b.Digest, b.Patch.Codec,
		tarpatch.Codec, tarpatch.CodecV3, tarpatch.CodecV2, tarpatch.CodecV1, tarpatch.CodecBundle, tarpatch.CodecBundleV3, blobpatch.Codec, sidecar.DeflatePatchCodec, sidecar.DeflateInlineCodec, sidecar.DeflateModelCodec, sidecar.DeflateModelCodecV1, sidecar.DeflateModelCodecV3),
		fault.Integrity, "upgrade diffah to the release that wrote the archive, or a newer one")
}

// checkBlobRecipe refuses a blobpatch patch whose recipe would recompress
// its output: a blobpatch patch rebuilds the compressed blob itself.
func checkBlobRecipe(im *sidecar.Image, b sidecar.Blob, rec recompress.Recipe) error {
	if !tarpatch.Decodes(b.Patch.Codec) && rec.Format != recompress.FormatNone {
		return fault.Errorf(fault.Integrity, "image %q: layer %s: a %s patch rebuilds the compressed blob itself, but its recipe is %s", im.Name, b.Digest, b.Patch.Codec, rec)
	}
	return nil
}

// applyBlobPatch rebuilds a layer from a patch of its compressed bytes
// against the compressed bytes of baseline layers: the output is the
// blob, hashed as it streams, and it gets its name only when its digest
// and size are the ones the sidecar promises.
func (r *resolver) applyBlobPatch(ctx context.Context, out string, w *imageWork, b sidecar.Blob, what string) error {
	srcs, err := r.blobSources(ctx, w, b, what)
	if err != nil {
		return err
	}
	payload, tmp, done, err := r.patchFiles(b, out, what)
	if err != nil {
		return err
	}
	defer done()
	blob := r.blobWriter(tmp, b)
	if err := blobpatch.Decode(ctx, blob, payload, srcs, blobpatch.DecodeOptions{MaxOutput: b.Size}); err != nil {
		if blob.err != nil {
			return fmt.Errorf("%s: writing the rebuilt blob: %w", what, blob.err)
		}
		return fmt.Errorf("%s: applying patch: %w", what, err)
	}
	if _, err := io.Copy(io.Discard, payload); err != nil {
		return err
	}
	if got := digest.NewDigest(digest.SHA256, blob.h); got != b.Digest || blob.n != b.Size {
		return fault.Errorf(fault.Integrity, "%s: the patch rebuilt %s (%d bytes), expected %s (%d bytes): wrong baseline or corrupt patch", what, got, blob.n, b.Digest, b.Size)
	}
	return commitBlob(tmp, out, what)
}

// patchFiles opens a patch's payload, verified against its entry as it is
// read, and a temporary file beside out for the rebuilt blob; done closes
// both and removes the temporary file unless commitBlob renamed it.
func (r *resolver) patchFiles(b sidecar.Blob, out, what string) (io.Reader, *atomicdir.File, func(), error) {
	e, _ := r.sc.EntryByName(b.Patch.Entry)
	pf, err := os.Open(layout.PatchPath(r.dir, e.Digest))
	if err != nil {
		return nil, nil, nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		pf.Close()
		return nil, nil, nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	tmp, err := atomicdir.NewFile(out)
	if err != nil {
		pf.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	done := func() {
		tmp.Abort()
		pf.Close()
	}
	return verify.NewReader(pf, e.Digest, e.Size, what+" patch payload"), tmp, done, nil
}

// blobWriter writes a rebuilt blob to tmp: hashed, refused past the
// blob's size, and counted into the resolve bar as it is written (the
// bar moves through a patch's decode and recompression, which stream).
func (r *resolver) blobWriter(tmp io.Writer, b sidecar.Blob) *hashWriter {
	return &hashWriter{w: r.parts[b.Digest].Writer(tmp), h: sha256.New(), limit: b.Size}
}

// commitBlob gives a rebuilt, verified blob its name (out, which tmp was
// made for).
func commitBlob(tmp *atomicdir.File, out, what string) error {
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// blobSources spools the compressed bytes of a patch's sources, each
// checked against its digest.
func (r *resolver) blobSources(ctx context.Context, w *imageWork, b sidecar.Blob, what string) ([]blobpatch.Source, error) {
	var srcs []blobpatch.Source
	for _, s := range b.Patch.Sources {
		base := r.baseOf(w, s.Image)
		if base == nil {
			return nil, fault.Errorf(fault.Integrity, "%s: patch source %s: no baseline for image %q", what, s.Digest, s.Image)
		}
		l, err := imgref.LayerByDigest(base.Image, s.Digest)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "%s: patch source %s not in baseline %s: %w", what, s.Digest, base.Ref, err)
		}
		f, err := r.cache.Compressed(ctx, l, s.Digest, "baseline "+base.Ref+" layer "+s.Digest.String())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		srcs = append(srcs, f)
	}
	return srcs, nil
}
