package pack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
)

// inlinePatch is the other patch of a gzip layer no recipe reproduces
// (codec diffah-deflate-inline/1): its whole token form, content inline
// (deflatetok.DecodeInline), as a blobpatch patch against the source
// blob's. One stream instead of two: on machine code, whose tar patch
// saves little over the tokens, it can come out smaller than
// diffah-deflate/1; pack keeps the smallest. nil, nil when either blob is
// not a gzip stream deflatetok can rewrite.
func (st *state) inlinePatch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (*payload, error) {
	fs, ok, err := st.tokenForms(ctx, plans, p, target, b, "inline", "the inline token form", deflatetok.DecodeInline)
	if err != nil || !ok {
		return nil, err
	}
	defer fs.form.Close()
	s, oldForm, form, size := fs.src, fs.old, fs.form, fs.size
	if err := checkRebuilt(b, "token form", func(w io.Writer) error {
		return deflatetok.EncodeInline(ctx, w, io.NewSectionReader(form, 0, size), deflatetok.EncodeOptions{MaxOutput: b.Size})
	}); err != nil {
		return nil, err
	}
	f, err := st.temp()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := blobpatch.Encode(ctx, io.MultiWriter(f, h), io.NewSectionReader(form, 0, size), size, oldForm, blobpatch.EncodeOptions{Jobs: st.workers(), Workers: st.budget})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pack: patching the token form of layer %s of %s: %w", b.Digest, p.Name, err)
	}
	st.o.Log.Info("inline token-form patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "form", size, "patch", n)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: n, newSize: size,
		codec: sidecar.DeflateInlineCodec, sources: []sidecar.Source{s}, recipe: plan.BlobRecipe,
		note: "reconstruction data " + units.Bytes(n) + ": the patch of its deflate parse, content inline"}, nil
}
