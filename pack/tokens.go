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
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
)

// tokenPatch is the patch of a gzip layer's token form (deflatetok)
// against the token form of its first source, in blobpatch's format
// (codec diffah-deflate/1): what a layer from a compressor diffah cannot
// replay costs when its content changed little. nil, nil when either blob
// is not a gzip stream deflatetok can rewrite.
func (st *state) tokenPatch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (*payload, error) {
	s, src, err := st.floorSource(ctx, plans, p, b)
	if err != nil {
		return nil, err
	}
	oldForm, err := st.cache.Derived(ctx, "tokens "+s.Digest.String(), "the token form of baseline layer "+s.Digest.String(), func(w io.Writer) error {
		return deflatetok.Decode(ctx, w, io.NewSectionReader(src, 0, src.Size()))
	})
	if errors.Is(err, deflatetok.ErrNotGzip) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	rc, err := targetBlob(p, target, b)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	form, err := os.CreateTemp(st.o.TempDir, "diffah-tokens-*")
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	os.Remove(form.Name())
	defer form.Close()
	blob := rc
	if err := deflatetok.Decode(ctx, form, blob); err != nil {
		if errors.Is(err, deflatetok.ErrNotGzip) {
			st.o.Log.Info("no token form", "layer", b.Digest, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return nil, fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	size, err := form.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	// The form rebuilds the blob by construction; checked anyway, since a
	// patch that resolve could not turn back into the blob is worse than
	// none.
	rh := sha256.New()
	if err := deflatetok.Encode(ctx, rh, io.NewSectionReader(form, 0, size), deflatetok.EncodeOptions{MaxOutput: b.Size}); err != nil {
		return nil, fault.Errorf(fault.Internal, "pack: layer %s: its token form does not rebuild it: %w", b.Digest, err)
	}
	if got := digest.NewDigest(digest.SHA256, rh); got != b.Digest {
		return nil, fault.Errorf(fault.Internal, "pack: layer %s: its token form rebuilds %s", b.Digest, got)
	}
	f, err := os.CreateTemp(st.o.TempDir, "diffah-patch-*")
	if err != nil {
		return nil, fault.Errorf(fault.Env, "pack: %w", err)
	}
	os.Remove(f.Name())
	h := sha256.New()
	n, err := blobpatch.Encode(ctx, io.MultiWriter(f, h), io.NewSectionReader(form, 0, size), size, oldForm, blobpatch.EncodeOptions{})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pack: patching the token form of layer %s of %s: %w", b.Digest, p.Name, err)
	}
	st.o.Log.Info("token-form patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "form", size, "patch", n)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: n, newSize: size,
		codec: sidecar.DeflatePatchCodec, sources: []sidecar.Source{s}, recipe: plan.BlobRecipe}, nil
}
