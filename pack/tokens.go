package pack

import (
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
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// tokenPatch is the patch of a gzip layer that no recipe reproduces
// (codec diffah-deflate/1): its tar as a tar patch against the first
// source's tar, and its deflate parse (deflatetok's token form) as a
// blobpatch patch against the source blob's parse. The content travels as
// the content change costs; the parse pays for the blocks and tokens
// around changes. nil, nil when either blob is not a gzip stream
// deflatetok can rewrite.
func (st *state) tokenPatch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (*payload, error) {
	fs, ok, err := st.tokenForms(ctx, plans, p, target, b, "tokens", "the token form", deflatetok.Decode)
	if err != nil || !ok {
		return nil, err
	}
	defer fs.form.Close()
	s, oldForm, form, formSize := fs.src, fs.old, fs.form, fs.size
	// The tar patch, against the source's tar, as for any layer.
	tp, tpLen, tarSize, costs, err := st.sourceTarPatch(ctx, plans, p, target, b, s)
	if err != nil {
		return nil, err
	}
	defer tp.Close()
	// The form and the tar rebuild the blob by construction; checked
	// anyway, since a patch resolve could not turn back into the blob is
	// worse than none.
	if err := st.checkRebuild(ctx, p, target, b, form, formSize); err != nil {
		return nil, err
	}
	f, err := st.temp()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	out := io.MultiWriter(f, h)
	if err := deflatetok.WritePatchHeader(out, deflatetok.PatchHeader{FormSize: formSize, TarLen: tpLen}); err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(tp, 0, tpLen)); err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	if _, err := blobpatch.Encode(ctx, out, io.NewSectionReader(form, 0, formSize), formSize, oldForm, blobpatch.EncodeOptions{Jobs: st.workers(), Workers: st.budget}); err != nil {
		f.Close()
		return nil, fmt.Errorf("pack: patching the token form of layer %s of %s: %w", b.Digest, p.Name, err)
	}
	n, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	st.o.Log.Info("token-form patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "tarPatch", tpLen, "form", formSize, "patch", n)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: n, newSize: tarSize,
		codec: sidecar.DeflatePatchCodec, sources: []sidecar.Source{s}, recipe: plan.BlobRecipe, costs: costs,
		note: "reconstruction data " + units.Bytes(n-tpLen) + ": the patch of its deflate parse"}, nil
}

func sourceImage(p *plan.Plan, s sidecar.Source) string {
	if s.Image != "" {
		return s.Image
	}
	return p.Name
}

// temp is an unlinked temporary file.
// sourceTarPatch writes, to a temporary file, the tar patch of layer b
// against the tar of its source s, as for any layer; the caller closes
// the file (tpLen bytes), and tarSize is the layer's tar size.
func (st *state) sourceTarPatch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob, s sidecar.Source) (tp *os.File, tpLen, tarSize int64, costs *tarpatch.Costs, err error) {
	oldTar, err := st.sourceFile(ctx, plans, sourceImage(p, s), s, p.Target.Platform)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if tp, err = st.temp(); err != nil {
		return nil, 0, 0, nil, err
	}
	if tarSize, costs, err = st.tarPatch(ctx, p, target, b, tp, []tarpatch.Source{oldTar}); err != nil {
		tp.Close()
		return nil, 0, 0, nil, err
	}
	tpLen, _ = tp.Seek(0, io.SeekCurrent)
	return tp, tpLen, tarSize, costs, nil
}

func (st *state) temp() (*os.File, error) {
	return atomicdir.Scratch(st.o.TempDir, "pack: a patch being computed")
}

// tarPatch writes the tar patch of layer b against srcs to w, checking the
// tar against its diffID, and returns the tar's size and what its files
// cost in the patch.
func (st *state) tarPatch(ctx context.Context, p *plan.Plan, target *imgref.Image, b plan.Blob, w io.Writer, srcs []tarpatch.Source) (int64, *tarpatch.Costs, error) {
	l, err := imgref.LayerByDigest(target, b.Digest)
	if err != nil {
		return 0, nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, nil, fault.Errorf(fault.Env, "pack: target %s layer %s: %w", p.Target.Ref, b.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	dr := &ctxio.CountingReader{R: io.TeeReader(rc, h)}
	stats, err := tarpatch.Encode(ctx, w, dr, srcs, tarpatch.EncodeOptions{Jobs: st.workers(), Workers: st.budget, FileCosts: true, Format: 2})
	if err != nil {
		return 0, nil, fmt.Errorf("pack: patching layer %s of %s: %w", b.Digest, p.Name, err)
	}
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return 0, nil, fault.Errorf(fault.Env, "pack: reading layer %s: %w", b.Digest, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != b.DiffID {
		return 0, nil, fault.Errorf(fault.Integrity, "pack: layer %s of %s: uncompressed content is %s, its config says %s", b.Digest, p.Target.Ref, got, b.DiffID)
	}
	return dr.N, stats.Costs, nil
}

// checkRebuild rebuilds the blob from its token form and its tar and
// compares it with the blob digest.
func (st *state) checkRebuild(ctx context.Context, p *plan.Plan, target *imgref.Image, b plan.Blob, form io.ReaderAt, formSize int64) error {
	// The content, inflated from the blob as the rebuild reads it.
	return st.inflated(p, target, b, func(content io.Reader) error {
		return checkRebuilt(b, "token form", func(w io.Writer) error {
			return deflatetok.Encode(ctx, w, io.NewSectionReader(form, 0, formSize), content, deflatetok.EncodeOptions{MaxOutput: b.Size})
		})
	})
}

// checkRebuilt checks that encode, which rebuilds b from its form (what
// names it), writes b's bytes; a failure is a bug (exit 70).
func checkRebuilt(b plan.Blob, what string, encode func(io.Writer) error) error {
	h := sha256.New()
	if err := encode(h); err != nil {
		return fault.Errorf(fault.Internal, "pack: layer %s: its %s does not rebuild it: %w", b.Digest, what, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != b.Digest {
		return fault.Errorf(fault.Internal, "pack: layer %s: its %s rebuilds %s", b.Digest, what, got)
	}
	return nil
}

// forms holds a layer's deflate form and its source blob's, as
// deflatetok writes them (the parse, or the inline form): the half that
// tokenPatch and inlinePatch share.
type forms struct {
	src  sidecar.Source
	old  *spool.File
	form *os.File
	size int64
}

// tokenForms spools the source blob's form (once per source, kind names
// it) and the target blob's. ok is false when either is not a gzip stream
// deflatetok can rewrite; the caller closes f.form when ok.
func (st *state) tokenForms(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob, kind, what string, decode func(context.Context, io.Writer, io.Reader) error) (f forms, ok bool, err error) {
	s, src, err := st.floorSource(ctx, plans, p, b)
	if err != nil {
		return f, false, err
	}
	old, err := st.cache.Derived(ctx, kind+" "+s.Digest.String(), what+" of baseline layer "+s.Digest.String(), func(w io.Writer) error {
		return decode(ctx, w, io.NewSectionReader(src, 0, src.Size()))
	})
	if errors.Is(err, deflatetok.ErrNotGzip) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("pack: %w", err)
	}
	rc, err := targetBlob(p, target, b)
	if err != nil {
		return f, false, err
	}
	defer rc.Close()
	form, err := st.temp()
	if err != nil {
		return f, false, err
	}
	if err := decode(ctx, form, rc); err != nil {
		form.Close()
		if errors.Is(err, deflatetok.ErrNotGzip) {
			st.o.Log.Info("no token form", "layer", b.Digest, "err", err)
			return f, false, nil
		}
		return f, false, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		form.Close()
		return f, false, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	size, err := form.Seek(0, io.SeekCurrent)
	if err != nil {
		form.Close()
		return f, false, fault.Errorf(fault.Env, "pack: %w", err)
	}
	return forms{src: s, old: old, form: form, size: size}, true, nil
}
